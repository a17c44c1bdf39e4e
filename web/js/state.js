// Pure state reducers (no DOM, no network): cameras on the live wall, the review queue,
// review filters and their query strings. Every function returns new objects and never mutates
// its arguments, so the store can compare by reference.

import { parseTime } from './format.js';

/** Window over which the wall computes frames/s from live events. */
export const FPS_WINDOW_MS = 10_000;
/** A camera with no frame for this long is shown silent (server default server.silent_after_s). */
export const SILENT_AFTER_MS = 30_000;

// ---------------------------------------------------------------- cameras (live wall)

/** An empty cameras state. */
export function emptyCameras() {
  return { order: [], byId: {} };
}

function freshLive() {
  return { latest: null, latestImage: null, arrivals: [], lastArrival: null, lastDefectAt: null };
}

/**
 * Merge a GET /v1/cameras answer into the cameras state. Live fields (latest frame, latest
 * image, arrival times) are kept; counts are taken from the server unless the live state has
 * already counted a newer inspection than the server's answer knew of.
 */
export function mergeCameras(state, cameras) {
  const byId = {};
  const order = [];
  for (const cam of cameras) {
    const old = state.byId[cam.id];
    order.push(cam.id);
    if (!old) {
      byId[cam.id] = { ...cam, live: freshLive() };
      continue;
    }
    const serverIsNewer = (cam.last_inspection_id ?? -1) >= (old.last_inspection_id ?? -1);
    const counts = serverIsNewer
      ? {}
      : {
          frames: old.frames,
          defects: old.defects,
          defect_rate: old.defect_rate,
          last_inspection_id: old.last_inspection_id,
          last_frame_at: old.last_frame_at,
        };
    byId[cam.id] = { ...cam, ...counts, live: old.live };
  }
  // Cameras seen only through events stay (after the configured ones).
  for (const id of state.order) {
    if (!byId[id]) {
      byId[id] = state.byId[id];
      order.push(id);
    }
  }
  return { order, byId };
}

/** Keep only arrival times inside the fps window (plus a little slack). */
export function trimArrivals(arrivals, nowMs, windowMs = FPS_WINDOW_MS) {
  const from = nowMs - windowMs;
  let i = 0;
  while (i < arrivals.length && arrivals[i] < from) i++;
  return i === 0 ? arrivals : arrivals.slice(i);
}

/**
 * Apply one SSE `inspection` event (an Inspection) that arrived at nowMs (client clock).
 * Counts only inspections newer than the camera's last counted one, so a refresh of
 * /v1/cameras and the event stream never count a frame twice.
 */
export function applyInspection(state, insp, nowMs) {
  const id = insp.camera;
  const old = state.byId[id] ?? {
    id,
    name: id,
    frames: 0,
    defects: 0,
    defect_rate: 0,
    recent_fps: 0,
    last_frame_at: null,
    silent: false,
    last_inspection_id: null,
    calibration: null,
    live: freshLive(),
  };
  const isNew = old.last_inspection_id == null || insp.id > old.last_inspection_id;
  const cam = { ...old };
  if (isNew) {
    cam.frames = (old.frames ?? 0) + 1;
    cam.defects = (old.defects ?? 0) + (insp.verdict === 'defect' ? 1 : 0);
    cam.defect_rate = cam.frames > 0 ? cam.defects / cam.frames : 0;
    cam.last_inspection_id = insp.id;
    cam.last_frame_at = insp.received_at ?? insp.capture_time ?? old.last_frame_at;
    cam.silent = false;
  }
  const live = { ...old.live };
  if (!live.latest || insp.id >= live.latest.id) live.latest = insp;
  if (insp.image_url && (!live.latestImage || insp.id >= live.latestImage.id)) live.latestImage = insp;
  live.arrivals = trimArrivals([...live.arrivals, nowMs], nowMs);
  live.lastArrival = nowMs;
  if (insp.verdict === 'defect') live.lastDefectAt = nowMs;
  cam.live = live;
  const order = state.byId[id] ? state.order : [...state.order, id];
  return { order, byId: { ...state.byId, [id]: cam } };
}

