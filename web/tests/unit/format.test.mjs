import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHtml, fmtScore, fmtPercent, fmtFps, fmtCount, fmtDuration, fmtAgo, fmtPosition, fromDatetimeLocal, toDatetimeLocal, fmtReviewState, fmtTime } from '../../js/format.js';

test('escapeHtml escapes markup and quotes', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  assert.equal(escapeHtml(null), '');
  assert.equal(escapeHtml(12), '12');
});

test('numbers: score, percent, fps, count', () => {
  assert.equal(fmtScore(0.31234), '0.312');
  assert.equal(fmtScore(undefined), '–');
  assert.equal(fmtScore(NaN), '–');
  assert.equal(fmtPercent(0.0117), '1.2 %');
  assert.equal(fmtPercent(0), '0.0 %');
  assert.equal(fmtPercent(null), '–');
  assert.equal(fmtFps(4.93), '4.9 fps');
  assert.equal(fmtFps(0), '0 fps');
  assert.equal(fmtFps(24.6), '25 fps');
  assert.equal(fmtCount(1234567), '1\u2009234\u2009567');
  assert.equal(fmtCount(12), '12');
});

test('durations and ages', () => {
  assert.equal(fmtDuration(0), '0 s');
  assert.equal(fmtDuration(59_999), '59 s');
  assert.equal(fmtDuration(60_000), '1 min');
  assert.equal(fmtDuration(3_600_000), '1 h');
  assert.equal(fmtDuration(3_900_000), '1 h 5 min');
  assert.equal(fmtDuration(3 * 86_400_000), '3 d');
  assert.equal(fmtDuration(-5), '0 s');
  const now = Date.parse('2026-11-23T14:05:10.000Z');
  assert.equal(fmtAgo('2026-11-23T14:05:00.000Z', now), '10 s ago');
  assert.equal(fmtAgo('2026-11-23T14:05:09.500Z', now), 'just now');
  assert.equal(fmtAgo(null, now), 'never');
  assert.equal(fmtAgo('garbage', now), 'never');
});

test('track positions as kilometrage', () => {
  assert.equal(fmtPosition('L1', 1234.6), 'L1 · km 1.235');
  assert.equal(fmtPosition(null, 12000), 'km 12.000');
  assert.equal(fmtPosition('L2', null), 'L2');
  assert.equal(fmtPosition(null, null), '–');
});

test('datetime-local round trip', () => {
  const ms = new Date(2026, 10, 23, 14, 5).getTime();
  const v = toDatetimeLocal(ms);
  assert.equal(v, '2026-11-23T14:05');
  assert.equal(Date.parse(fromDatetimeLocal(v)), ms);
  assert.equal(fromDatetimeLocal(''), '');
  assert.equal(fromDatetimeLocal('nope'), '');
});

test('review state labels and times', () => {
  assert.equal(fmtReviewState(null), 'unreviewed');
  assert.equal(fmtReviewState({ state: 'confirmed' }), 'confirmed defect');
  assert.equal(fmtReviewState({ state: 'false_alarm' }), 'false alarm');
  const t = new Date(2026, 10, 23, 9, 8, 7);
  assert.equal(fmtTime(t.toISOString(), t.getTime()), '09:08:07');
  assert.equal(fmtTime(t.toISOString(), t.getTime() + 3 * 86_400_000), '2026-11-23 09:08:07');
});
