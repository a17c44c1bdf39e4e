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
  return { latest: null, latestImage: null, arrivals: [], lastArrival: null };
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

export const DEFAULT_FILTERS = Object.freeze({ camera: '', verdict: 'defect', review: 'unreviewed', since: '', until: '' });

export function emptyQueue(filters = DEFAULT_FILTERS) {
  return { filters: { ...filters }, items: [], nextBeforeId: null, loading: false, loaded: false, error: null, selectedId: null };
}

/** Query string for GET /v1/inspections from filters (empty values left out). */
export function filtersToQuery(filters, extra = {}) {
  const p = new URLSearchParams();
  for (const key of ['camera', 'verdict', 'review', 'since', 'until']) {
    if (filters[key]) p.set(key, filters[key]);
  }
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
  const t = parseTime(insp.capture_time ?? insp.received_at);
  if (filters.since && !(t >= parseTime(filters.since))) return false;
  if (filters.until && !(t <= parseTime(filters.until))) return false;
  return true;
}

function sortNewestFirst(items) {
  return [...items].sort((a, b) => b.id - a.id);
}

/** Replace the list with a first page. Keeps the selection when it is still listed. */
export function queueLoaded(queue, page) {
  const items = sortNewestFirst(page.items ?? []);
  const selectedId = items.some((i) => i.id === queue.selectedId) ? queue.selectedId : (items[0]?.id ?? null);
  return { ...queue, items, nextBeforeId: page.next_before_id ?? null, loading: false, loaded: true, error: null, selectedId };
}

/** Append a further page (paging with before_id), skipping ids already listed. */
export function queueAppended(queue, page) {
  const seen = new Set(queue.items.map((i) => i.id));
  const more = (page.items ?? []).filter((i) => !seen.has(i.id));
  const items = sortNewestFirst([...queue.items, ...more]);
  return { ...queue, items, nextBeforeId: page.next_before_id ?? null, loading: false, error: null, selectedId: queue.selectedId ?? items[0]?.id ?? null };
}

function removeAt(queue, index) {
  const items = queue.items.slice(0, index).concat(queue.items.slice(index + 1));
  let selectedId = queue.selectedId;
  if (queue.items[index].id === queue.selectedId) {
    // The next (older) item takes the removed one's place; at the end, the previous one.
    selectedId = items[Math.min(index, items.length - 1)]?.id ?? null;
  }
  return { ...queue, items, selectedId };
}

/**
 * A new or updated inspection (SSE `inspection` / `review` event or a review answer): inserted
 * when it matches the filters and falls inside the loaded range, replaced when listed and
 * still matching, removed when listed and no longer matching.
 */
export function queueUpsert(queue, insp) {
  const index = queue.items.findIndex((i) => i.id === insp.id);
  const match = matchesFilters(insp, queue.filters);
  if (index >= 0) {
    if (!match) return removeAt(queue, index);
    const items = queue.items.slice();
    items[index] = insp;
    return { ...queue, items };
  }
  if (!match || !queue.loaded) return queue;
  const oldest = queue.items[queue.items.length - 1];
  // Older than everything loaded while more pages exist: it belongs to a page not loaded yet.
  if (oldest && insp.id < oldest.id && queue.nextBeforeId != null) return queue;
  const items = sortNewestFirst([...queue.items, insp]);
  return { ...queue, items, selectedId: queue.selectedId ?? insp.id };
}

/** Move the selection by delta (+1 = next/older, −1 = previous/newer), clamped to the list. */
export function queueMove(queue, delta) {
  if (!queue.items.length) return queue;
  const index = queue.items.findIndex((i) => i.id === queue.selectedId);
  const next = index < 0 ? 0 : Math.max(0, Math.min(queue.items.length - 1, index + delta));
  const selectedId = queue.items[next].id;
  return selectedId === queue.selectedId ? queue : { ...queue, selectedId };
}

export function queueSelect(queue, id) {
  return queue.items.some((i) => i.id === id) ? { ...queue, selectedId: id } : queue;
}

export function queueSelected(queue) {
  return queue.items.find((i) => i.id === queue.selectedId) ?? null;
}

/** New filters: an empty list to load again (the selection is dropped). */
export function queueWithFilters(queue, filters) {
  return { ...emptyQueue({ ...DEFAULT_FILTERS, ...filters }), loading: true };
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
