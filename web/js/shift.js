// Pure logic of the start-of-shift view (no DOM, no network): the person's last visit, a
// camera's defect rate against its normal, the track section seen, whether the server itself
// is unreachable (as opposed to a silent camera) and a tile's steady defect emphasis.

import { fmtPercent } from './format.js';

/** localStorage key of the last visit (epoch ms), per browser. */
export const LAST_VISIT_KEY = 'railscope.lastVisit';
/** Without a remembered visit the summary starts this long ago (a shift). */
export const DEFAULT_SHIFT_MS = 12 * 3600_000;
/** A tile keeps its defect emphasis this long after the camera's last defect. */
export const DEFECT_HOLD_MS = 5 * 60_000;

/** The remembered last visit (epoch ms) in `storage` (a Storage), or null. */
export function readLastVisit(storage) {
  try {
    const v = Number(storage?.getItem(LAST_VISIT_KEY));
    return Number.isFinite(v) && v > 0 ? v : null;
  } catch {
    return null;
  }
}

/** Remember `nowMs` as the last visit (private mode: nothing). */
export function writeLastVisit(storage, nowMs) {
  try { storage?.setItem(LAST_VISIT_KEY, String(Math.round(nowMs))); } catch { /* private mode */ }
}

/** Where the summary starts: the last visit when there is one in the past, else a shift ago. */
export function defaultSince(lastVisitMs, nowMs, shiftMs = DEFAULT_SHIFT_MS) {
  return Number.isFinite(lastVisitMs) && lastVisitMs > 0 && lastVisitMs < nowMs ? lastVisitMs : nowMs - shiftMs;
}

/**
 * Whether a camera's defect rate since the chosen time departs from its normal (the server's
 * 7-day `baseline`): 'high', 'low' or null (in line, or too few frames to tell). A departure is
 * more than three binomial standard deviations of the normal rate over the frames since, and at
 * least `minDiff` (2 points) — a camera with no normal yet (fewer than `minBaseline` frames)
 * never departs.
 */
export function rateDeparture(cam, { minFrames = 20, minBaseline = 50, minDiff = 0.02 } = {}) {
  const n = cam?.frames ?? 0;
  const baseN = cam?.baseline?.frames ?? 0;
  if (n < minFrames || baseN < minBaseline) return null;
  const p = (cam.baseline.defects ?? 0) / baseN;
  const r = (cam.defects ?? 0) / n;
  const sd = Math.sqrt((p * (1 - p)) / n);
  const d = r - p;
  if (Math.abs(d) < Math.max(minDiff, 3 * sd)) return null;
  return d > 0 ? 'high' : 'low';
}

/** "4.0 % (normal 1.2 %)" for a camera summary. */
export function describeRate(cam) {
  const base = cam?.baseline?.frames ? ` (normal ${fmtPercent(cam.baseline.defect_rate)})` : '';
  return `${fmtPercent(cam?.frames ? cam.defect_rate : 0)}${base}`;
}

/** The track sections of a camera summary in words: "L2 km 1.000–1.400 · L9". */
export function describeTracks(tracks) {
  if (!tracks?.length) return '–';
  const km = (m) => (m / 1000).toFixed(3);
  return tracks.map((t) => {
    const lo = t.min_position_m, hi = t.max_position_m;
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) return t.track_id;
    return lo === hi ? `${t.track_id} km ${km(lo)}` : `${t.track_id} km ${km(lo)}–${km(hi)}`;
  }).join(' · ');
}

/** Confirmed defects by severity in words, most severe first: "1 immediate, 3 plan"; '' when none. */
export function describeSeverities(bySeverity, order = ['immediate', 'plan', 'monitor']) {
  const keys = Object.keys(bySeverity ?? {}).filter((k) => bySeverity[k] > 0);
  const rank = (k) => { const i = order.indexOf(k); return i < 0 ? order.length : i; };
  keys.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return keys.map((k) => `${bySeverity[k]} ${k}`).join(', ');
}

/**
 * The connection to the server after a request: `ok` (any answer, even an error status other
 * than a gateway's 502/503/504) clears it; a failure to reach it starts an outage at `nowMs`
 * (kept from the first failure). `{ downSince: ms | null }`; the same object when unchanged.
 */
