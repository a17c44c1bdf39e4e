import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CATALOGUE, confirmBody, defectQuery, nextSeverity, nextStates, typeForKey, typeKey } from '../../js/defects.js';

test('digits pick the catalogue types: 1…9, 0 for the tenth', () => {
  const t = DEFAULT_CATALOGUE.types;
  assert.equal(t.length, 10);
  assert.equal(typeForKey('1', t), 'missing_clip');
  assert.equal(typeForKey('2', t), 'fractured_clip');
  assert.equal(typeForKey('9', t), 'cracked_sleeper');
  assert.equal(typeForKey('0', t), 'other');
  assert.equal(typeForKey('x', t), null);
  assert.equal(typeForKey('3', t.slice(0, 2)), null, 'no third type');
  assert.deepEqual([0, 8, 9, 10].map(typeKey), ['1', '9', '0', null]);
});

test('severity cycles through the configured list', () => {
  assert.equal(nextSeverity(['immediate', 'plan', 'monitor'], 'immediate'), 'plan');
  assert.equal(nextSeverity(['immediate', 'plan', 'monitor'], 'monitor'), 'immediate');
  assert.equal(nextSeverity(['a'], 'zzz'), 'a');
  assert.equal(nextSeverity([], 'a'), null);
});

test('a confirmation body carries type and severity, side and sleeper only when given', () => {
  assert.deepEqual(confirmBody({ type: 'loose_bolt', severity: 'plan', railSide: '', sleeper: '', note: 'n' }), { state: 'confirmed', note: 'n', type: 'loose_bolt', severity: 'plan' });
  assert.deepEqual(confirmBody({ type: 'other', severity: 'monitor', railSide: 'right', sleeper: '17' }), { state: 'confirmed', note: '', type: 'other', severity: 'monitor', rail_side: 'right', sleeper: 17 });
  assert.equal(confirmBody({ type: 'other', severity: 'x', sleeper: '-3' }).sleeper, undefined);
});

test('the handover query: km typed as km, sent in metres', () => {
  assert.equal(defectQuery({}, 'json'), '');
  assert.equal(defectQuery({ track_id: 'L1', from_km: '1.2', to_km: '12.4086' }, 'csv'), '?format=csv&track_id=L1&min_position_m=1200&max_position_m=12408.6');
  assert.equal(defectQuery({ severity: 'immediate', state: 'open', since: '2026-11-23T10:00:00.000Z' }, 'geojson'), '?format=geojson&since=2026-11-23T10%3A00%3A00.000Z&severity=immediate&state=open');
  assert.equal(defectQuery({ from_km: 'abc' }, 'html'), '?format=html');
});

test('lifecycle moves follow the server: repaired is final', () => {
  assert.deepEqual(nextStates('open'), ['repair_ordered', 'repaired']);
  assert.deepEqual(nextStates('repair_ordered'), ['repaired', 'open']);
  assert.deepEqual(nextStates('repaired'), []);
});
