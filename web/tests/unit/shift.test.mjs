import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LAST_VISIT_KEY, DEFAULT_SHIFT_MS, DEFECT_HOLD_MS, readLastVisit, writeLastVisit, defaultSince, rateDeparture,
  describeRate, describeTracks, describeSeverities, connectivityAfter, isUnreachable, tileState, recentDefect,
} from '../../js/shift.js';
import { applyInspection, emptyCameras, seedLatest, mergeCameras } from '../../js/state.js';

function memoryStorage() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)) };
}

test('the last visit is remembered per browser and is the summary’s default start', () => {
  const st = memoryStorage();
  const now = Date.parse('2026-11-23T14:00:00Z');
  assert.equal(readLastVisit(st), null);
  assert.equal(defaultSince(readLastVisit(st), now), now - DEFAULT_SHIFT_MS, 'no visit yet: a shift ago');
  writeLastVisit(st, now - 3600_000);
  assert.equal(st.getItem(LAST_VISIT_KEY), String(now - 3600_000));
  assert.equal(defaultSince(readLastVisit(st), now), now - 3600_000);
  // Garbage, a visit in the future or a storage that throws (private mode): a shift ago.
  st.setItem(LAST_VISIT_KEY, 'soon');
  assert.equal(readLastVisit(st), null);
  assert.equal(defaultSince(now + 5000, now), now - DEFAULT_SHIFT_MS);
  const throwing = { getItem() { throw new Error('denied'); }, setItem() { throw new Error('denied'); } };
  assert.equal(readLastVisit(throwing), null);
  assert.doesNotThrow(() => writeLastVisit(throwing, now));
});

test('rateDeparture: emphasis only when the rate since departs from the camera’s normal', () => {
  const cam = (frames, defects, baseFrames, baseDefects) => ({
    frames, defects, defect_rate: frames ? defects / frames : 0,
    baseline: { frames: baseFrames, defects: baseDefects, defect_rate: baseFrames ? baseDefects / baseFrames : 0 },
  });
  assert.equal(rateDeparture(cam(1000, 10, 10000, 100)), null, 'in line with 1 %');
  assert.equal(rateDeparture(cam(1000, 80, 10000, 100)), 'high', '8 % against 1 %');
  assert.equal(rateDeparture(cam(1000, 0, 10000, 1000)), 'low', '0 % against 10 %');
  assert.equal(rateDeparture(cam(10, 5, 10000, 100)), null, 'too few frames since to tell');
  assert.equal(rateDeparture(cam(1000, 80, 20, 0)), null, 'no normal yet');
  assert.equal(rateDeparture(cam(100, 1, 10000, 0)), null, 'one defect in 100 against none: under 2 points');
  assert.equal(rateDeparture(cam(100, 5, 10000, 0)), 'high');
  assert.equal(rateDeparture(undefined), null);
  assert.equal(describeRate(cam(1000, 80, 10000, 100)), '8.0 % (normal 1.0 %)');
  assert.equal(describeRate(cam(0, 0, 0, 0)), '0.0 %');
});

test('track sections, severities in words', () => {
  assert.equal(describeTracks([]), '–');
  assert.equal(describeTracks([
    { track_id: 'L2', frames: 5, min_position_m: 1000, max_position_m: 1400 },
    { track_id: 'L9', frames: 1, min_position_m: null, max_position_m: null },
    { track_id: 'L1', frames: 1, min_position_m: 5, max_position_m: 5 },
  ]), 'L2 km 1.000–1.400 · L9 · L1 km 0.005');
  assert.equal(describeSeverities({ plan: 3, unspecified: 2, immediate: 1, monitor: 0 }), '1 immediate, 3 plan, 2 unspecified');
  assert.equal(describeSeverities({}), '');
  assert.equal(describeSeverities(undefined), '');
});

test('an unreachable server is one outage, not silent cameras', () => {
  let c = { downSince: null };
  assert.equal(connectivityAfter(c, true, 1000), c, 'unchanged: same object');
  c = connectivityAfter(c, false, 1000);
  assert.deepEqual(c, { downSince: 1000 });
  assert.equal(connectivityAfter(c, false, 5000), c, 'the outage starts at the first failure');
  assert.deepEqual(connectivityAfter(c, true, 6000), { downSince: null });
  assert.equal(isUnreachable({ status: 0 }), true);
  assert.equal(isUnreachable({ status: 503 }), true);
  assert.equal(isUnreachable({ status: 401 }), false);
  assert.equal(isUnreachable({ status: 500 }), false);
  assert.equal(tileState(true, 1000), 'unknown', 'a silent-looking camera while the server is down: unknown');
  assert.equal(tileState(false, 1000), 'unknown');
  assert.equal(tileState(true, null), 'silent');
  assert.equal(tileState(false, null), 'live');
});

