import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linearScale, niceStep, niceTicks, timeTicks, fmtTick, trendSeries, lineChart, positionChart, groupByTrack, scoreHistogram, colorFor } from '../../js/charts.js';
import { applyRequest, computeEffect, compareEffects, exactThreshold, missedWords, parseThreshold, reviewedFromProposal } from '../../js/calibration.js';
import { createApi, ApiError } from '../../js/api.js';

test('scales and ticks', () => {
  const s = linearScale(0, 10, 100, 200);
  assert.equal(s(0), 100);
  assert.equal(s(5), 150);
  assert.equal(linearScale(3, 3, 0, 10)(3), 5);
  assert.equal(niceStep(10, 5), 2);
  assert.equal(niceStep(1, 4), 0.25);
  assert.equal(niceStep(0.9, 5), 0.2);
  assert.deepEqual(niceTicks(0, 1, 4).ticks, [0, 0.25, 0.5, 0.75, 1]);
  const t = niceTicks(0.03, 0.87, 4);
  assert.equal(t.min, 0);
  assert.equal(t.max, 1);
  assert.deepEqual(niceTicks(5, 5).ticks.length > 1, true, 'degenerate span widened');
  const tt = timeTicks(Date.UTC(2026, 0, 1, 10, 0, 30), Date.UTC(2026, 0, 1, 10, 30, 0), 6);
  assert.equal(tt.step, 300_000);
  assert.equal(tt.ticks[0], Date.UTC(2026, 0, 1, 10, 5, 0));
  assert.equal(tt.ticks.length, 6);
  assert.equal(fmtTick(0.125), '0.125');
  assert.equal(fmtTick(15000), '15k');
  assert.equal(colorFor(0), colorFor(8));
});

test('trend series: defect rate per bucket, gaps where no frames', () => {
  const series = trendSeries({ bucket_s: 60, series: [{ camera: 'cam-01', points: [
    { t: '2026-11-23T14:00:00Z', frames: 10, defects: 2 },
    { t: '2026-11-23T14:01:00Z', frames: 0, defects: 0 },
    { t: '2026-11-23T14:02:00Z', frames: 4, defects: 1 },
  ] }] });
  assert.equal(series[0].name, 'cam-01');
  assert.deepEqual(series[0].points.map((p) => p.y), [0.2, null, 0.25]);
  const svg = lineChart(series, { id: 't', title: 'Defect rate', bucketMs: 60000 });
  assert.match(svg, /^<svg/);
  assert.match(svg, /role="img"/);
  assert.equal((svg.match(/<circle/g) ?? []).length, 2);
  const d = svg.match(/class="line" d="([^"]*)"/)[1];
  assert.equal((d.match(/M/g) ?? []).length, 2, 'the line breaks at the empty bucket');
  assert.equal((d.match(/L/g) ?? []).length, 0);
  assert.match(lineChart([], { id: 'e', title: 'x' }), /No data yet/);
});

test('position chart and grouping by track', () => {
  const buckets = [
    { track_id: 'L2', position_m: 0, frames: 5, defects: 0, confirmed: 0 },
    { track_id: 'L1', position_m: 1200, frames: 10, defects: 3, confirmed: 1 },
    { track_id: 'L1', position_m: 1100, frames: 10, defects: 1, confirmed: 0 },
  ];
  const g = groupByTrack(buckets);
  assert.deepEqual(g.map((x) => x.track), ['L1', 'L2']);
  assert.deepEqual(g[0].buckets.map((b) => b.position_m), [1100, 1200]);
  const svg = positionChart(g[0].buckets, 100, { id: 'p', title: 'Defects along L1' });
  assert.equal((svg.match(/class="bar-defect"/g) ?? []).length, 2);
  assert.equal((svg.match(/class="bar-confirmed"/g) ?? []).length, 1);
  assert.match(svg, /3 defects \(1 confirmed\) in 10 frames, 30\.0 %/);
  assert.match(positionChart([], 100, { id: 'q', title: 't' }), /No frames with a track position/);
});

