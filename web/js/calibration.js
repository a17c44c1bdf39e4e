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
