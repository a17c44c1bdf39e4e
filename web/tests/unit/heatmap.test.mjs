import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JET_STOPS, jetGradient, legendRange, legendPct, heatLegend, worstCrop, cropAt, framePoint, zoomFactor, cropView, partialSlots, PARTIAL_SLOT_LABEL } from '../../js/heatmap.js';

test('legend: 0, the threshold in the middle, 2 × threshold', () => {
  const l = heatLegend(0.127, 0.31);
  assert.deepEqual(l.ticks.map((t) => [t.key, t.pct]), [['lo', 0], ['threshold', 50], ['hi', 100]]);
  assert.deepEqual(l.ticks.map((t) => t.label), ['0', 'threshold 0.127', '0.254']);
  assert.equal(l.ticks[0].value, 0);
  assert.equal(l.ticks[2].value, 0.254);
  // The frame's A′ on the same scale: over the threshold is past the middle.
  assert.equal(l.frame.pct, 100, 'beyond 2 × threshold: clamped at the end');
  assert.equal(l.frame.beyond, true);
  assert.equal(l.frame.label, 'this frame 0.310');
  assert.equal(heatLegend(0.2, 0.1).frame.pct, 25);
  assert.equal(heatLegend(0.2, 0.2).frame.pct, 50);
  assert.equal(heatLegend(0.2, null).frame, null);
  assert.equal(heatLegend(undefined, 0.3), null);
  assert.match(l.gradient, /^linear-gradient\(to right, #000080 0\.0%, .*#800000 100\.0%\)$/);
});

test('legend range follows the server: t ≤ 0 spans one A′ unit either side', () => {
  assert.deepEqual(legendRange(0.3), { lo: 0, threshold: 0.3, hi: 0.6 });
  assert.deepEqual(legendRange(0), { lo: -1, threshold: 0, hi: 1 });
  assert.deepEqual(legendRange(-0.5), { lo: -1.5, threshold: -0.5, hi: 0.5 });
  assert.equal(legendRange(NaN), null);
  assert.equal(legendPct(-1, 0.3), 0);
  assert.equal(legendPct(0.45, 0.3), 75);
  assert.deepEqual(heatLegend(0).ticks.map((t) => t.label), ['-1.000', 'threshold 0.000', '1.000']);
});

test('JET stops: blue to red, the middle between green-cyan and yellow', () => {
  assert.equal(JET_STOPS[0][1], '#000080');
  assert.equal(JET_STOPS.at(-1)[1], '#800000');
  const positions = JET_STOPS.map(([p]) => p);
  assert.deepEqual([...positions].sort((a, b) => a - b), positions);
  assert.ok(JET_STOPS.some(([p, c]) => p < 0.5 && c === '#00ffff'));
  assert.ok(JET_STOPS.some(([p, c]) => p > 0.5 && c === '#ffff00'));
  assert.equal(jetGradient().split('%').length - 1, JET_STOPS.length);
});

test('crops: the worst one, the one under a point', () => {
  const crops = [
    { box: [0, 0, 64, 64], A_norm: 0.1 },
    { box: [64, 0, 64, 64], A_norm: 0.9 },
    { box: [32, 0, 64, 64], A_norm: 0.5 },
    { box: [0, 0, 0, 10], A_norm: 5 },
  ];
  assert.equal(worstCrop(crops), 1);
  assert.equal(worstCrop([]), -1);
  assert.equal(worstCrop(undefined), -1);
  assert.equal(cropAt(crops, 10, 10), 0);
  assert.equal(cropAt(crops, 40, 10), 2, 'overlap: the worse one');
  assert.equal(cropAt(crops, 70, 10), 1);
  assert.equal(cropAt(crops, 10, 70), -1);
});

test('point on an object-fit: contain image → frame pixel', () => {
  // A 100×50 image in a 200×200 box: scale 2, letterboxed 50 px top and bottom.
  const rect = { left: 10, top: 20, width: 200, height: 200 };
  const nat = { width: 100, height: 50 };
  assert.deepEqual(framePoint(rect, nat, 10, 70), { x: 0, y: 0 });
  assert.deepEqual(framePoint(rect, nat, 209, 169), { x: 99, y: 49 });
  assert.equal(framePoint(rect, nat, 100, 60), null, 'in the letterbox');
  assert.equal(framePoint(rect, { width: 0, height: 0 }, 1, 1), null);
});

test('zoom: 4× when the panels fit, else 3×; crop geometry clipped to the frame', () => {
  assert.equal(zoomFactor(64, 3, 1000), 4);
  assert.equal(zoomFactor(128, 3, 1300), 3);
  assert.deepEqual(cropView([10, 20, 30, 40], 100, 100, 4), { width: 120, height: 160, imgWidth: 400, imgHeight: 400, left: -40, top: -80 });
  assert.deepEqual(cropView([-10, 90, 30, 40], 100, 100, 3), { width: 60, height: 30, imgWidth: 300, imgHeight: 300, left: 0, top: -270 });
});

test('frames without a scored crop: no legend mark, no crop to zoom, partial slots kept apart', () => {
  // A′ null (Inspection.note): the legend still has its ticks, without the frame's mark.
  const l = heatLegend(0.127, null);
  assert.deepEqual(l.ticks.map((t) => t.label), ['0', 'threshold 0.127', '0.254']);
  assert.equal(l.frame, null);
  assert.equal(legendPct(null, 0.127), null);
  assert.equal(worstCrop([]), -1, 'nothing to zoom on');
  assert.equal(worstCrop(undefined), -1);
  assert.equal(cropAt([], 5, 5), -1);
  // Crops with a null A′ never beat a scored one, and do not throw.
  const crops = [{ box: [0, 0, 10, 10], A_norm: null }, { box: [0, 0, 10, 10], A_norm: 0.2 }];
  assert.equal(worstCrop(crops), 1);
  assert.equal(cropAt(crops, 3, 3), 1);
  // Partial slots: valid [x, y, w, h] boxes only.
  assert.deepEqual(partialSlots([[0, 180, 48, 48], [460, 10, 52, 40]]), [[0, 180, 48, 48], [460, 10, 52, 40]]);
  assert.deepEqual(partialSlots([[0, 0, 0, 10], [1, 2, 3], null, [1, 2, 'x', 4], [1, 2, 3, 4]]), [[1, 2, 3, 4]]);
  assert.deepEqual(partialSlots(undefined), []);
  assert.deepEqual(partialSlots(null), []);
  assert.match(PARTIAL_SLOT_LABEL, /cut by the frame edge — not scored/);
});