/** Seed a camera's latest frame / latest image from GET /v1/inspections?camera=… (newest first). */
export function seedLatest(state, cameraId, items) {
  const old = state.byId[cameraId];
  if (!old || !items.length) return state;
  const live = { ...old.live };
  const newest = items[0];
  if (!live.latest || newest.id > live.latest.id) live.latest = newest;
  const withImage = items.find((i) => i.image_url);
  if (withImage && (!live.latestImage || withImage.id > live.latestImage.id)) live.latestImage = withImage;
  // The newest defect's arrival: the tile's defect emphasis holds for a while after it.
  for (const i of items) {
    const t = parseTime(i.received_at ?? i.capture_time);
    if (i.verdict === 'defect' && Number.isFinite(t) && !(live.lastDefectAt >= t)) live.lastDefectAt = t;
  }
  return { ...state, byId: { ...state.byId, [cameraId]: { ...old, live } } };
}

/**
 * Frames per second of a camera: from live arrivals once the stream has been open for a few
 * seconds (count in the window / the window, or the time since the stream opened when shorter),
 * else the server's recent_fps.
 */
export function cameraFps(cam, nowMs, streamOpenedAt, windowMs = FPS_WINDOW_MS) {
  if (streamOpenedAt == null || nowMs - streamOpenedAt < 3000) return cam.recent_fps ?? 0;
  const span = Math.min(windowMs, nowMs - streamOpenedAt);
  const from = nowMs - span;
  const n = cam.live.arrivals.filter((t) => t >= from && t <= nowMs).length;
  return n / (span / 1000);
}

/** Defect rate of a camera from its counts (0 when it has no frame). */
export function cameraDefectRate(cam) {
  if (!cam.frames) return 0;
  return cam.defects / cam.frames;
}

/**
 * Whether a camera is silent: with a live arrival, silent once nothing arrived for silentAfterMs
 * (client clock, no skew); otherwise what the server said (never sent counts as silent).
 */
export function isSilent(cam, nowMs, silentAfterMs = SILENT_AFTER_MS) {
  if (cam.live?.lastArrival != null) return nowMs - cam.live.lastArrival > silentAfterMs;
  if (cam.silent) return true;
  return cam.last_frame_at == null;
}

// ---------------------------------------------------------------- review queue

/**
 * The review filters. `sort`: `newest` (id descending) or `score` (A′ descending, ties by id,
 * unscored last: the server's order). `min_score` in A′; `from_km` / `to_km` as typed, in km
 * (sent in metres); all strings as the form holds them ('' = not set).
 */
export const DEFAULT_FILTERS = Object.freeze({
  camera: '', verdict: 'defect', review: 'unreviewed', since: '', until: '', sort: 'newest', min_score: '', track_id: '', from_km: '', to_km: '',
});

export const SORTS = Object.freeze(['newest', 'score']);

const num = (v) => {
  const s = String(v ?? '').trim();
  if (s === '') return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
};

/** Kilometres as typed → metres (to 0.1 m); null when empty or not a number. */
export function kmToMetres(km) {
  const n = num(km);
  return n === null ? null : Math.round(n * 1e4) / 10;
}

/**
 * The conditions of the filters as the API names them, empty ones left out, no sort and no
 * paging: the query of GET /v1/inspections and the `filter` of a bulk review
 * (POST /v1/review-batches) are built from this one object, so they select the same set.
 */
export function filterConditions(f) {
  const c = {};
  for (const k of ['camera', 'verdict', 'review', 'since', 'until']) if (f[k]) c[k] = f[k];
  const track = String(f.track_id ?? '').trim();
  if (track) c.track_id = track;
  const lo = kmToMetres(f.from_km);
  if (lo !== null) c.min_position_m = lo;
  const hi = kmToMetres(f.to_km);
  if (hi !== null) c.max_position_m = hi;
  const min = num(f.min_score);
  if (min !== null) c.min_score = min;
  return c;
}

