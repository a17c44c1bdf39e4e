// Triage at scale (issue 12, item 4): sort by score, score and km filters, one count for the
// badge and the list, bulk review bodies and undo texts, deep links to inspections not listed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_FILTERS, emptyQueue, filtersToQuery, filterConditions, countKey, isUnreviewedQueue, kmToMetres,
  matchesFilters, compareItems, queueLoaded, queueAppended, queueUpsert, queueCounted, queueMove, queueSelect,
  queueSelected, queuePinned, queueMissing, queueWithFilters, badgeCount, describeSelection, bulkBody, describeUndo, sameFilters,
} from '../../js/state.js';
import { createApi } from '../../js/api.js';
import { parseRoute } from '../../js/router.js';

const insp = (id, extra = {}) => ({ id, camera: 'cam-01', verdict: 'defect', A_norm: 0.5, threshold: 0.2, capture_time: '2026-11-23T14:00:00Z', received_at: '2026-11-23T14:00:00Z', track_id: 'L1', position_m: 1500, review: null, ...extra });
const ids = (q) => q.items.map((i) => i.id);

test('filters: sort, min A′, track and km go to the API; the count does not depend on the sort', () => {
  const f = { ...DEFAULT_FILTERS, sort: 'score', min_score: ' 0.35 ', track_id: ' L1 ', from_km: '1.2', to_km: '12.4086' };
  assert.equal(filtersToQuery(f, { limit: 50 }),
    'verdict=defect&review=unreviewed&track_id=L1&min_position_m=1200&max_position_m=12408.6&min_score=0.35&sort=score&limit=50');
  assert.equal(filtersToQuery({ ...f, sort: 'newest' }).includes('sort='), false, 'newest is the default order');
  assert.deepEqual(filterConditions(f), { verdict: 'defect', review: 'unreviewed', track_id: 'L1', min_position_m: 1200, max_position_m: 12408.6, min_score: 0.35 });
  // Not numbers: left out rather than sent.
  assert.deepEqual(filterConditions({ ...DEFAULT_FILTERS, min_score: 'abc', from_km: '', to_km: 'x' }), { verdict: 'defect', review: 'unreviewed' });
  assert.equal(kmToMetres('0'), 0);
  assert.equal(kmToMetres(''), null);
  assert.equal(countKey({ ...f, sort: 'newest' }), countKey(f));
  assert.notEqual(countKey({ ...f, min_score: '0.4' }), countKey(f));
  assert.equal(isUnreviewedQueue({ ...DEFAULT_FILTERS, sort: 'score' }), true);
  assert.equal(isUnreviewedQueue({ ...DEFAULT_FILTERS, min_score: '0.2' }), false);
  assert.equal(isUnreviewedQueue({ ...DEFAULT_FILTERS, camera: 'cam-02' }), false);
  // A field left again without a change reloads nothing; a new order does.
  assert.equal(sameFilters({ ...f, min_score: '0.35' }, f), true);
  assert.equal(sameFilters({ ...f, sort: 'newest' }, f), false);
  assert.equal(sameFilters({ ...DEFAULT_FILTERS, to_km: '2' }, DEFAULT_FILTERS), false);
});

test('filters: live items are matched like the server matches them', () => {
  const f = { ...DEFAULT_FILTERS, min_score: '0.5', track_id: 'L1', from_km: '1', to_km: '2' };
  assert.equal(matchesFilters(insp(1), f), true, 'the bounds are inclusive');
  assert.equal(matchesFilters(insp(1, { A_norm: 0.49 }), f), false);
  assert.equal(matchesFilters(insp(1, { A_norm: null, note: 'no track found' }), f), false, 'no score: left out by a min score');
  assert.equal(matchesFilters(insp(1, { track_id: 'L2' }), f), false);
  assert.equal(matchesFilters(insp(1, { position_m: 2000.1 }), f), false);
  assert.equal(matchesFilters(insp(1, { position_m: 999.9 }), f), false);
  assert.equal(matchesFilters(insp(1, { position_m: null }), f), false);
  assert.equal(matchesFilters(insp(1, { position_m: 2000 }), f), true);
  // Times are arrival times, `until` exclusive (the server's received_ms < until).
  assert.equal(matchesFilters(insp(1), { until: '2026-11-23T14:00:00Z' }), false);
  assert.equal(matchesFilters(insp(1, { capture_time: '2026-11-23T09:00:00Z' }), { since: '2026-11-23T13:00:00Z' }), true);
});

