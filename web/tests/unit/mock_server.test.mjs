// The development mock (tests/mock/server.mjs) keeps the documented bulk review contract
// (docs/api.yaml: POST /v1/review-batches, GET /v1/review-batches/{id}, POST …/undo), so the
// dashboard's bulk dismiss/confirm and undo can be worked on without the Rust binary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../mock/server.mjs';

let mock;
const H = { Authorization: 'Bearer demo-inspector-token' };
async function call(method, path, body) {
  const res = await fetch(mock.url + path, {
    method,
    headers: body === undefined ? H : { ...H, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}
const list = async (q) => (await call('GET', `/v1/inspections?${new URLSearchParams({ limit: '500', ...q })}`)).json;

before(async () => { mock = await startMock(0, { live: false }); });
after(async () => { await mock?.close(); });

test('mock bulk review: a filter with its expected count reviews exactly what GET /v1/inspections counts, and undo restores it', async () => {
  const filter = { camera: 'cam-01', review: 'unreviewed' };
  const before = await list(filter);
  assert.ok(before.total >= 1, `cam-01 has unreviewed frames in the mock: ${before.total}`);
  const maxId = Math.max(...before.items.map((i) => i.id));

  // Another count than the one confirmed: 409, nothing written.
  const stale = await call('POST', '/v1/review-batches', { filter: { ...filter, max_id: maxId }, expected_count: before.total + 1, state: 'false_alarm' });
  assert.equal(stale.status, 409);
  assert.equal(stale.json.error.code, 'count_changed');
  assert.equal((await list(filter)).total, before.total, 'nothing was reviewed');

  const done = await call('POST', '/v1/review-batches', { filter: { ...filter, max_id: maxId }, expected_count: before.total, state: 'false_alarm', note: 'dirty lens' });
  assert.equal(done.status, 200, JSON.stringify(done.json));
  const batch = done.json;
  for (const k of ['id', 'at', 'reviewer', 'state', 'note', 'type', 'severity', 'rail_side', 'sleeper', 'selection', 'count', 'items', 'undone']) assert.ok(k in batch, `ReviewBatch.${k}`);
  assert.equal(batch.count, before.total);
  assert.equal(batch.undone, null);
  assert.deepEqual(batch.selection, { filter: { ...filter, max_id: maxId } });
  assert.deepEqual(batch.items.map((x) => x.id).sort(), before.items.map((i) => i.id).sort());
  assert.ok(batch.items.every((x) => x.camera === 'cam-01' && x.previous === 'unreviewed' && x.undo === null));
  assert.equal((await list(filter)).total, 0);
  const one = (await call('GET', `/v1/inspections/${batch.items[0].id}`)).json;
  assert.equal(one.review.state, 'false_alarm');
  assert.equal(one.review.note, 'dirty lens');
  assert.equal(one.review.batch_id, batch.id);
  assert.equal('_seq' in one.review, false, 'no mock internals in the answer');
  assert.deepEqual((await call('GET', `/v1/review-batches/${batch.id}`)).json, batch);

  // One of them reviewed again since: the undo skips it and restores the others.
  const again = batch.items[0].id;
  assert.equal((await call('POST', `/v1/inspections/${again}/review`, { state: 'confirmed' })).status, 200);
  const undo = await call('POST', `/v1/review-batches/${batch.id}/undo`);
  assert.equal(undo.status, 200, JSON.stringify(undo.json));
  assert.equal(undo.json.undone.by, 'inspector');
  assert.deepEqual(undo.json.undone.skipped, [{ id: again, reason: 'reviewed again since the bulk review' }]);
  assert.deepEqual([...undo.json.undone.restored].sort(), batch.items.map((x) => x.id).filter((id) => id !== again).sort());
  assert.equal((await list(filter)).total, before.total - 1);
  assert.equal((await call('GET', `/v1/inspections/${again}`)).json.review.state, 'confirmed');

  const twice = await call('POST', `/v1/review-batches/${batch.id}/undo`);
  assert.equal(twice.status, 409);
  assert.equal(twice.json.error.code, 'already_undone');
});

test('mock bulk review: ids with a confirmation, and the documented refusals', async () => {
  const ids = (await list({ camera: 'cam-02' })).items.slice(0, 2).map((i) => i.id);
  const ok = await call('POST', '/v1/review-batches', { ids, state: 'confirmed', type: 'missing_clip', severity: 'plan' });
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.deepEqual([ok.json.type, ok.json.severity, ok.json.count], ['missing_clip', 'plan', 2]);
  assert.deepEqual(ok.json.selection, { ids });

  const refused = [
    [{ ids: [ids[0], 99999999], state: 'confirmed' }, 404, 'not_found'],
    [{ ids, filter: {}, state: 'confirmed' }, 400, 'bad_request'],
    [{ state: 'confirmed' }, 400, 'bad_request'],
    [{ filter: { camera: 'cam-01', colour: 'red' }, state: 'false_alarm' }, 400, 'bad_request'],
    [{ ids, state: 'maybe' }, 400, 'bad_request'],
    [{ filter: { camera: 'cam-99' }, state: 'false_alarm' }, 422, 'empty_selection'],
    [{ ids: Array.from({ length: 1001 }, (_, k) => k + 1), state: 'false_alarm' }, 422, 'too_many'],
  ];
  for (const [body, status, code] of refused) {
    const r = await call('POST', '/v1/review-batches', body);
    assert.deepEqual([r.status, r.json?.error?.code], [status, code], JSON.stringify(body));
  }
  const notJson = await fetch(`${mock.url}/v1/review-batches`, { method: 'POST', headers: { ...H, 'Content-Type': 'text/plain' }, body: '{}' });
  assert.equal(notJson.status, 415);
  assert.equal((await call('GET', '/v1/review-batches/99999')).status, 404);
  assert.equal((await call('GET', '/v1/review-batches/abc')).status, 400);
  const anon = await fetch(`${mock.url}/v1/review-batches`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ids, state: 'confirmed' }) });
  assert.equal(anon.status, 401);
});