/** What the count of a filter depends on (not the sort): equal keys, equal counts. */
export function countKey(filters) {
  return new URLSearchParams(Object.entries(filterConditions(filters)).map(([k, v]) => [k, String(v)])).toString();
}

/** Whether the filters select exactly the unreviewed defects (what the Review badge counts). */
export function isUnreviewedQueue(filters) {
  return countKey(filters) === countKey(DEFAULT_FILTERS);
}

export function emptyQueue(filters = DEFAULT_FILTERS) {
  return {
    filters: { ...filters }, items: [], nextCursor: null, total: null, recount: false,
    pinned: null, missingId: null, loading: false, loaded: false, error: null, selectedId: null,
  };
}

/** Query string for GET /v1/inspections from filters (empty values left out). */
export function filtersToQuery(filters, extra = {}) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(filterConditions(filters))) p.set(k, String(v));
  if (filters.sort && filters.sort !== 'newest') p.set('sort', filters.sort);
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  return p.toString();
}

/** Whether an inspection belongs in a list with these filters (the server's filter semantics). */
export function matchesFilters(insp, filters) {
  if (filters.camera && insp.camera !== filters.camera) return false;
  if (filters.verdict && insp.verdict !== filters.verdict) return false;
  const state = insp.review?.state ?? null;
  switch (filters.review) {
    case 'unreviewed':
      if (state) return false;
      break;
    case 'reviewed':
      if (!state) return false;
      break;
    case 'confirmed':
    case 'false_alarm':
      if (state !== filters.review) return false;
      break;
    default:
      break;
  }
  // The server filters times on arrival (received_at), until exclusive.
  const t = parseTime(insp.received_at ?? insp.capture_time);
  if (filters.since && !(t >= parseTime(filters.since))) return false;
  if (filters.until && !(t < parseTime(filters.until))) return false;
  const c = filterConditions(filters);
  if (c.track_id && insp.track_id !== c.track_id) return false;
  const at = insp.position_m;
  if (c.min_position_m !== undefined && !(Number.isFinite(at) && at >= c.min_position_m)) return false;
  if (c.max_position_m !== undefined && !(Number.isFinite(at) && at <= c.max_position_m)) return false;
  if (c.min_score !== undefined && !(Number.isFinite(insp.A_norm) && insp.A_norm >= c.min_score)) return false;
  return true;
}

/** The list's order as a comparator: newest first, or highest A′ first (ties by id, unscored last). */
export function compareItems(sort) {
  if (sort !== 'score') return (a, b) => b.id - a.id;
  return (a, b) => {
    const x = Number.isFinite(a.A_norm), y = Number.isFinite(b.A_norm);
    if (x && y && a.A_norm !== b.A_norm) return b.A_norm - a.A_norm;
    if (x !== y) return x ? -1 : 1;
    return b.id - a.id;
  };
}

function sorted(items, sort) {
  return [...items].sort(compareItems(sort));
}

function nextCursorOf(page) {
  if (page.next_cursor != null) return String(page.next_cursor);
  return page.next_before_id != null ? String(page.next_before_id) : null;
}

function totalOf(page, fallback = null) {
  return Number.isFinite(page.total) ? page.total : fallback;
}

/** The linked inspection stays pinned above the list only while the list does not hold it. */
function unpin(queue) {
  return queue.pinned && queue.items.some((i) => i.id === queue.pinned.id) ? { ...queue, pinned: null } : queue;
}

/** Replace the list with a first page. Keeps the selection when it is still listed (or pinned). */
export function queueLoaded(queue, page) {
  const items = sorted(page.items ?? [], queue.filters.sort);
  const keep = (id) => id != null && (items.some((i) => i.id === id) || queue.pinned?.id === id || queue.missingId === id);
  const selectedId = keep(queue.selectedId) ? queue.selectedId : (items[0]?.id ?? null);
  return unpin({ ...queue, items, nextCursor: nextCursorOf(page), total: totalOf(page), recount: false, loading: false, loaded: true, error: null, selectedId });
}

