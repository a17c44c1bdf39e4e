import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  emptyCameras, mergeCameras, applyInspection, seedLatest, cameraFps, cameraDefectRate, isSilent,
  emptyQueue, filtersToQuery, matchesFilters, queueLoaded, queueAppended, queueUpsert, queueMove, queueSelected,
  queueWithFilters, queueSelect, scoreBar, trimArrivals, DEFAULT_FILTERS,
} from '../../js/state.js';

const cam = (id, extra = {}) => ({ id, name: `Camera ${id}`, frames: 10, defects: 1, defect_rate: 0.1, recent_fps: 2, last_frame_at: '2026-11-23T14:00:00Z', silent: false, last_inspection_id: 100, calibration: { min: 0, max: 1, threshold: 0.2 }, ...extra });
const insp = (id, extra = {}) => ({ id, camera: 'cam-01', verdict: 'normal', A_norm: 0.1, threshold: 0.2, capture_time: '2026-11-23T14:00:00Z', received_at: '2026-11-23T14:00:00Z', image_url: null, heatmap_url: null, review: null, ...extra });

test('mergeCameras keeps order and live fields, prefers the newer count', () => {
  let s = mergeCameras(emptyCameras(), [cam('cam-01'), cam('cam-02', { last_inspection_id: null, frames: 0, defects: 0 })]);
  assert.deepEqual(s.order, ['cam-01', 'cam-02']);
  s = applyInspection(s, insp(101, { verdict: 'defect', image_url: '/v1/inspections/101/image' }), 1000);
  assert.equal(s.byId['cam-01'].frames, 11);
  assert.equal(s.byId['cam-01'].defects, 2);
  // A stale refresh (server knew only up to 100) does not roll the counts back.
  s = mergeCameras(s, [cam('cam-01'), cam('cam-02')]);
  assert.equal(s.byId['cam-01'].frames, 11);
  assert.equal(s.byId['cam-01'].live.latestImage.id, 101);
  // A fresh refresh wins.
  s = mergeCameras(s, [cam('cam-01', { frames: 20, defects: 3, last_inspection_id: 120 }), cam('cam-02')]);
  assert.equal(s.byId['cam-01'].frames, 20);
  assert.equal(s.byId['cam-01'].live.latest.id, 101);
});

test('applyInspection counts each inspection once and tracks the latest image', () => {
  let s = mergeCameras(emptyCameras(), [cam('cam-01')]);
  s = applyInspection(s, insp(101, { image_url: '/v1/inspections/101/image' }), 1000);
  s = applyInspection(s, insp(102), 1500);
  s = applyInspection(s, insp(100), 1600); // already counted by the server
  const c = s.byId['cam-01'];
  assert.equal(c.frames, 12);
  assert.equal(c.last_inspection_id, 102);
  assert.equal(c.live.latest.id, 102);
  assert.equal(c.live.latestImage.id, 101, 'the latest frame without image does not replace the image');
  assert.equal(c.live.arrivals.length, 3);
  assert.equal(cameraDefectRate(c), 1 / 12);
});

test('applyInspection adds cameras first seen through events', () => {
  const s = applyInspection(emptyCameras(), insp(5, { camera: 'cam-09', verdict: 'defect' }), 0);
  assert.deepEqual(s.order, ['cam-09']);
  assert.equal(s.byId['cam-09'].frames, 1);
  assert.equal(s.byId['cam-09'].defect_rate, 1);
});

test('seedLatest picks the newest frame and the newest one with an image', () => {
  let s = mergeCameras(emptyCameras(), [cam('cam-01')]);
  s = seedLatest(s, 'cam-01', [insp(100), insp(99), insp(97, { image_url: '/i/97' }), insp(90, { image_url: '/i/90' })]);
  assert.equal(s.byId['cam-01'].live.latest.id, 100);
  assert.equal(s.byId['cam-01'].live.latestImage.id, 97);
  assert.equal(seedLatest(s, 'nope', [insp(1)]), s);
});

test('fps from live arrivals, server value before the stream warmed up', () => {
  let s = mergeCameras(emptyCameras(), [cam('cam-01', { recent_fps: 4.5 })]);
  const opened = 0;
  for (let t = 1000; t <= 10_000; t += 500) s = applyInspection(s, insp(100 + t), t);
  const c = s.byId['cam-01'];
  assert.equal(cameraFps(c, 2000, opened), 4.5);
  assert.equal(cameraFps(c, 10_000, opened), 19 / 10);
  assert.equal(cameraFps(c, 10_000, null), 4.5);
  // Nothing for a whole window: 0 fps.
  assert.equal(cameraFps(c, 30_000, opened), 0);
  assert.deepEqual(trimArrivals([1, 2, 3, 50], 55, 10), [50]);
});

test('silent cameras', () => {
  const base = mergeCameras(emptyCameras(), [cam('cam-01'), cam('cam-02', { silent: true }), cam('cam-03', { last_frame_at: null })]);
  assert.equal(isSilent(base.byId['cam-01'], 0), false);
  assert.equal(isSilent(base.byId['cam-02'], 0), true);
  assert.equal(isSilent(base.byId['cam-03'], 0), true, 'never sent counts as silent');
  const s = applyInspection(base, insp(200, { camera: 'cam-02' }), 1000);
  assert.equal(isSilent(s.byId['cam-02'], 20_000), false);
  assert.equal(isSilent(s.byId['cam-02'], 31_001), true);
});

