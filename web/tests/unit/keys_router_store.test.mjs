import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shortcutFor, isEditableTarget, SHORTCUTS } from '../../js/keys.js';
import { parseRoute, routeHash } from '../../js/router.js';
import { createStore } from '../../js/store.js';

test('review shortcuts', () => {
  const k = (key, extra = {}) => shortcutFor({ key, ...extra });
  assert.equal(k('c'), 'confirm');
  assert.equal(k('C'), 'confirm');
  assert.equal(k('f'), 'false_alarm');
  assert.equal(k('j'), 'next');
  assert.equal(k('ArrowDown'), 'next');
  assert.equal(k('k'), 'prev');
  assert.equal(k('ArrowUp'), 'prev');
  assert.equal(k('n'), 'note');
  assert.equal(k('h'), 'toggle_heatmap');
  assert.equal(k('r'), 'toggle_reconstruction');
  assert.equal(k('z'), 'zoom');
  assert.equal(k('s'), 'severity');
  assert.equal(k('x'), null);
  assert.equal(k('c', { ctrlKey: true }), null, 'ctrl+c stays copy');
  assert.equal(k('f', { metaKey: true }), null);
  assert.equal(k('c', { editable: true }), null, 'typing a c into the note');
  assert.equal(k('ArrowDown', { editable: true }), null);
  assert.equal(k('Escape', { editable: true }), 'blur');
  assert.equal(shortcutFor(null), null);
  assert.ok(SHORTCUTS.length >= 6);
});

test('editable targets', () => {
  assert.equal(isEditableTarget({ tagName: 'textarea' }), true);
  assert.equal(isEditableTarget({ tagName: 'INPUT', type: 'text' }), true);
  assert.equal(isEditableTarget({ tagName: 'INPUT', type: 'range' }), true);
  assert.equal(isEditableTarget({ tagName: 'INPUT', type: 'checkbox' }), false);
  assert.equal(isEditableTarget({ tagName: 'SELECT' }), true);
  assert.equal(isEditableTarget({ tagName: 'BUTTON' }), false);
  assert.equal(isEditableTarget({ tagName: 'DIV', isContentEditable: true }), true);
  assert.equal(isEditableTarget(), false);
});

test('hash routes', () => {
  assert.deepEqual(parseRoute(''), { view: 'wall', arg: null });
  assert.deepEqual(parseRoute('#/review'), { view: 'review', arg: null });
  assert.deepEqual(parseRoute('#/review/42'), { view: 'review', arg: '42' });
  assert.deepEqual(parseRoute('#/calibration/cam%2D01'), { view: 'calibration', arg: 'cam-01' });
  assert.deepEqual(parseRoute('#/nope/1'), { view: 'wall', arg: null });
  assert.equal(routeHash('review', 42), '#/review/42');
  assert.equal(routeHash('trends'), '#/trends');
});

test('store merges patches and notifies', () => {
  const s = createStore({ a: 1, b: 2 });
  const seen = [];
  const off = s.subscribe((st, prev) => seen.push([prev.a, st.a]));
  s.set({ a: 3 });
  s.set((st) => ({ a: st.a + 1 }));
  s.set(() => null);
  off();
  s.set({ a: 9 });
  assert.deepEqual(seen, [[1, 3], [3, 4]]);
  assert.deepEqual(s.get(), { a: 9, b: 2 });
});
