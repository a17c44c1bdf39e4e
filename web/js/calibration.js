// Threshold effect math (pure): confusion counts and rates of a threshold over reviewed frames,
// with the same definitions as the server's proposal (confirmed = defect, false_alarm = normal,
// predicted defect when A_norm > threshold, strictly).

function ratio(a, b) {
  return b > 0 ? a / b : null;
}

/**
 * Effect of a threshold over reviewed inspections (items with A_norm and review.state). Frames
 * without a score (A_norm null: judged by a note, e.g. "no track found") are left out, as the
 * server leaves them out of its proposal: no threshold changes their verdict.
 */
export function computeEffect(items, threshold) {
  let tp = 0, fp = 0, fn = 0, tn = 0;
  for (const i of items) {
    const state = i.review?.state;
    if (state !== 'confirmed' && state !== 'false_alarm') continue;
    if (typeof i.A_norm !== 'number' || !Number.isFinite(i.A_norm)) continue;
    const predicted = i.A_norm > threshold;
    const actual = state === 'confirmed';
    if (predicted && actual) tp++;
    else if (predicted) fp++;
    else if (actual) fn++;
    else tn++;
  }
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, tp + fn);
  const f1 = precision != null && recall != null && precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : (tp + fp + fn > 0 ? 0 : null);
  return { tp, fp, fn, tn, precision, recall, false_alarm_rate: ratio(fp, fp + tn), f1 };
}

/** Rows for the current-vs-proposed table: which direction is better for each metric. */
export const EFFECT_METRICS = Object.freeze([
  { key: 'precision', label: 'Precision', kind: 'ratio', higherIsBetter: true },
  { key: 'recall', label: 'Recall (defects caught)', kind: 'ratio', higherIsBetter: true },
  { key: 'f1', label: 'F1', kind: 'ratio', higherIsBetter: true },
  { key: 'false_alarm_rate', label: 'False-alarm rate', kind: 'ratio', higherIsBetter: false },
  { key: 'fp', label: 'False alarms (FP)', kind: 'count', higherIsBetter: false },
  { key: 'fn', label: 'Missed defects (FN)', kind: 'count', higherIsBetter: false },
  { key: 'tp', label: 'Caught defects (TP)', kind: 'count', higherIsBetter: true },
  { key: 'tn', label: 'Correctly passed (TN)', kind: 'count', higherIsBetter: true },
]);

/**
 * Compare two effects: [{ key, label, kind, current, proposed, delta, verdict }] where verdict is
 * 'better' | 'worse' | 'same' | null (when either side is missing).
 */
export function compareEffects(current, proposed) {
  return EFFECT_METRICS.map((m) => {
    const c = current?.[m.key];
    const p = proposed?.[m.key];
    const ok = typeof c === 'number' && typeof p === 'number';
    const delta = ok ? p - c : null;
    let verdict = null;
    if (ok) {
      if (Math.abs(delta) < 1e-12) verdict = 'same';
      else verdict = (delta > 0) === m.higherIsBetter ? 'better' : 'worse';
    }
    return { key: m.key, label: m.label, kind: m.kind, current: c ?? null, proposed: p ?? null, delta, verdict };
  });
}

/** Parse a threshold typed by the admin: a finite number ≥ 0, else null. */
export function parseThreshold(text) {
  const s = String(text ?? '').trim().replace(',', '.');
  if (!/^\d*\.?\d+(e[-+]?\d+)?$/i.test(s)) return null;
  const x = Number(s);
  return Number.isFinite(x) && x >= 0 ? x : null;
}

/**
 * A threshold written exactly as it is applied: JavaScript's shortest round-trip form, so
 * Number(exactThreshold(t)) === t. Never rounded: a rounded proposal can land on the other side
 * of a reviewed frame (0.14398568651 shown as 0.144 is above a confirmed defect at 0.14398568751).
 */
export function exactThreshold(t) {
  return typeof t === 'number' && Number.isFinite(t) ? String(t) : '';
}

/**
 * The reviewed frames a proposal answer counted (`reviews`: id, A_norm under the calibration in
 * force, state), in the shape computeEffect takes — so the page's what-if counts exactly the
 * frames, model version and A′ the server's proposal counts.
 */
export function reviewedFromProposal(proposal) {
  return (proposal?.reviews ?? []).map((r) => ({ id: r.id, A_norm: r.A_norm, review: { state: r.state } }));
}

/** Words for confirmed defects a threshold would judge normal; '' when it misses none. */
export function missedWords(missed, confirmed) {
  if (!(missed > 0)) return '';
  return `Misses ${missed} of ${confirmed} confirmed defect${confirmed === 1 ? '' : 's'}: their A′ is at or below this threshold, so they would be judged normal.`;
}

/**
 * What Apply sends for the text in the threshold box: the proposal's own value when the box
 * still holds it (with the proposal as the reason for the audit), else the typed number; null
 * when the text is not a threshold.
 */
export function applyRequest(text, proposal) {
  const t = parseThreshold(text);
  if (t == null) return null;
  const p = proposal?.proposed?.threshold;
  if (typeof p === 'number' && t === p) {
    const how = proposal.method === 'false_alarm_rate' ? 'false-alarm-rate' : 'best-F1';
    const rc = proposal.reviewed ?? {};
    const model = proposal.model ? ` under ${proposal.model.name} ${proposal.model.version}` : '';
    return { threshold: p, reason: `${how} proposal from ${rc.confirmed ?? 0} confirmed defects and ${rc.false_alarm ?? 0} false alarms reviewed${model}` };
  }
  return { threshold: t, reason: 'threshold typed on the dashboard' };
}