test('sort by score: highest first, ties by id, unscored last; live items land in place', () => {
  const cmp = compareItems('score');
  const items = [insp(1, { A_norm: 0.3 }), insp(2, { A_norm: 0.9 }), insp(3, { A_norm: null }), insp(4, { A_norm: 0.3 }), insp(5, { A_norm: null }), insp(6, { A_norm: 1.4 })];
  assert.deepEqual([...items].sort(cmp).map((i) => i.id), [6, 2, 4, 1, 5, 3]);
  let q = queueLoaded(emptyQueue({ ...DEFAULT_FILTERS, sort: 'score' }), { items: [items[0], items[1], items[5]], next_cursor: '0.3:1', total: 6 });
  assert.deepEqual(ids(q), [6, 2, 1]);
  assert.equal(q.total, 6);
  assert.equal(q.selectedId, 6, 'the highest score first');
  // A new frame scoring between: inserted in place and counted; one scoring below the loaded
  // range waits for its page but is counted.
  q = queueUpsert(q, insp(7, { A_norm: 1.0 }), { isNew: true });
  assert.deepEqual(ids(q), [6, 7, 2, 1]);
  assert.equal(q.total, 7);
  q = queueUpsert(q, insp(8, { A_norm: 0.1 }), { isNew: true });
  assert.deepEqual(ids(q), [6, 7, 2, 1]);
  assert.equal(q.total, 8);
  q = queueAppended(q, { items: [items[3], insp(8, { A_norm: 0.1 }), items[4], items[2]], next_cursor: null, total: 8 });
  assert.deepEqual(ids(q), [6, 7, 2, 4, 1, 8, 5, 3]);
  assert.equal(q.nextCursor, null);
  // Paging by id (newest first) still reads next_before_id.
  const n = queueLoaded(emptyQueue(), { items: [insp(9), insp(8)], next_before_id: 8 });
  assert.equal(n.nextCursor, '8');
});

test('counts: the list total follows what it knows and asks again for what it cannot', () => {
  let q = queueLoaded(emptyQueue(), { items: [insp(10), insp(9), insp(8)], next_cursor: '8', total: 437 });
  assert.equal(q.total, 437);
  // Reviewed here (listed): it leaves, one fewer.
  q = queueUpsert(q, insp(9, { review: { state: 'false_alarm' } }));
  assert.deepEqual(ids(q), [10, 8]);
  assert.equal(q.total, 436);
  assert.equal(q.recount, false);
  // A new defect: one more. A new normal frame: nothing.
  q = queueUpsert(q, insp(11), { isNew: true });
  q = queueUpsert(q, insp(12, { verdict: 'normal' }), { isNew: true });
  assert.equal(q.total, 437);
  assert.equal(q.recount, false);
  // Reviewed elsewhere, not loaded here: did it match before? Ask the server.
  q = queueUpsert(q, insp(3, { review: { state: 'confirmed' } }));
  assert.equal(q.recount, true);
  assert.equal(q.total, 437);
  q = queueCounted(q, countKey(q.filters), 436);
  assert.deepEqual([q.total, q.recount], [436, false]);
  // A count for other filters (they changed meanwhile) is not applied.
  assert.equal(queueCounted(q, countKey({ ...q.filters, camera: 'cam-02' }), 3), q);
  // The badge and the list's header show one number while the list is the unreviewed queue.
  assert.equal(badgeCount(q, 999), 436);
  const other = queueLoaded(queueWithFilters(q, { camera: 'cam-02' }), { items: [], total: 0 });
  assert.equal(badgeCount(other, 436), 436, 'another filter: the badge keeps its own count');
  assert.equal(badgeCount(emptyQueue(), null), null);
});

