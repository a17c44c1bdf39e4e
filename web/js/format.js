// Pure formatting helpers (no DOM): numbers, times, ages, track positions, HTML escaping.

/** Escape text for safe interpolation into HTML markup and attribute values. */
export function escapeHtml(value) {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function finite(x) {
  return typeof x === 'number' && Number.isFinite(x);
}

/** A normalized anomaly score A' (or any score) with 3 decimals; '–' when missing. */
export function fmtScore(x, digits = 3) {
  return finite(x) ? x.toFixed(digits) : '–';
}

/** A ratio 0..1 as a percentage: 0.0117 → "1.2 %". */
export function fmtPercent(ratio, digits = 1) {
  if (!finite(ratio)) return '–';
  return `${(ratio * 100).toFixed(digits)} %`;
}

/** Frames per second: 4.93 → "4.9 fps", 0 → "0 fps". */
export function fmtFps(fps) {
  if (!finite(fps)) return '–';
  if (fps === 0) return '0 fps';
  return `${fps < 10 ? fps.toFixed(1) : Math.round(fps)} fps`;
}

/** An integer with thin thousands separators: 12345 → "12 345". */
export function fmtCount(n) {
  if (!finite(n)) return '–';
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, '\u2009');
}

/** A duration in milliseconds as a short human age: "4 s", "3 min", "2 h 5 min", "3 d". */
export function fmtDuration(ms) {
  if (!finite(ms)) return '–';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  return `${Math.floor(h / 24)} d`;
}

/** Parse an RFC 3339 string to epoch milliseconds; NaN when absent or invalid. */
export function parseTime(iso) {
  if (!iso) return NaN;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? NaN : t;
}

/** "12 s ago" for an RFC 3339 time relative to now (ms); "never" when absent. */
export function fmtAgo(iso, nowMs) {
  const t = parseTime(iso);
  if (Number.isNaN(t)) return 'never';
  const d = nowMs - t;
  if (d < 1000) return 'just now';
  return `${fmtDuration(d)} ago`;
}

function pad(n, w = 2) {
  return String(n).padStart(w, '0');
}

/** Local wall-clock time "HH:MM:SS" (plus "YYYY-MM-DD " when not today relative to nowMs). */
export function fmtTime(iso, nowMs = Date.now()) {
  const t = parseTime(iso);
  if (Number.isNaN(t)) return '–';
  const d = new Date(t);
  const n = new Date(nowMs);
  const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const sameDay = d.getFullYear() === n.getFullYear() && d.getMonth() === n.getMonth() && d.getDate() === n.getDate();
  return sameDay ? hms : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hms}`;
}

/** Short axis label for a time: "HH:MM" (or "HH:MM:SS" when withSeconds). */
export function fmtClock(ms, withSeconds = false) {
  const d = new Date(ms);
  const base = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withSeconds ? `${base}:${pad(d.getSeconds())}` : base;
}

/** Track position in metres as railway kilometrage: 12345.6 → "km 12.346"; with a track id: "L1 · km 12.346". */
export function fmtPosition(trackId, positionM) {
  const km = finite(positionM) ? `km ${(positionM / 1000).toFixed(3)}` : '';
  if (trackId && km) return `${trackId} · ${km}`;
  return trackId || km || '–';
}

/** Value for <input type="datetime-local"> from epoch ms (local time, minutes precision). */
export function toDatetimeLocal(ms) {
  if (!finite(ms)) return '';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** RFC 3339 UTC string from a datetime-local input value (interpreted as local time); '' when empty/invalid. */
export function fromDatetimeLocal(value) {
  if (!value) return '';
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? '' : new Date(t).toISOString();
}

/** Human label for a review state. */
export function fmtReviewState(review) {
  if (!review) return 'unreviewed';
  if (review.state === 'confirmed') return review.type ? `confirmed: ${review.type.replace(/_/g, ' ')}${review.severity ? ` · ${review.severity}` : ''}` : 'confirmed defect';
  if (review.state === 'false_alarm') return 'false alarm';
  return String(review.state);
}

// ---------------------------------------------------------------- frame notes

const NO_TRACK = 'no track found';
const NO_FASTENER = 'no fastener found in the frame';
const ALL_PARTIAL = "every fastener slot is cut by the frame's edge";

/**
 * What the server's `note` of an inspection (docs/api.yaml, Inspection.note) means for an
 * inspector: why a verdict stands without a scored crop. Null for an ordinary frame (no note).
 *   kind      'no_track' | 'no_fastener' | 'all_partial' | 'other'
 *   tag       a short label for list rows and tiles, shown instead of a score
 *   headline  the notice line above the image
 *   reason    the server's reason after "no track found: " (null for the other kinds)
 *   text      the note as the server wrote it
 */
export function frameNote(note) {
  if (typeof note !== 'string' || !note.trim()) return null;
  const text = note.trim();
  const lower = text.toLowerCase();
  if (lower.startsWith(NO_TRACK)) {
    const reason = text.slice(NO_TRACK.length).replace(/^\s*:\s*/, '').trim() || null;
    return { kind: 'no_track', tag: 'no track', headline: 'No track found — blocked or misaimed camera?', reason, text };
  }
  if (lower.startsWith(NO_FASTENER)) {
    return { kind: 'no_fastener', tag: 'no fastener', headline: 'No fastener found in the frame — missing fasteners or a misaimed camera?', reason: null, text };
  }
  if (lower.startsWith(ALL_PARTIAL)) {
    return { kind: 'all_partial', tag: 'not scored', headline: 'Not scored — every fastener slot is cut by the frame’s edge', reason: null, text };
  }
  return { kind: 'other', tag: 'note', headline: text, reason: null, text };
}

/** Whether an inspection has a finite frame score A′ (false for frames judged without a scored crop). */
export function isScored(insp) {
  return finite(insp?.A_norm);
}

/**
 * The short tag a list row or a wall tile shows instead of the score: the note's tag when the
 * frame has a note and no scored crop, else null (the score is shown, '–' when missing).
 */
export function noteTag(insp) {
  const n = frameNote(insp?.note);
  if (!n) return null;
  if ((insp.crops ?? []).length && isScored(insp)) return null;
  return n.tag;
}

/** How A′ compares with the threshold in words: '>' or '≤', or null when the frame was not scored. */
export function scoreRelation(aNorm, threshold) {
  if (!finite(aNorm) || !finite(threshold)) return null;
  return aNorm > threshold ? '>' : '≤';
}