export function connectivityAfter(conn, reached, nowMs) {
  if (reached) return conn.downSince == null ? conn : { downSince: null };
  return conn.downSince != null ? conn : { downSince: nowMs };
}

/**
 * Whether an HTTP answer came from railscope itself: anything but a gateway's 502–504. Its own
 * errors are JSON (`{"error": …}`), so a 502 with a JSON body — `GET /v1/alerts` when Prometheus
 * is down — says the server is up and only Prometheus is not.
 */
export function answeredByServer(status, contentType) {
  if (![502, 503, 504].includes(status)) return true;
  return /^application\/json\b/i.test(contentType ?? '');
}

/** Whether an error means the server was not reached (network failure or a gateway's 502–504). */
export function isUnreachable(err) {
  return err?.status === 0 || err?.status === 502 || err?.status === 503 || err?.status === 504;
}

/**
 * A tile's state: 'unknown' while the server itself is unreachable (nothing can be said of a
 * camera then), else 'silent' or 'live' as `silent` says.
 */
export function tileState(silent, serverDownSince) {
  if (serverDownSince != null) return 'unknown';
  return silent ? 'silent' : 'live';
}

/** Whether a tile shows its defect emphasis: a defect arrived within `holdMs` (steady, not per frame). */
export function recentDefect(lastDefectAt, nowMs, holdMs = DEFECT_HOLD_MS) {
  return Number.isFinite(lastDefectAt) && nowMs - lastDefectAt <= holdMs;
}

/**
 * The alerts part of the start-of-shift panel from `GET /v1/alerts` (`answer`) or its failure
 * (`error`, an ApiError): `{ status, text, firing, pending, groups }` where status is `loading`,
 * `not_connected` (no Prometheus configured), `unavailable` (Prometheus could not be asked),
 * `clear` (none firing or pending) or `alerts`; groups are per camera (configured order of
 * `cameraOrder`, then others), then the service-wide ones (`camera: null`).
 */
export function describeAlerts(answer, error, cameraOrder = []) {
  const empty = { firing: 0, pending: 0, groups: [] };
  if (error) {
    const why = String(error.message ?? error).replace(/^alerts unavailable:\s*/i, '');
    return { ...empty, status: 'unavailable', text: `Alerts unavailable: ${why}` };
  }
  if (!answer) return { ...empty, status: 'loading', text: 'Reading the alerts…' };
  if (!answer.connected) return { ...empty, status: 'not_connected', text: 'Alerts not connected: no Prometheus is configured ([alerts] prometheus_url).' };
  const list = answer.alerts ?? [];
  const firing = list.filter((a) => a.state === 'firing').length;
  const pending = list.filter((a) => a.state === 'pending').length;
  if (!list.length) return { ...empty, status: 'clear', text: 'No railscope alert is firing or pending.' };
  const byCam = new Map();
  for (const a of list) {
    const k = a.camera ?? null;
    if (!byCam.has(k)) byCam.set(k, []);
    byCam.get(k).push(a);
  }
  const rank = (cam) => {
    if (cam == null) return [2, ''];
    const i = cameraOrder.indexOf(cam);
    return i < 0 ? [1, cam] : [0, String(i).padStart(6, '0')];
  };
  const keys = [...byCam.keys()].sort((a, b) => {
    const [ra, sa] = rank(a), [rb, sb] = rank(b);
    return ra - rb || sa.localeCompare(sb);
  });
  const parts = [];
  if (firing) parts.push(`${firing} alert${firing === 1 ? '' : 's'} firing`);
  if (pending) parts.push(`${pending} pending`);
  return {
    status: 'alerts',
    text: parts.join(', '),
    firing,
    pending,
    groups: keys.map((camera) => ({ camera, alerts: byCam.get(camera) })),
  };
}

/** A camera's alerts from `GET /v1/alerts` (those labelled with it): `{ firing, pending, names }`. */
export function cameraAlerts(answer, cameraId) {
  const mine = (answer?.connected ? answer.alerts ?? [] : []).filter((a) => a.camera === cameraId);
  return {
    firing: mine.filter((a) => a.state === 'firing').length,
    pending: mine.filter((a) => a.state === 'pending').length,
    names: [...new Set(mine.map((a) => a.name))],
  };
}