test('score histogram with the threshold line; markup is escaped', () => {
  const stats = { threshold: 0.127, bins: [{ lo: 0, hi: 0.5, normal: 8, defect: 1 }, { lo: 0.5, hi: 1, normal: 0, defect: 3 }] };
  const svg = scoreHistogram(stats, { id: 'h', title: 'Scores <all>' });
  assert.match(svg, /threshold 0\.127/);
  assert.match(svg, /Scores &lt;all&gt;/);
  assert.equal((svg.match(/class="bar-normal"/g) ?? []).length, 1);
  assert.equal((svg.match(/class="bar-defect"/g) ?? []).length, 2);
  assert.match(scoreHistogram(stats, { id: 'h2', title: 't', scale: 'sqrt' }), /√ scale/);
  assert.match(scoreHistogram({ bins: [{ lo: 0, hi: 1, normal: 0, defect: 0 }] }, { id: 'h3', title: 't' }), /No scored frames/);
});

test('threshold effect over reviewed frames', () => {
  const r = (a, state) => ({ A_norm: a, review: { state } });
  const items = [r(0.9, 'confirmed'), r(0.5, 'confirmed'), r(0.3, 'false_alarm'), r(0.15, 'false_alarm'), r(0.1, 'confirmed'), { A_norm: 0.99, review: null }];
  const e = computeEffect(items, 0.2);
  assert.deepEqual({ tp: e.tp, fp: e.fp, fn: e.fn, tn: e.tn }, { tp: 2, fp: 1, fn: 1, tn: 1 });
  assert.equal(e.precision, 2 / 3);
  assert.equal(e.recall, 2 / 3);
  assert.equal(e.false_alarm_rate, 0.5);
  assert.ok(Math.abs(e.f1 - 2 / 3) < 1e-12);
  assert.equal(computeEffect(items, 0.5).tp, 1, 'strict >: A_norm equal to the threshold is normal');
  const none = computeEffect([], 0.2);
  assert.equal(none.precision, null);
  assert.equal(none.f1, null);
  const rows = compareEffects(computeEffect(items, 0.2), computeEffect(items, 0.4));
  const byKey = Object.fromEntries(rows.map((x) => [x.key, x]));
  assert.equal(byKey.false_alarm_rate.verdict, 'better');
  assert.equal(byKey.recall.verdict, 'same');
  assert.equal(byKey.precision.verdict, 'better');
  assert.equal(compareEffects(e, null)[0].verdict, null);
});

test('threshold effect leaves out reviewed frames without a score, as the server does', () => {
  const r = (a, state) => ({ A_norm: a, review: { state } });
  const scored = [r(0.9, 'confirmed'), r(0.3, 'false_alarm'), r(0.1, 'false_alarm')];
  // A confirmed "no track found" frame (A_norm null) and old items without the field.
  const unscored = [{ A_norm: null, crops: [], note: 'no track found: no rail', review: { state: 'confirmed' } }, { review: { state: 'false_alarm' } }];
  for (const t of [0.2, 0, -0.5]) {
    assert.deepEqual(computeEffect([...scored, ...unscored], t), computeEffect(scored, t), `threshold ${t}`);
  }
});

test('thresholds typed by the admin', () => {
  assert.equal(parseThreshold('0.25'), 0.25);
  assert.equal(parseThreshold(' 0,3 '), 0.3);
  assert.equal(parseThreshold('.5'), 0.5);
  assert.equal(parseThreshold('-1'), null);
  assert.equal(parseThreshold('abc'), null);
  assert.equal(parseThreshold(''), null);
});