test('a tile’s defect emphasis holds after a defect instead of following the latest frame', () => {
  const insp = (id, verdict) => ({ id, camera: 'cam-01', verdict, received_at: '2026-11-23T14:00:00Z', image_url: null });
  let s = mergeCameras(emptyCameras(), [{ id: 'cam-01', name: 'Left rail', frames: 0, defects: 0, last_inspection_id: null }]);
  s = applyInspection(s, insp(1, 'defect'), 10_000);
  s = applyInspection(s, insp(2, 'normal'), 11_000);
  const cam = s.byId['cam-01'];
  assert.equal(cam.live.latest.verdict, 'normal', 'the latest frame is normal…');
  assert.equal(cam.live.lastDefectAt, 10_000);
  assert.equal(recentDefect(cam.live.lastDefectAt, 11_000), true, '…and the emphasis stays');
  assert.equal(recentDefect(cam.live.lastDefectAt, 10_000 + DEFECT_HOLD_MS + 1), false, 'until the hold has passed');
  assert.equal(recentDefect(null, 11_000), false);
  // Seeded from the server's newest page: the newest defect's arrival.
  let t = mergeCameras(emptyCameras(), [{ id: 'cam-01', name: 'x', last_inspection_id: 3 }]);
  t = seedLatest(t, 'cam-01', [insp(3, 'normal'), { ...insp(2, 'defect'), received_at: '2026-11-23T13:59:00Z' }]);
  assert.equal(t.byId['cam-01'].live.lastDefectAt, Date.parse('2026-11-23T13:59:00Z'));
});

test('answeredByServer: a gateway 502–504 is the server unreachable, railscope\'s own JSON error is not', async () => {
  const { answeredByServer } = await import('../../js/shift.js');
  assert.equal(answeredByServer(200, 'application/json'), true);
  assert.equal(answeredByServer(500, 'application/json'), true);
  assert.equal(answeredByServer(502, 'text/html'), false);
  assert.equal(answeredByServer(504, null), false);
  assert.equal(answeredByServer(502, 'application/json'), true, 'GET /v1/alerts with Prometheus down');
});

test('describeAlerts: not connected, unavailable, clear, and firing alerts grouped per camera', async () => {
  const { describeAlerts, cameraAlerts } = await import('../../js/shift.js');
  assert.equal(describeAlerts(null, null).status, 'loading');
  const off = describeAlerts({ connected: false, alerts: [] }, null);
  assert.equal(off.status, 'not_connected');
  assert.match(off.text, /^Alerts not connected/);
  const down = describeAlerts(null, { status: 502, code: 'alerts_unavailable', message: 'alerts unavailable: Prometheus cannot be reached (Connection Failed)' });
  assert.equal(down.status, 'unavailable');
  assert.equal(down.text, 'Alerts unavailable: Prometheus cannot be reached (Connection Failed)');
  assert.equal(describeAlerts({ connected: true, alerts: [] }, null).status, 'clear');
  const answer = { connected: true, alerts: [
    { name: 'RailscopeQueueSaturated', state: 'firing', camera: null, since: '2026-12-03T08:30:00.000Z', summary: 'queue full' },
    { name: 'RailscopeCameraSilent', state: 'firing', camera: 'cam-03', since: '2026-12-03T09:00:00.000Z', summary: 'Camera cam-03 sent no frame' },
    { name: 'RailscopeCameraDefectRateHigh', state: 'pending', camera: 'cam-01', since: null, summary: null },
    { name: 'RailscopeCameraSilent', state: 'firing', camera: 'cam-09', since: null, summary: null },
  ] };
  const d = describeAlerts(answer, null, ['cam-01', 'cam-02', 'cam-03']);
  assert.equal(d.status, 'alerts');
  assert.equal(d.text, '3 alerts firing, 1 pending');
  assert.deepEqual(d.groups.map((g) => g.camera), ['cam-01', 'cam-03', 'cam-09', null], 'configured order, others, then the service');
  assert.deepEqual(cameraAlerts(answer, 'cam-03'), { firing: 1, pending: 0, names: ['RailscopeCameraSilent'] });
  assert.deepEqual(cameraAlerts(answer, 'cam-02'), { firing: 0, pending: 0, names: [] });
  assert.deepEqual(cameraAlerts({ connected: false, alerts: [] }, 'cam-03'), { firing: 0, pending: 0, names: [] });
});
