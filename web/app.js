// railscope inspector dashboard: bootstrap, login/session, server-sent events, hash routing.
// Pure logic lives in js/*.js (unit-tested with node --test); views in js/views/*.js.

import { createApi } from './js/api.js';
import { createStore } from './js/store.js';
import { parseRoute, routeHash } from './js/router.js';
import { applyInspection, badgeCount, countKey, emptyCameras, emptyQueue, filtersToQuery, isSilent, isUnreviewedQueue, mergeCameras, queueCounted, queueUpsert, seedLatest, DEFAULT_FILTERS } from './js/state.js';
import { answeredByServer, connectivityAfter, defaultSince, readLastVisit, writeLastVisit } from './js/shift.js';
import { fmtDuration, fmtTime } from './js/format.js';
import { loginBody, loginFailureMessage, signedInAs } from './js/login.js';
import { createWallView } from './js/views/wall.js';
import { createReviewView } from './js/views/review.js';
import { createTrendsView } from './js/views/trends.js';
import { createDefectsView } from './js/views/defects-view.js';
import { createCalibrationView } from './js/views/calibration-view.js';

const CAMERA_REFRESH_MS = 10_000;
/** Counts asked again at most this often after events they cannot follow (reviews elsewhere). */
const RECOUNT_MS = 1000;

const store = createStore({
  role: null,
  route: parseRoute(location.hash),
  cameras: emptyCameras(),
  queue: emptyQueue(),
  streamState: 'connecting',
  streamOpenedAt: null,
  now: Date.now(),
  // The server's count of unreviewed defects (the Review badge; while the review list shows
  // exactly those, the badge shows the list's own total: one number for both).
  unreviewed: null,
  // Since when the server cannot be reached (epoch ms), or null: distinct from a silent camera.
  serverDownSince: null,
  // The start-of-shift summary: since (epoch ms), the server's answer, an error message.
  shift: { since: null, data: null, error: null },
  // GET /v1/alerts: the answer ({connected, alerts}) or the error that came instead.
  alerts: { data: null, error: null },
});

const $ = (id) => document.getElementById(id);
// Every API answer says the server is reachable; a network failure (or a gateway's 502–504,
// not railscope's own JSON error) that it is not. The wall then shows one banner instead of every camera turning silent.
function noteReach(reached) {
  store.set((st) => {
    const next = connectivityAfter({ downSince: st.serverDownSince }, reached, Date.now());
    return next.downSince === st.serverDownSince ? {} : { serverDownSince: next.downSince };
  });
}
async function trackedFetch(...args) {
  try {
    const res = await globalThis.fetch(...args);
    noteReach(answeredByServer(res.status, res.headers.get('Content-Type')));
    return res;
  } catch (e) {
    noteReach(false);
    throw e;
  }
}
const api = createApi(trackedFetch, { onUnauthorized: () => { if (store.get().role) endSession('Your session ended; please log in again.'); } });

// ------------------------------------------------------------------ toasts
/** A message at the bottom; with `action` ({label, run}) a button too, and it stays longer. */
function toast(message, kind = 'info', action = null) {
  const el = document.createElement('div');
  el.className = `toast ${kind === 'error' ? 'error' : ''}`;
  const text = document.createElement('span');
  text.textContent = message;
  el.appendChild(text);
  if (action) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'btn small toast-action';
    b.textContent = action.label;
    b.addEventListener('click', () => { el.remove(); action.run(); });
    el.appendChild(b);
  }
  $('toasts').appendChild(el);
  setTimeout(() => el.remove(), action ? 20_000 : kind === 'error' ? 8000 : 3500);
  return el;
}

// ------------------------------------------------------------------ views
const ctx = {
  store,
  api,
  toast,
  isAdmin: () => store.get().role === 'admin',
  navigate: (view, arg) => { location.hash = routeHash(view, arg); },
  openReview: (filters) => {
    views.review.setFilters({ ...DEFAULT_FILTERS, ...filters });
    ctx.navigate('review');
  },
  applyReviewed: (insp) => applyReviewEvent(insp),
  refreshCameras: () => refreshCameras(),
  refreshCounts: () => refreshCounts(),
  // The summary's start: a time (epoch ms), or null for the last visit.
  setShiftSince: (ms) => {
    const since = ms ?? defaultSince(lastVisitAtStart, Date.now());
    store.set((st) => ({ shift: { ...st.shift, since, data: null, error: null } }));
    refreshSummary().catch(() => {});
  },
};