test('a proposal is shown and applied exactly, never rounded (issue 12)', () => {
  // The proposal sits just below a confirmed defect; rounded to 0.144 it would miss it.
  const defect = 0.14398568751;
  const proposal = {
    method: 'best_f1',
    model: { name: 'nested-edgan', version: '1.0.0' },
    reviewed: { confirmed: 2, false_alarm: 1 },
    proposed: { threshold: 0.143985687 },
    reviews: [{ id: 7, A_norm: defect, state: 'confirmed' }, { id: 8, A_norm: 0.9, state: 'confirmed' }, { id: 9, A_norm: 0.3, state: 'false_alarm' }],
  };
  const text = exactThreshold(proposal.proposed.threshold);
  assert.equal(text, '0.143985687');
  assert.equal(Number(text), proposal.proposed.threshold);
  for (const t of [0.1 + 0.2, 1 / 3, 0.4707431568959092, 1e-7, 2.5]) assert.equal(Number(exactThreshold(t)), t, `${t} round-trips`);
  assert.equal(exactThreshold(null), '');
  const body = applyRequest(text, proposal);
  assert.equal(body.threshold, proposal.proposed.threshold, 'Apply sends the proposal itself');
  assert.match(body.reason, /^best-F1 proposal from 2 confirmed defects and 1 false alarms reviewed under nested-edgan 1\.0\.0$/);
  assert.deepEqual(applyRequest('0.2', proposal), { threshold: 0.2, reason: 'threshold typed on the dashboard' });
  assert.equal(applyRequest('x', proposal), null);
  // The what-if counts the proposal's own frames: every confirmed defect caught at the exact
  // value, one missed at the rounded one — and that is said in words.
  const reviewed = reviewedFromProposal(proposal);
  assert.deepEqual(reviewed[0], { id: 7, A_norm: defect, review: { state: 'confirmed' } });
  assert.equal(computeEffect(reviewed, body.threshold).fn, 0);
  assert.equal(computeEffect(reviewed, 0.144).fn, 1);
  assert.equal(missedWords(0, 2), '');
  assert.equal(missedWords(1, 2), 'Misses 1 of 2 confirmed defects: their A′ is at or below this threshold, so they would be judged normal.');
  assert.deepEqual(reviewedFromProposal(null), []);
});

test('api client: JSON, error codes, 401 hook', async () => {
  const calls = [];
  const responses = {
    '/v1/me': new Response(JSON.stringify({ error: { code: 'unauthorized', message: 'log in' } }), { status: 401 }),
    '/v1/inspections?verdict=defect&limit=5': new Response(JSON.stringify({ items: [], next_before_id: null }), { status: 200 }),
    '/v1/logout': new Response(null, { status: 204 }),
    '/v1/inspections/3/review': new Response('{"id":3}', { status: 200 }),
  };
  let unauthorized = 0;
  const api = createApi(async (path, init) => { calls.push([path, init]); return responses[path]; }, { onUnauthorized: () => unauthorized++ });
  await assert.rejects(api.me(), (e) => e instanceof ApiError && e.status === 401 && e.code === 'unauthorized' && e.message === 'log in');
  assert.equal(unauthorized, 1);
  assert.deepEqual(await api.inspections({ verdict: 'defect', limit: 5, camera: '' }), { items: [], next_before_id: null });
  assert.equal(await api.logout(), null);
  await api.review(3, 'confirmed', 'bolt gone');
  const [, init] = calls.at(-1);
  assert.equal(init.method, 'POST');
  assert.deepEqual(JSON.parse(init.body), { state: 'confirmed', note: 'bolt gone' });
  // A threshold goes out as the number it is, with its reason; DELETE clears; the audit reads.
  const ok = () => new Response('{}', { status: 200 });
  const sent = [];
  const cal = createApi(async (path, init) => { sent.push([path, init]); return ok(); });
  await cal.applyCalibration('cam-01', 0.143985687, 'best-F1 proposal');
  assert.equal(sent[0][0], '/v1/cameras/cam-01/calibration');
  assert.equal(sent[0][1].method, 'PUT');
  assert.equal(sent[0][1].body, '{"threshold":0.143985687,"reason":"best-F1 proposal"}');
  await cal.clearCalibration('cam-01');
  assert.deepEqual([sent[1][0], sent[1][1].method], ['/v1/cameras/cam-01/calibration', 'DELETE']);
  await cal.calibrationAudit({ camera: 'cam-01', limit: 10 });
  assert.equal(sent[2][0], '/v1/calibration/audit?camera=cam-01&limit=10');
  const down = createApi(async () => { throw new TypeError('fetch failed'); });
  await assert.rejects(down.cameras(), (e) => e.code === 'network');
});
