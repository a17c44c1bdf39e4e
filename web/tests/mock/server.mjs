// A development stand-in for `railscope serve`: the HTTP API contract with made-up scores and
// the fixture images, so the dashboard can be worked on without the Rust binary.
// The e2e test runs the real server; tests/unit/mock_server.test.mjs checks that the mock's bulk
// review keeps the documented contract (docs/api.yaml, /v1/review-batches).
//   node tests/mock/server.mjs [port]   → http://127.0.0.1:8099/  (token demo-inspector-token / demo-admin-token, or account alice / alice-password)
//   import { startMock } from './server.mjs'; const m = await startMock(0, { live: false });
import http from 'node:http';
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { join, extname, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = fileURLToPath(new URL('../../', import.meta.url));
const FIX = join(WEB, '..', 'tests', 'fixtures', 'fasteners', 'test');
const TOKENS = { 'demo-inspector-token': 'inspector', 'demo-admin-token': 'admin' };
// A named account as `railscope accounts add` would make one: name → [role, password].
const ACCOUNTS = { alice: ['inspector', 'alice-password'] };
const who = new Map();
const sessions = new Map();
const good = readdirSync(join(FIX, 'good')).map((f) => join(FIX, 'good', f));
const bad = readdirSync(FIX).filter((d) => d !== 'good').flatMap((d) => readdirSync(join(FIX, d)).map((f) => join(FIX, d, f)));
const cams = ['cam-01', 'cam-02', 'cam-03', 'cam-04'].map((id, i) => ({ id, name: `Line ${i + 1} km ${12 + i} down`, calibration: { min: 0.01, max: 0.2, threshold: 0.127, source: 'nested-edgan.json', origin: 'default', applied: null }, model: { name: 'nested-edgan', version: 'mock' } }));
const audit = [];
const items = [];
// Bulk reviews (POST /v1/review-batches): each with every inspection's review before it.
const batches = [];
const MAX_BULK = 1000;
let reviewSeq = 0;
const clients = new Set();
let nextId = 1;

function inspect(cam, n) {
  const defect = Math.random() < 0.2;
  const file = defect ? bad[n % bad.length] : good[n % good.length];
  const a = defect ? 0.15 + Math.random() * 0.8 : Math.random() * 0.16;
  const c = cams.find((x) => x.id === cam);
  const id = nextId++;
  const now = new Date().toISOString();
  const keep = a > c.calibration.threshold || id % 5 === 0;
  const it = { id, camera: cam, frame_id: `f-${String(id).padStart(6, '0')}`, capture_time: now, received_at: now, track_id: cam === 'cam-02' ? 'L2' : 'L1', position_m: 1000 + (id * 37) % 3000, speed_kmh: 80,
    R: a / 2, L: a, A: a, A_norm: a, threshold: c.calibration.threshold, verdict: a > c.calibration.threshold ? 'defect' : 'normal', model: { name: 'nested-edgan', version: 'mock' }, provider: 'cpu',
    crops: [{ box: [16, 16, 96, 96], R: a / 2, L: a, A: a, A_norm: a, verdict: a > c.calibration.threshold ? 'defect' : 'normal' }],
    partial_slots: id % 7 === 0 ? [[0, 40, 14, 48]] : [], note: null,
    image_url: keep ? `/v1/inspections/${id}/image` : null, heatmap_url: keep ? `/v1/inspections/${id}/heatmap` : null,
    reconstruction_url: keep ? `/v1/inspections/${id}/reconstruction` : null, review: null, _file: file };
  // Now and then a frame judged without a scored crop (Inspection.note): no score, no crops.
  if (id % 23 === 0) {
    Object.assign(it, { R: null, L: null, A: null, A_norm: null, verdict: 'defect', crops: [], partial_slots: [], note: 'no track found: no rail found: edge contrast 0.00 below 5',
      image_url: `/v1/inspections/${id}/image`, heatmap_url: null, reconstruction_url: null });
  }
  items.push(it);
  broadcast('inspection', it);
}
const pub = (it) => {
  const { _file, ...rest } = it;
  if (!rest.review) return rest;
  const { _seq, ...review } = rest.review;
  return { ...rest, review };
};
function broadcast(ev, it) { for (const r of clients) r.write(`event: ${ev}\ndata: ${JSON.stringify(pub(it))}\n\n`); }
let n = 0;
for (let i = 0; i < 60; i++) inspect(i % 2 ? 'cam-02' : 'cam-01', n++);

// The conditions of GET /v1/inspections, shared with the bulk review's `filter` (InspectionFilter).
const FILTER_KEYS = ['camera', 'verdict', 'review', 'since', 'until', 'track_id', 'min_position_m', 'max_position_m', 'min_score', 'max_id'];
function matcher(q) {
  const num = (v) => (v === undefined || v === null || v === '' ? null : Number(v));
  const [min, lo, hi, maxId] = [num(q.min_score), num(q.min_position_m), num(q.max_position_m), num(q.max_id)];
  return (i) => (!q.camera || i.camera === q.camera) && (!q.verdict || i.verdict === q.verdict)
    && (!q.review || (q.review === 'unreviewed' ? !i.review : q.review === 'reviewed' ? !!i.review : i.review?.state === q.review))
    && (!q.since || i.capture_time >= q.since) && (!q.until || i.capture_time <= q.until)
    && (min === null || (i.A_norm != null && i.A_norm >= min)) && (!q.track_id || i.track_id === q.track_id)
    && (lo === null || i.position_m >= lo) && (hi === null || i.position_m <= hi) && (maxId === null || i.id <= maxId);
}
const REVIEW_STATES = ['confirmed', 'false_alarm'];
function batchView(b) {
  return { id: b.id, at: b.at, reviewer: b.reviewer, state: b.review.state, note: b.review.note, type: b.review.type, severity: b.review.severity,
    rail_side: b.review.rail_side, sleeper: b.review.sleeper, selection: b.selection, count: b.items.length,
    items: b.items.map((x) => ({ id: x.id, camera: x.camera, previous: x.before?.state ?? 'unreviewed', undo: x.undo })),
    undone: b.undone && { ...b.undone, restored: b.items.filter((x) => x.undo === 'restored').map((x) => x.id),
      skipped: b.items.filter((x) => x.undo === 'skipped').map((x) => ({ id: x.id, reason: 'reviewed again since the bulk review' })) } };
}
const batchEvent = (b) => ({ id: b.id, state: b.review.state, count: b.items.length, undone: !!b.undone });
function broadcastRaw(ev, data) { for (const c of clients) c.write(`event: ${ev}\ndata: ${JSON.stringify(data)}\n\n`); }

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}
const err = (res, status, code, message) => send(res, status, { error: { code, message } });
function role(req) {
  const m = /railscope_session=([^;]+)/.exec(req.headers.cookie ?? '');
  return m ? sessions.get(m[1]) : TOKENS[(req.headers.authorization ?? '').replace('Bearer ', '')];
}
function effect(list, t) {
  let tp = 0, fp = 0, fn = 0, tn = 0;
  for (const i of list) { if (i.A_norm == null) continue; const p = i.A_norm > t, d = i.review.state === 'confirmed'; if (p && d) tp++; else if (p) fp++; else if (d) fn++; else tn++; }
  const precision = tp + fp ? tp / (tp + fp) : null, recall = tp + fn ? tp / (tp + fn) : null;
  return { tp, fp, fn, tn, precision, recall, false_alarm_rate: fp + tn ? fp / (fp + tn) : null, f1: precision && recall ? 2 * precision * recall / (precision + recall) : 0 };
}
const body = (req) => new Promise((ok) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', () => ok(b ? JSON.parse(b) : {})); });

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  const q = Object.fromEntries(url.searchParams);
  if (!p.startsWith('/v1/') && !p.startsWith('/admin')) {
    const file = normalize(join(WEB, p === '/' ? 'index.html' : p));
    if (!file.startsWith(WEB) || file.includes('node_modules') || !existsSync(file) || statSync(file).isDirectory()) return err(res, 404, 'not_found', 'no such file');
    const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png' };
    res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' });
    return res.end(readFileSync(file));
  }
  if (p === '/v1/login' && req.method === 'POST') {
    const { token, username, password } = await body(req);
    const account = username !== undefined ? ACCOUNTS[username] : null;
    let r, name;
    if (account && account[1] === password) [r, name] = [account[0], username];
    else if (username === undefined && TOKENS[token]) [r, name] = [TOKENS[token], TOKENS[token]];
    else return err(res, 401, 'unauthorized', 'unknown account name or wrong password');
    const sid = Math.random().toString(36).slice(2);
    sessions.set(sid, r);
    who.set(sid, name);
    return send(res, 200, { role: r, who: name }, { 'Set-Cookie': `railscope_session=${sid}; HttpOnly; SameSite=Strict; Path=/` });
  }
  const r = role(req);
  if (!r) return err(res, 401, 'unauthorized', 'log in first');
  if (p === '/v1/logout') return send(res, 204, undefined, { 'Set-Cookie': 'railscope_session=; Max-Age=0; Path=/' });
  if (p === '/v1/me') {
    const m = /railscope_session=([^;]+)/.exec(req.headers.cookie ?? '');
    return send(res, 200, { role: r, who: (m && who.get(m[1])) ?? r });
  }
  if (p === '/v1/events') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.write(': hello\n\n');
    clients.add(res);
    req.on('close', () => clients.delete(res));
    return;
  }
  if (p === '/v1/cameras') {
    const now = Date.now();
    return send(res, 200, { cameras: cams.map((c) => {
      const mine = items.filter((i) => i.camera === c.id);
      const last = mine.at(-1);
      const d = mine.filter((i) => i.verdict === 'defect').length;
      return { ...c, frames: mine.length, defects: d, defect_rate: mine.length ? d / mine.length : 0, recent_fps: mine.filter((i) => now - Date.parse(i.received_at) < 10000).length / 10,
        last_frame_at: last?.received_at ?? null, silent: !last || now - Date.parse(last.received_at) > 30000, last_inspection_id: last?.id ?? null };
    }) });
  }
  if (p === '/v1/inspections') {
    let list = items.filter(matcher(q));
    const total = list.length;
    const byScore = q.sort === 'score';
    list = list.reverse();
    if (byScore) list.sort((a, b) => (a.A_norm == null) - (b.A_norm == null) || (b.A_norm ?? 0) - (a.A_norm ?? 0) || b.id - a.id);
    const key = (i) => (byScore ? `${i.A_norm ?? 'null'}:${i.id}` : String(i.id));
    if (q.before_id) list = list.filter((i) => i.id < Number(q.before_id));
    if (q.cursor) list = list.slice(list.findIndex((i) => key(i) === q.cursor) + 1);
    const limit = Math.min(500, Number(q.limit ?? 50));
    const more = list.length > limit;
    return send(res, 200, { items: list.slice(0, limit).map(pub), next_before_id: more && !byScore ? list[limit - 1].id : null, next_cursor: more ? key(list[limit - 1]) : null, total });
  }
  let m = /^\/v1\/inspections\/(\d+)(\/(image|heatmap|reconstruction|review))?$/.exec(p);
  if (m) {
    const it = items.find((i) => i.id === Number(m[1]));
    if (!it) return err(res, 404, 'not_found', 'no such inspection');
    // The mock has no model: the reconstruction is the image itself.
    if (m[3] === 'image' || m[3] === 'heatmap' || m[3] === 'reconstruction') {
      if (!it.image_url) return err(res, 404, 'not_found', 'image not kept');
      res.writeHead(200, { 'Content-Type': 'image/png' });
      return res.end(readFileSync(it._file));
    }
    if (m[3] === 'review') {
      const b = await body(req);
      it.review = { state: b.state, note: b.note ?? '', reviewer: r, reviewed_at: new Date().toISOString(), _seq: ++reviewSeq };
      broadcast('review', it);
      return send(res, 200, pub(it));
    }
    return send(res, 200, pub(it));
  }
  // No Prometheus behind the mock: alerts are not connected (GET /v1/alerts).
  if (p === '/v1/alerts') return send(res, 200, { connected: false, message: 'alerts are not connected: no [alerts] prometheus_url is configured', checked_at: new Date().toISOString(), alerts: [] });
  if (p === '/v1/review-batches') {
    if (req.method !== 'POST') return send(res, 405, { error: { code: 'method_not_allowed', message: `${p} does not answer ${req.method}; allowed: POST` } }, { Allow: 'POST' });
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return err(res, 415, 'unsupported_media_type', 'send the body as Content-Type: application/json');
    let b;
    try { b = await body(req); } catch { return err(res, 400, 'bad_request', 'the body is not JSON'); }
    const known = ['ids', 'filter', 'expected_count', 'state', 'note', 'type', 'severity', 'rail_side', 'sleeper'];
    const unknown = Object.keys(b ?? {}).filter((k) => !known.includes(k));
    if (unknown.length) return err(res, 400, 'bad_request', `unknown field ${unknown[0]}`);
    if ((b.ids === undefined) === (b.filter === undefined)) return err(res, 400, 'bad_request', 'give either ids (a list of inspection ids) or filter (the conditions of GET /v1/inspections), not both');
    if (!REVIEW_STATES.includes(b.state)) return err(res, 400, 'bad_request', 'state: confirmed or false_alarm');
    if (b.expected_count !== undefined && !(Number.isInteger(b.expected_count) && b.expected_count >= 1)) return err(res, 400, 'bad_request', 'expected_count: at least 1');
    let selected;
    if (b.ids !== undefined) {
      if (!Array.isArray(b.ids) || !b.ids.length || !b.ids.every(Number.isInteger)) return err(res, 400, 'bad_request', 'ids: a non-empty list of inspection ids');
      if (b.ids.length > MAX_BULK) return err(res, 422, 'too_many', `the selection has ${b.ids.length} inspections; a bulk review takes at most ${MAX_BULK} (review.max_bulk): narrow the filter`);
      const ids = [...new Set(b.ids)];
      const missing = ids.filter((id) => !items.some((i) => i.id === id));
      if (missing.length) return err(res, 404, 'not_found', `no inspection ${missing.slice(0, 20).join(', ')}; nothing was reviewed`);
      selected = ids.map((id) => items.find((i) => i.id === id));
    } else {
      const f = b.filter;
      if (!f || typeof f !== 'object' || Array.isArray(f)) return err(res, 400, 'bad_request', 'filter: an object with the conditions of GET /v1/inspections');
      const bad = Object.keys(f).filter((k) => !FILTER_KEYS.includes(k));
      if (bad.length) return err(res, 400, 'bad_request', `filter: unknown condition ${bad[0]}`);
      selected = items.filter(matcher(f));
    }
    if (!selected.length) return err(res, 422, 'empty_selection', 'no inspection matches the selection; nothing was reviewed');
    if (selected.length > MAX_BULK) return err(res, 422, 'too_many', `the selection has ${selected.length} inspections; a bulk review takes at most ${MAX_BULK} (review.max_bulk): narrow the filter`);
    if (b.expected_count !== undefined && selected.length !== b.expected_count) {
      return err(res, 409, 'count_changed', `the selection has ${selected.length} inspections now, not the ${b.expected_count} expected; nothing was reviewed: count again and confirm that number`);
    }
    const at = new Date().toISOString();
    const confirm = b.state === 'confirmed';
    const review = { state: b.state, note: b.note ?? '', type: confirm ? b.type ?? null : null, severity: confirm ? b.severity ?? null : null,
      rail_side: confirm ? b.rail_side ?? null : null, sleeper: confirm ? b.sleeper ?? null : null };
    const batch = { id: batches.length + 1, at, reviewer: r, review, selection: b.ids !== undefined ? { ids: b.ids } : { filter: b.filter }, items: [], undone: null };
    for (const it of selected) {
      const seq = ++reviewSeq;
      batch.items.push({ id: it.id, camera: it.camera, before: it.review, seq, undo: null });
      it.review = { ...review, reviewer: r, reviewed_at: at, batch_id: batch.id, _seq: seq };
    }
    batches.push(batch);
    broadcastRaw('review_batch', batchEvent(batch));
    return send(res, 200, batchView(batch));
  }
  m = /^\/v1\/review-batches\/([^/]+)(\/undo)?$/.exec(p);
  if (m) {
    if (req.method !== (m[2] ? 'POST' : 'GET')) return send(res, 405, { error: { code: 'method_not_allowed', message: `${p} does not answer ${req.method}` } }, { Allow: m[2] ? 'POST' : 'GET' });
    if (!/^\d+$/.test(m[1])) return err(res, 400, 'bad_request', `review batch id ${JSON.stringify(m[1])} is not a number`);
    const batch = batches.find((x) => x.id === Number(m[1]));
    if (!batch) return err(res, 404, 'not_found', `no review batch ${m[1]}`);
    if (!m[2]) return send(res, 200, batchView(batch));
    if (batch.undone) return err(res, 409, 'already_undone', `review batch ${batch.id} was undone by ${batch.undone.by} at ${batch.undone.at}; nothing was changed`);
    const at = new Date().toISOString();
    for (const x of batch.items) {
      const it = items.find((i) => i.id === x.id);
      // Reviewed again since (one by one or by another batch): left as it is.
      if (it.review?._seq !== x.seq) { x.undo = 'skipped'; continue; }
      it.review = x.before ?? null;
      x.undo = 'restored';
    }
    batch.undone = { by: r, at };
    broadcastRaw('review_batch', batchEvent(batch));
    return send(res, 200, batchView(batch));
  }
  if (p === '/v1/stats/trend') {
    const b = Number(q.bucket_s ?? 60) * 1000;
    const series = cams.map((c) => {
      const map = new Map();
      for (const i of items) if (i.camera === c.id && (!q.camera || q.camera === c.id) && (!q.since || i.received_at >= q.since)) {
        const t = Math.floor(Date.parse(i.received_at) / b) * b;
        const e = map.get(t) ?? { t: new Date(t).toISOString(), frames: 0, defects: 0 };
        e.frames++; if (i.verdict === 'defect') e.defects++;
        map.set(t, e);
      }
      return { camera: c.id, points: [...map.values()] };
    }).filter((s) => s.points.length);
    return send(res, 200, { bucket_s: b / 1000, series });
  }
  if (p === '/v1/stats/positions') {
    const bm = Number(q.bucket_m ?? 100);
    const map = new Map();
    for (const i of items) if (!q.camera || q.camera === i.camera) {
      const pos = Math.floor(i.position_m / bm) * bm;
      const k = `${i.track_id}@${pos}`;
      const e = map.get(k) ?? { track_id: i.track_id, position_m: pos, frames: 0, defects: 0, confirmed: 0 };
      e.frames++; if (i.verdict === 'defect') e.defects++; if (i.review?.state === 'confirmed') e.confirmed++;
      map.set(k, e);
    }
    return send(res, 200, { bucket_m: bm, buckets: [...map.values()] });
  }
  if (p === '/v1/stats/scores') {
    const nb = Number(q.bins ?? 40);
    const list = items.filter((i) => (!q.camera || q.camera === i.camera) && i.A_norm != null);
    const hi = Math.max(1, ...list.map((i) => i.A_norm));
    const bins = Array.from({ length: nb }, (_, k) => ({ lo: (k * hi) / nb, hi: ((k + 1) * hi) / nb, normal: 0, defect: 0 }));
    for (const i of list) bins[Math.min(nb - 1, Math.floor((i.A_norm / hi) * nb))][i.verdict]++;
    return send(res, 200, { bins, threshold: 0.127 });
  }
  m = /^\/v1\/cameras\/([^/]+)\/calibration(\/proposal)?$/.exec(p);
  if (m) {
    const c = cams.find((x) => x.id === m[1]);
    if (!c) return err(res, 404, 'unknown_camera', 'no such camera');
    if (m[2]) {
      const rev = items.filter((i) => i.camera === c.id && i.review && i.A_norm != null);
      const conf = rev.filter((i) => i.review.state === 'confirmed').length;
      const fa = rev.length - conf;
      const ok = conf > 0 && fa > 0;
      const t = ok ? Math.max(...rev.filter((i) => i.review.state === 'false_alarm').map((i) => i.A_norm)) : null;
      const missed = ok ? rev.filter((i) => i.review.state === 'confirmed' && i.A_norm <= t).length : null;
      return send(res, 200, { camera: c.id, current: c.calibration, model: { name: 'nested-edgan', version: 'mock' }, proposed: ok ? { threshold: t } : null, method: q.method ?? 'best_f1', reviewed: { confirmed: conf, false_alarm: fa },
        min_reviews_per_class: 1, missed_confirmed: missed, reason: ok ? null : 'too_few_reviews', reviews: rev.map((i) => ({ id: i.id, A_norm: i.A_norm, state: i.review.state })),
        effect: { current: ok ? effect(rev, c.calibration.threshold) : null, proposed: ok ? effect(rev, t) : null }, message: ok ? (missed ? `This threshold would miss ${missed} of ${conf} confirmed defects.` : 'ok') : 'Review at least one confirmed defect and one false alarm first.' });
    }
    if (req.method !== 'PUT' && req.method !== 'DELETE') return err(res, 405, 'method_not_allowed', 'PUT, DELETE');
    if (r !== 'admin') return err(res, 403, 'forbidden', 'admin only');
    const old = c.calibration;
    const at = new Date().toISOString();
    if (req.method === 'DELETE') {
      if (old.origin !== 'applied') return err(res, 404, 'not_found', 'no threshold applied');
      c.calibration = { ...old, threshold: 0.127, source: 'nested-edgan.json', origin: 'default', applied: null };
    } else {
      const b = await body(req);
      c.calibration = { ...old, threshold: b.threshold, source: `applied by admin at ${at}`, origin: 'applied', applied: { by: 'admin', at, audit_id: audit.length + 1 } };
    }
    audit.unshift({ id: audit.length + 1, at, camera: c.id, actor: 'admin', action: req.method === 'DELETE' ? 'clear' : 'apply', old_threshold: old.threshold, new_threshold: c.calibration.threshold, old_source: old.source, new_source: c.calibration.source, min: old.min, max: old.max, model: { name: 'nested-edgan', version: 'mock', sha256: 'mock' }, reason: 'mock' });
    return send(res, 200, c.calibration);
  }
  if (p === '/v1/calibration/audit') return send(res, 200, { items: audit.filter((e) => !q.camera || e.camera === q.camera).slice(0, Number(q.limit ?? 50)), next_before_id: null });
  if (p === '/admin/reload') return r === 'admin' ? send(res, 200, { model: { name: 'nested-edgan', version: 'mock' }, provider: 'cpu', models: [{ name: 'nested-edgan', version: 'mock', provider: 'cpu', cameras: cams.map((c) => c.id) }], reloaded_at: new Date().toISOString(), not_applied: [] }) : err(res, 403, 'forbidden', 'admin only');
  return err(res, 404, 'not_found', 'no such route');
});

/**
 * Listens on 127.0.0.1:`port` (0: any free one); with `live`, cam-01/02 send 2 frames/s each.
 * Resolves to `{ url, close() }`.
 */
export function startMock(port = 8099, { live = true } = {}) {
  const timer = live ? setInterval(() => { inspect('cam-01', n++); inspect('cam-02', n++); }, 500) : null;
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}`;
      ok({
        url,
        close: () => new Promise((done) => {
          clearInterval(timer);
          for (const c of clients) c.end();
          server.close(() => done());
          server.closeAllConnections?.();
        }),
      });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { url } = await startMock(Number(process.argv[2] ?? 8099));
  console.log(`mock railscope on ${url}/`);
}