const views = {
  wall: createWallView(ctx),
  review: createReviewView(ctx),
  defects: createDefectsView(ctx),
  trends: createTrendsView(ctx),
  calibration: createCalibrationView(ctx),
};

function showRoute() {
  const { role, route } = store.get();
  if (!role) return;
  for (const [name, v] of Object.entries(views)) {
    const active = name === route.view;
    const wasHidden = v.root.hidden;
    v.root.hidden = !active;
    if (active && wasHidden) v.show(store.get(), route.arg);
    if (!active && !wasHidden) v.hide?.();
  }
  for (const a of document.querySelectorAll('.views-nav a')) {
    if (a.dataset.view === route.view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `railscope · ${{ wall: 'Live wall', review: 'Review queue', defects: 'Defects', trends: 'Trends', calibration: 'Calibration' }[route.view]}`;
}

window.addEventListener('hashchange', () => {
  const prev = store.get().route;
  const next = parseRoute(location.hash);
  store.set({ route: next });
  if (next.view === prev.view && next.view === 'review' && next.arg != null) views.review.show(store.get(), next.arg);
  showRoute();
});

store.subscribe((state, prev) => {
  for (const v of Object.values(views)) v.update(state, prev);
  if (state.unreviewed !== prev.unreviewed || state.queue !== prev.queue) {
    const n = badgeCount(state.queue, state.unreviewed);
    const b = $('review-badge');
    if (b.dataset.count !== String(n)) {
      b.hidden = !n;
      b.dataset.count = String(n);
      b.textContent = String(n ?? '');
      b.setAttribute('aria-label', `${n ?? 0} unreviewed defect${n === 1 ? '' : 's'}`);
    }
  }
  if (state.serverDownSince !== prev.serverDownSince || (state.serverDownSince != null && state.now !== prev.now)) {
    const b = $('server-banner');
    const down = state.serverDownSince;
    b.hidden = down == null;
    if (down != null) {
      b.textContent = `Cannot reach the server since ${fmtTime(new Date(down).toISOString(), state.now)} (${fmtDuration(state.now - down)}). `
        + 'Camera states are unknown until it answers again; retrying.';
    }
    document.body.classList.toggle('server-down', down != null);
  }
  if (state.cameras !== prev.cameras || state.now !== prev.now || state.serverDownSince !== prev.serverDownSince) {
    const n = state.serverDownSince != null ? 0 : state.cameras.order.filter((id) => isSilent(state.cameras.byId[id], state.now)).length;
    const b = $('silent-badge');
    b.hidden = n === 0;
    b.textContent = String(n);
    b.setAttribute('aria-label', `${n} silent camera${n === 1 ? '' : 's'}`);
    b.title = `${n} silent camera${n === 1 ? '' : 's'}`;
  }
  if (state.streamState !== prev.streamState) {
    const s = $('stream-status');
    s.dataset.state = state.streamState;
    s.textContent = { live: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…', closed: 'offline' }[state.streamState] ?? state.streamState;
  }
});

// ------------------------------------------------------------------ data
async function refreshCameras() {
  const res = await api.cameras();
  store.set((st) => ({ cameras: mergeCameras(st.cameras, res?.cameras ?? []) }));
  return res;
}

// The person's previous visit (this browser), read once a session: the summary's default start.
let lastVisitAtStart = null;

async function refreshSummary() {
  const { since } = store.get().shift;
  if (!Number.isFinite(since)) return;
  try {
    const data = await api.summary({ since: new Date(since).toISOString() });
    store.set((st) => (st.shift.since === since ? { shift: { since, data, error: null } } : {}));
  } catch (e) {
    store.set((st) => (st.shift.since === since ? { shift: { ...st.shift, error: e.message } } : {}));
  }
}

async function refreshAlerts() {
  try {
    const data = await api.alerts();
    store.set({ alerts: { data, error: null } });
  } catch (e) {
    if (e.status === 401) return;
    store.set({ alerts: { data: null, error: { status: e.status, code: e.code, message: e.message } } });
  }
}

function recordVisit() {
  if (store.get().role) writeLastVisit(localStorage, Date.now());
}
window.addEventListener('pagehide', recordVisit);
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') recordVisit(); });

async function seedWall() {
  // The latest frame that still has an image (normal frames' images are only kept by sampling).
  // The server names it in last_image_inspection_id when it can; otherwise scan the newest page.
  const { order, byId } = store.get().cameras;
  await Promise.all(order.map(async (id) => {
    try {
      const items = [];
      const { last_inspection_id: last, last_image_inspection_id: withImage } = byId[id];
      if (withImage != null) {
        if (last != null && last !== withImage) items.push(await api.inspection(last));
        items.push(await api.inspection(withImage));
      } else if (last != null) items.push(...((await api.inspections({ camera: id, limit: 50 }))?.items ?? []));
      store.set((st) => ({ cameras: seedLatest(st.cameras, id, items) }));
    } catch { /* the tile says "no kept frame yet" */ }
  }));
}

// Counts are the server's `total` of GET /v1/inspections (the same conditions as the list): the
// unreviewed defects for the badge and, when the review list has other filters, its own. Live
// events keep them exact where they can; a change they cannot follow (a review of an item not
// loaded) asks the server again, at most every RECOUNT_MS.
async function refreshCounts() {
  const { queue } = store.get();
  const key = countKey(queue.filters);
  const own = queue.loaded && !isUnreviewedQueue(queue.filters);
  const [unreviewed, listed] = await Promise.all([
    api.inspections(filtersToQuery(DEFAULT_FILTERS, { limit: 1 })),
    own ? api.inspections(filtersToQuery(queue.filters, { limit: 1 })) : null,
  ]);
  store.set((st) => {
    const n = unreviewed?.total ?? null;
    const q = own ? queueCounted(st.queue, key, listed?.total) : queueCounted(st.queue, countKey(DEFAULT_FILTERS), n);
    return { unreviewed: n, queue: q };
  });
}

let countTimer = null;
function scheduleCount(delay = RECOUNT_MS) {
  if (countTimer) return;
  countTimer = setTimeout(() => {
    countTimer = null;
    refreshCounts().catch(() => { /* next event or refresh */ });
  }, delay);
}

/** The badge's count follows what an event says for sure; anything else is counted again. */
function trackUnreviewed(kind, insp) {
  if (kind === 'inspection') {
    if (insp.verdict === 'defect' && !insp.review) store.set((st) => ({ unreviewed: st.unreviewed == null ? null : st.unreviewed + 1 }));
  } else {
    scheduleCount();
  }
}

// Events are applied in small batches so a busy line does not re-render per frame.
let pending = [];
let flushTimer = null;
function enqueue(kind, insp) {
  pending.push([kind, insp, Date.now()]);
  if (!flushTimer) flushTimer = setTimeout(flush, 150);
}
function flush() {
  flushTimer = null;
  const batch = pending;
  pending = [];
  store.set((st) => {
    let { cameras, queue } = st;
    for (const [kind, insp, at] of batch) {
      if (kind === 'inspection') cameras = applyInspection(cameras, insp, at);
      queue = queueUpsert(queue, insp, { isNew: kind === 'inspection' });
    }
    return { cameras, queue };
  });
  for (const [kind, insp] of batch) trackUnreviewed(kind, insp);
  if (store.get().queue.recount) scheduleCount();
}

function applyReviewEvent(insp) {
  store.set((st) => ({ queue: queueUpsert(st.queue, insp) }));
  trackUnreviewed('review', insp);
  if (store.get().queue.recount) scheduleCount();
}

/** A bulk review or its undo (this page's or another's): the list and the counts are read again. */
function onReviewBatch() {
  if (store.get().queue.loaded) views.review.load();
  scheduleCount(0);
}

let es = null;
let retryTimer = null;
let everOpened = false;
function openStream() {
  closeStream();
  store.set({ streamState: everOpened ? 'reconnecting' : 'connecting' });
  es = new EventSource('/v1/events');
  es.addEventListener('open', () => {
    const reopened = everOpened;
    everOpened = true;
    store.set((st) => ({ streamState: 'live', streamOpenedAt: st.streamOpenedAt ?? Date.now() }));
    if (reopened) resync();
  });
  es.addEventListener('inspection', (e) => { try { enqueue('inspection', JSON.parse(e.data)); } catch { /* ignore a bad event */ } });
  es.addEventListener('review', (e) => { try { enqueue('review', JSON.parse(e.data)); } catch { /* ignore */ } });
  es.addEventListener('review_batch', () => onReviewBatch());
  es.addEventListener('error', () => {
    if (!es) return;
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (e.g. 401 after logout elsewhere): check the session, then retry.
      store.set({ streamState: 'reconnecting' });
      closeStream();
      api.me().then(() => { retryTimer = setTimeout(openStream, 3000); }, () => {});
    } else {
      store.set({ streamState: 'reconnecting' });
      // Is it the server that is gone? Ask at once (a failure shows the server-down banner).
      api.me().catch(() => {});
    }
  });
}
function closeStream() {
  clearTimeout(retryTimer);
  if (es) { es.close(); es = null; }
}

async function resync() {
  // After a gap in the stream, counts and the queue may have missed events.
  try {
    await refreshCameras();
    if (store.get().queue.loaded) await views.review.load();
    await refreshCounts();
  } catch { /* next refresh */ }
}

// ------------------------------------------------------------------ session
let tick = null;
let camTimer = null;
let probeTimer = null;

async function startSession(me) {
  const role = me?.role ?? 'inspector';
  store.set({ role });
  $('login-view').hidden = true;
  document.querySelector('.views-nav').hidden = false;
  document.querySelector('.session').hidden = false;
  $('role-label').textContent = role;
  $('who-label').textContent = signedInAs(me);
  lastVisitAtStart = readLastVisit(localStorage);
  store.set({ shift: { since: defaultSince(lastVisitAtStart, Date.now()), data: null, error: null } });
  for (const el of document.querySelectorAll('[data-admin]')) el.hidden = role !== 'admin';
  views.calibration.setAdmin(role === 'admin');
  try {
    await refreshCameras();
  } catch (e) {
    toast(`Could not load the cameras: ${e.message}`, 'error');
  }
  openStream();
  showRoute();
  seedWall();
  refreshCounts().catch(() => {});
  refreshSummary();
  refreshAlerts();
  tick = setInterval(() => store.set({ now: Date.now() }), 1000);
  camTimer = setInterval(() => {
    refreshCameras().catch(() => {});
    refreshCounts().catch(() => {});
    refreshSummary();
    refreshAlerts();
  }, CAMERA_REFRESH_MS);
  // While the server is unreachable, ask more often, so the banner goes as soon as it answers.
  probeTimer = setInterval(() => { if (store.get().serverDownSince != null) api.me().catch(() => {}); }, 3000);
}

function endSession(message) {
  recordVisit();
  closeStream();
  clearInterval(tick);
  clearInterval(camTimer);
  clearInterval(probeTimer);
  clearTimeout(countTimer);
  store.set({ role: null, cameras: emptyCameras(), queue: emptyQueue(), streamState: 'closed', streamOpenedAt: null, unreviewed: null, alerts: { data: null, error: null } });
  everOpened = false;
  for (const v of Object.values(views)) { v.root.hidden = true; v.hide?.(); }
  document.querySelector('.views-nav').hidden = true;
  document.querySelector('.session').hidden = true;
  // Start from a clean page for the next session (views rebuild their content).
  try { if (message) sessionStorage.setItem('railscope.loginMessage', message); } catch { /* private mode */ }
  location.reload();
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const tokenOpen = $('login-token-box').open;
  const { body, error } = loginBody({
    username: $('login-user').value,
    password: $('login-password').value,
    token: $('login-token').value,
    tokenOpen,
  });
  const err = $('login-error');
  if (error) { err.textContent = error; return; }
  $('login-submit').disabled = true;
  err.textContent = '';
  const viaToken = 'token' in body;
  try {
    const res = await api.login(body);
    $('login-token').value = '';
    $('login-password').value = '';
    await startSession(res);
    $('main').focus();
  } catch (ex) {
    err.textContent = loginFailureMessage(ex, viaToken);
    if (viaToken) $('login-token').select();
    else $('login-password').select();
  } finally {
    $('login-submit').disabled = false;
  }
});

$('logout-btn').addEventListener('click', async () => {
  try { await api.logout(); } catch { /* the cookie is gone either way */ }
  endSession();
});

$('reload-btn').addEventListener('click', async () => {
  try {
    const res = await api.reload();
    // every model in service with the cameras it judges (a camera may have its own)
    const models = (res?.models ?? []).map((m) => `${m.name} ${m.version}${m.cameras.length ? ` (${m.cameras.join(', ')})` : ''}`);
    toast(`Models reloaded: ${models.join(' · ')}`);
  } catch (e) {
    toast(`Reload failed: ${e.message}`, 'error');
  }
});

async function boot() {
  try {
    const me = await api.me();
    await startSession(me);
  } catch {
    $('login-view').hidden = false;
    try {
      $('login-error').textContent = sessionStorage.getItem('railscope.loginMessage') ?? '';
      sessionStorage.removeItem('railscope.loginMessage');
    } catch { /* private mode */ }
    $('login-user').focus();
  }
}
boot();