/** Append a further page (paging with the cursor), skipping ids already listed. */
export function queueAppended(queue, page) {
  const seen = new Set(queue.items.map((i) => i.id));
  const more = (page.items ?? []).filter((i) => !seen.has(i.id));
  const items = sorted([...queue.items, ...more], queue.filters.sort);
  return unpin({ ...queue, items, nextCursor: nextCursorOf(page), total: totalOf(page, queue.total), loading: false, error: null, selectedId: queue.selectedId ?? items[0]?.id ?? null });
}

/** The server's count for the filters with key `key` (ignored when the filters changed since). */
export function queueCounted(queue, key, total) {
  if (!queue.loaded || countKey(queue.filters) !== key || !Number.isFinite(total)) return queue;
  return { ...queue, total, recount: false };
}

function removeAt(queue, index) {
  const items = queue.items.slice(0, index).concat(queue.items.slice(index + 1));
  let selectedId = queue.selectedId;
  if (queue.items[index].id === queue.selectedId) {
    // The next item takes the removed one's place; at the end, the previous one.
    selectedId = items[Math.min(index, items.length - 1)]?.id ?? null;
  }
  return { ...queue, items, selectedId };
}

/**
 * A new or updated inspection (SSE `inspection` / `review` event or a review answer): inserted
 * when it matches the filters and falls inside the loaded range, replaced when listed and
 * still matching, removed when listed and no longer matching. `isNew`: a frame just inspected
 * (an `inspection` event), which the total did not count yet. The total follows what is known;
 * a change it cannot know (a review of an item not loaded: did it match before?) sets
 * `recount`, and the page asks the server again.
 */
export function queueUpsert(queue, insp, { isNew = false } = {}) {
  if (queue.pinned?.id === insp.id) queue = { ...queue, pinned: insp };
  const index = queue.items.findIndex((i) => i.id === insp.id);
  const match = matchesFilters(insp, queue.filters);
  const total = (d) => (queue.total == null ? null : Math.max(0, queue.total + d));
  if (index >= 0) {
    if (!match) return { ...removeAt(queue, index), total: total(-1) };
    const items = queue.items.slice();
    items[index] = insp;
    return { ...queue, items };
  }
  if (!queue.loaded) return queue;
  if (!match) return isNew ? queue : { ...queue, recount: true };
  const counted = isNew ? { total: total(+1) } : { recount: true };
  const last = queue.items[queue.items.length - 1];
  // After everything loaded while more pages exist: it belongs to a page not loaded yet.
  if (last && compareItems(queue.filters.sort)(insp, last) > 0 && queue.nextCursor != null) return { ...queue, ...counted };
  const items = sorted([...queue.items, insp], queue.filters.sort);
  return unpin({ ...queue, ...counted, items, selectedId: queue.selectedId ?? insp.id });
}

/** Move the selection by delta (+1 = next, −1 = previous), clamped to the list. */
export function queueMove(queue, delta) {
  if (!queue.items.length) return queue;
  const index = queue.items.findIndex((i) => i.id === queue.selectedId);
  const next = index < 0 ? 0 : Math.max(0, Math.min(queue.items.length - 1, index + delta));
  const selectedId = queue.items[next].id;
  return selectedId === queue.selectedId ? queue : { ...queue, selectedId };
}

export function queueSelect(queue, id) {
  return queue.items.some((i) => i.id === id) || queue.pinned?.id === id ? { ...queue, selectedId: id } : queue;
}

export function queueSelected(queue) {
  return queue.items.find((i) => i.id === queue.selectedId) ?? (queue.pinned?.id === queue.selectedId ? queue.pinned : null);
}

/**
 * A deep link (#/review/<id>) found its inspection: selected, and pinned above the list while
 * the list does not hold it (another filter, a page not loaded).
 */
export function queuePinned(queue, insp) {
  return unpin({ ...queue, pinned: insp, missingId: null, selectedId: insp.id });
}

/** A deep link named no inspection: nothing selected, and the page says so. */
export function queueMissing(queue, id) {
  return { ...queue, pinned: null, missingId: id, selectedId: id };
}