test('deep links: the exact inspection, even when it is not listed', () => {
  assert.deepEqual(parseRoute('#/review/922'), { view: 'review', arg: '922' });
  let q = queueLoaded(emptyQueue(), { items: [insp(959), insp(958)], next_cursor: '958', total: 437 });
  // #922 is on a page not loaded: pinned above the list and selected (not #959).
  q = queuePinned(q, insp(922));
  assert.equal(q.selectedId, 922);
  assert.equal(queueSelected(q).id, 922);
  assert.deepEqual(ids(q), [959, 958], 'the list itself is unchanged');
  // A reload of the list keeps the linked one selected.
  q = queueLoaded(q, { items: [insp(960), insp(959)], next_cursor: '959', total: 438 });
  assert.equal(q.selectedId, 922);
  assert.equal(q.pinned.id, 922);
  // Reviewed: the pinned copy shows the decision; the total is asked again.
  q = queueUpsert(q, insp(922, { review: { state: 'confirmed' } }));
  assert.equal(queueSelected(q).review.state, 'confirmed');
  // j goes to the list; a click goes back to the linked one.
  const moved = queueMove(q, 1);
  assert.equal(moved.selectedId, 960);
  assert.equal(queueSelect(moved, 922).selectedId, 922);
  // Once a loaded page holds it, it is shown in its place.
  q = queueAppended(queuePinned(q, insp(922)), { items: [insp(922)], next_cursor: null, total: 438 });
  assert.equal(q.pinned, null);
  assert.equal(q.selectedId, 922);
  // An id that does not exist: nothing selected, and the page can say so.
  const missing = queueMissing(q, 99999);
  assert.equal(queueSelected(missing), null);
  assert.equal(missing.missingId, 99999);
  assert.equal(queueLoaded(missing, { items: [insp(1)], total: 1 }).selectedId, 99999, 'the message stays after a reload');
  assert.equal(queuePinned(missing, insp(5)).missingId, null);
});

test('bulk review: the body is the list filter as counted, and the undo says what it did', () => {
  const f = { ...DEFAULT_FILTERS, camera: 'cam-02', sort: 'score', min_score: '0.6', track_id: 'L1', from_km: '2', to_km: '3' };
  const body = bulkBody(f, { state: 'false_alarm', note: 'dirty lens', expected: 37, maxId: 4120 });
  assert.deepEqual(body, {
    filter: { camera: 'cam-02', verdict: 'defect', review: 'unreviewed', track_id: 'L1', min_position_m: 2000, max_position_m: 3000, min_score: 0.6, max_id: 4120 },
    expected_count: 37, state: 'false_alarm', note: 'dirty lens',
  });
  const confirm = bulkBody(f, { state: 'confirmed', expected: 2, maxId: 9, type: 'missing_clip', severity: 'plan' });
  assert.deepEqual([confirm.type, confirm.severity, confirm.note], ['missing_clip', 'plan', '']);
  assert.equal('type' in bulkBody(f, { state: 'false_alarm', expected: 1, maxId: 1, type: 'x' }), false);
  assert.equal(describeSelection(f, 37), '37 unreviewed defects from cam-02 with A′ ≥ 0.6 on track L1 km 2.000–3.000');
  assert.equal(describeSelection({ ...DEFAULT_FILTERS }, 1), '1 unreviewed defect');
  assert.equal(describeSelection({ ...DEFAULT_FILTERS, verdict: '', review: '', from_km: '5' }, 2), '2 inspections from km 5.000');
  assert.equal(describeUndo({ undone: { restored: [1, 2, 3], skipped: [] } }), 'Undone: 3 inspections restored.');
  assert.equal(describeUndo({ undone: { restored: [1], skipped: [{ id: 7, reason: 'reviewed again since the bulk review' }] } }),
    'Undone: 1 inspection restored; 1 left as it is (reviewed again since: #7).');
});

test('api client: bulk review and its undo', async () => {
  const sent = [];
  const api = createApi(async (path, init) => { sent.push([path, init]); return new Response('{"id":12,"count":3}', { status: 200 }); });
  assert.deepEqual(await api.reviewBatch({ ids: [1, 2, 3], state: 'false_alarm' }), { id: 12, count: 3 });
  assert.deepEqual([sent[0][0], sent[0][1].method, sent[0][1].body], ['/v1/review-batches', 'POST', '{"ids":[1,2,3],"state":"false_alarm"}']);
  await api.undoReviewBatch(12);
  assert.deepEqual([sent[1][0], sent[1][1].method], ['/v1/review-batches/12/undo', 'POST']);
});