test('filters: query string and matching', () => {
  assert.equal(filtersToQuery(DEFAULT_FILTERS), 'verdict=defect&review=unreviewed');
  assert.equal(filtersToQuery({ camera: 'cam-01', verdict: '', review: '', since: '2026-11-23T00:00:00.000Z' }, { limit: 50, before_id: null }), 'camera=cam-01&since=2026-11-23T00%3A00%3A00.000Z&limit=50');
  const f = { ...DEFAULT_FILTERS };
  assert.equal(matchesFilters(insp(1, { verdict: 'defect' }), f), true);
  assert.equal(matchesFilters(insp(1, { verdict: 'normal' }), f), false);
  assert.equal(matchesFilters(insp(1, { verdict: 'defect', review: { state: 'confirmed' } }), f), false);
  assert.equal(matchesFilters(insp(1, { review: { state: 'confirmed' } }), { review: 'reviewed' }), true);
  assert.equal(matchesFilters(insp(1, { review: { state: 'false_alarm' } }), { review: 'confirmed' }), false);
  assert.equal(matchesFilters(insp(1), { camera: 'cam-02' }), false);
  assert.equal(matchesFilters(insp(1), { since: '2026-11-23T14:00:01Z' }), false);
  assert.equal(matchesFilters(insp(1), { until: '2026-11-23T13:59:59Z' }), false);
  assert.equal(matchesFilters(insp(1), { since: '2026-11-23T13:00:00Z', until: '2026-11-23T15:00:00Z' }), true);
});

test('queue: load, live insert, review removes and moves the selection', () => {
  let q = queueLoaded(emptyQueue(), { items: [insp(3, { verdict: 'defect' }), insp(5, { verdict: 'defect' }), insp(4, { verdict: 'defect' })], next_before_id: null });
  assert.deepEqual(q.items.map((i) => i.id), [5, 4, 3]);
  assert.equal(q.selectedId, 5);
  q = queueUpsert(q, insp(7, { verdict: 'defect' }));
  q = queueUpsert(q, insp(8, { verdict: 'normal' })); // does not match the defect filter
  assert.deepEqual(q.items.map((i) => i.id), [7, 5, 4, 3]);
  assert.equal(q.selectedId, 5, 'a live arrival does not steal the selection');
  q = queueMove(q, 1);
  assert.equal(q.selectedId, 4);
  // Confirming the selected one: it leaves the unreviewed queue, the next (older) is selected.
  q = queueUpsert(q, insp(4, { verdict: 'defect', review: { state: 'confirmed' } }));
  assert.deepEqual(q.items.map((i) => i.id), [7, 5, 3]);
  assert.equal(q.selectedId, 3);
  q = queueUpsert(q, insp(3, { verdict: 'defect', review: { state: 'false_alarm' } }));
  assert.equal(q.selectedId, 5, 'at the end the previous item is selected');
  assert.equal(queueSelected(q).id, 5);
  q = queueMove(queueMove(q, -5), -1);
  assert.equal(q.selectedId, 7);
  q = queueSelect(q, 999);
  assert.equal(q.selectedId, 7);
});

test('queue: paging and out-of-range live items', () => {
  let q = queueLoaded(emptyQueue(), { items: [insp(10, { verdict: 'defect' }), insp(9, { verdict: 'defect' })], next_before_id: 9 });
  q = queueUpsert(q, insp(2, { verdict: 'defect' }));
  assert.deepEqual(q.items.map((i) => i.id), [10, 9], 'belongs to a page not loaded yet');
  q = queueAppended(q, { items: [insp(9, { verdict: 'defect' }), insp(2, { verdict: 'defect' })], next_before_id: null });
  assert.deepEqual(q.items.map((i) => i.id), [10, 9, 2]);
  assert.equal(q.nextCursor, null);
  const q2 = queueWithFilters(q, { review: 'reviewed' });
  assert.equal(q2.items.length, 0);
  assert.equal(q2.loading, true);
  assert.equal(q2.filters.review, 'reviewed');
  assert.equal(q2.filters.verdict, 'defect');
  // Not loaded yet: live events wait for the load.
  assert.equal(queueUpsert(q2, insp(11, { verdict: 'defect', review: { state: 'confirmed' } })), q2);
});

test('score bar geometry', () => {
  assert.deepEqual(scoreBar(0.5, 0.25), { scorePct: 50, thresholdPct: 25, over: true, max: 1, scored: true });
  const b = scoreBar(2, 0.2);
  assert.ok(Math.abs(b.scorePct - 100 / 1.1) < 1e-9);
  assert.equal(b.over, true);
  assert.equal(scoreBar(0.2, 0.2).over, false, 'verdict is strict: equal is not over');
  assert.equal(scoreBar(undefined, 0.3).scorePct, 0);
  // A frame without a scored crop (A_norm null): an empty bar, never "over", the threshold still drawn.
  const u = scoreBar(null, 0.127);
  assert.equal(u.scored, false);
  assert.equal(u.over, false);
  assert.equal(u.scorePct, 0);
  assert.ok(Math.abs(u.thresholdPct - 12.7) < 1e-9);
  assert.equal(scoreBar(null, -0.5).over, false, 'not over a negative threshold either');
  assert.equal(scoreBar(0, 0.1).scored, true, '0 is a score');
});

test('queue: frames without a score list, sort and select like the others', () => {
  const page = { items: [
    insp(5, { A_norm: 0.4 }),
    insp(9, { A_norm: null, R: null, L: null, A: null, crops: [], note: 'no track found: no rail' }),
    insp(7, { A_norm: undefined }),
  ] };
  const q = queueLoaded(emptyQueue(), page);
  assert.deepEqual(q.items.map((i) => i.id), [9, 7, 5], 'newest first whatever the score');
  assert.equal(q.selectedId, 9);
  assert.equal(queueMove(q, 1).selectedId, 7);
  const live = queueUpsert(q, insp(11, { verdict: 'defect', A_norm: null, crops: [], note: 'no fastener found in the frame' }));
  assert.deepEqual(live.items.map((i) => i.id), [11, 9, 7, 5]);
});
