import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHtml, fmtScore, fmtPercent, fmtFps, fmtCount, fmtDuration, fmtAgo, fmtPosition, fromDatetimeLocal, toDatetimeLocal, fmtReviewState, fmtTime, frameNote, isScored, noteTag, scoreRelation } from '../../js/format.js';

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

// Frames judged without a scored crop (docs/api.yaml, Inspection.note): R, L, A, A_norm null.
const noTrack = {
  id: 7, camera: 'cam-04', verdict: 'defect', R: null, L: null, A: null, A_norm: null, threshold: 0.127,
  crops: [], partial_slots: [], note: 'no track found: no rail found: edge contrast 0.00 below 5',
};

test('scores: null (a frame without a scored crop) is a dash, never "null", "NaN" or 0', () => {
  for (const k of ['R', 'L', 'A', 'A_norm']) assert.equal(fmtScore(noTrack[k]), '–', k);
  assert.equal(fmtScore(null, 4), '–');
  assert.equal(fmtScore(Infinity), '–');
  assert.equal(fmtScore('0.3'), '–', 'a string is not a score');
  assert.equal(fmtScore(0), '0.000');
  assert.equal(isScored(noTrack), false);
  assert.equal(isScored({ A_norm: 0 }), true);
  assert.equal(isScored(null), false);
  assert.equal(scoreRelation(null, 0.127), null, 'no comparison without a score');
  assert.equal(scoreRelation(0.2, 0.127), '>');
  assert.equal(scoreRelation(0.127, 0.127), '≤', 'strict >, as the server');
  assert.equal(scoreRelation(0.2, null), null);
});

test('frame notes: the three server notes, an unknown one, none', () => {
  const t = frameNote(noTrack.note);
  assert.equal(t.kind, 'no_track');
  assert.equal(t.tag, 'no track');
  assert.match(t.headline, /^No track found — blocked or misaimed camera\?/);
  assert.equal(t.reason, 'no rail found: edge contrast 0.00 below 5', 'everything after the first colon');
  assert.equal(t.text, noTrack.note);
  assert.equal(frameNote('no track found').reason, null, 'no reason given');
  const f = frameNote('no fastener found in the frame');
  assert.equal(f.kind, 'no_fastener');
  assert.equal(f.tag, 'no fastener');
  assert.equal(f.reason, null);
  const p = frameNote("every fastener slot is cut by the frame's edge");
  assert.equal(p.kind, 'all_partial');
  assert.equal(p.tag, 'not scored');
  assert.match(p.headline, /cut by the frame’s edge/);
  const o = frameNote('camera restarted mid-frame');
  assert.equal(o.kind, 'other');
  assert.equal(o.headline, 'camera restarted mid-frame');
  for (const none of [null, undefined, '', '   ', 42]) assert.equal(frameNote(none), null, String(none));
});

test('list tags: a note and no crop show a tag instead of the score', () => {
  assert.equal(noteTag(noTrack), 'no track');
  assert.equal(noteTag({ ...noTrack, note: 'no fastener found in the frame' }), 'no fastener');
  assert.equal(noteTag({ ...noTrack, verdict: 'normal', note: "every fastener slot is cut by the frame's edge", partial_slots: [[0, 0, 40, 40]] }), 'not scored');
  // An ordinary frame (note null), or one with a note and scored crops, shows its score.
  const scored = { A_norm: 0.31, threshold: 0.127, crops: [{ box: [1, 2, 3, 4], A_norm: 0.31 }], note: null };
  assert.equal(noteTag(scored), null);
  assert.equal(noteTag({ ...scored, note: 'no track found: x' }), null);
  // Old inspections without the fields.
  assert.equal(noteTag({ A_norm: 0.1 }), null);
  assert.equal(noteTag({ A_norm: null, note: 'no track found: x' }), 'no track', 'crops missing counts as none');
  assert.equal(noteTag(null), null);
});