/** Whether two filter sets select and order the same (a field left and re-entered changes nothing). */
export function sameFilters(a, b) {
  return Object.keys(DEFAULT_FILTERS).every((k) => String(a?.[k] ?? '').trim() === String(b?.[k] ?? '').trim());
}

/** New filters: an empty list to load again (the selection is dropped). */
export function queueWithFilters(queue, filters) {
  return { ...emptyQueue({ ...DEFAULT_FILTERS, ...filters }), loading: true };
}

/**
 * The number of unreviewed defects the Review badge shows: the review list's own total while
 * it lists exactly those (one number for both), else the app's count of them.
 */
export function badgeCount(queue, unreviewed) {
  if (queue.loaded && isUnreviewedQueue(queue.filters) && Number.isFinite(queue.total)) return queue.total;
  return Number.isFinite(unreviewed) ? unreviewed : null;
}

/** The filters in words for a header and a confirmation: "437 unreviewed defects from cam-01 …". */
export function describeSelection(f, n) {
  const verdict = f.verdict === 'defect' ? 'defect' : f.verdict === 'normal' ? 'normal frame' : 'inspection';
  const review = { unreviewed: 'unreviewed ', confirmed: 'confirmed ', false_alarm: 'false-alarm ', reviewed: 'reviewed ' }[f.review] ?? '';
  const parts = [`${n} ${review}${verdict}${n === 1 ? '' : 's'}`];
  if (f.camera) parts.push(`from ${f.camera}`);
  const c = filterConditions(f);
  if (c.min_score !== undefined) parts.push(`with A′ ≥ ${c.min_score}`);
  if (c.track_id || c.min_position_m !== undefined || c.max_position_m !== undefined) {
    const km = (m) => (m / 1000).toFixed(3);
    const range = c.min_position_m !== undefined && c.max_position_m !== undefined
      ? `km ${km(c.min_position_m)}–${km(c.max_position_m)}`
      : c.min_position_m !== undefined ? `from km ${km(c.min_position_m)}` : c.max_position_m !== undefined ? `up to km ${km(c.max_position_m)}` : '';
    parts.push(c.track_id ? [`on track ${c.track_id}`, range].filter(Boolean).join(' ') : range);
  }
  if (f.since || f.until) parts.push('in the chosen time range');
  return parts.join(' ');
}

/** The body of a bulk review of everything the filters match, as counted (`expected`, up to `maxId`). */
export function bulkBody(filters, { state, note = '', expected, maxId, type, severity }) {
  const body = { filter: { ...filterConditions(filters), max_id: maxId }, expected_count: expected, state, note };
  if (state === 'confirmed') {
    if (type) body.type = type;
    if (severity) body.severity = severity;
  }
  return body;
}

/** What an undo answer says in words: restored, and those skipped because reviewed again since. */
export function describeUndo(batch) {
  const restored = batch?.undone?.restored?.length ?? 0;
  const skipped = batch?.undone?.skipped ?? [];
  let text = `Undone: ${restored} inspection${restored === 1 ? '' : 's'} restored`;
  if (skipped.length) {
    const ids = skipped.slice(0, 5).map((s) => `#${s.id}`).join(', ');
    text += `; ${skipped.length} left as ${skipped.length === 1 ? 'it is' : 'they are'} (reviewed again since: ${ids}${skipped.length > 5 ? ', …' : ''})`;
  }
  return `${text}.`;
}

// ---------------------------------------------------------------- score bar

/**
 * Geometry of the small score-vs-threshold bar, in percent of the bar width: the scale runs to
 * max(1, 1.1·score, 1.1·threshold) so both always fit. A missing score (a frame judged without a
 * scored crop, see Inspection.note) is `scored: false`: an empty bar, never "over".
 */
export function scoreBar(score, threshold) {
  const scored = Number.isFinite(score);
  const s = scored ? Math.max(0, score) : 0;
  const t = Number.isFinite(threshold) ? Math.max(0, threshold) : 0;
  const max = Math.max(1, s * 1.1, t * 1.1);
  return { scorePct: (s / max) * 100, thresholdPct: (t / max) * 100, over: scored && s > t, max, scored };
}
