import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecretSnapshot, changedKeys, mergeSources } from '../../src/secrets/snapshot.js';

test('mergeSources: a later source wins and each collision is reported', () => {
  const collisions: Array<[string, number]> = [];
  const merged = mergeSources(
    [
      new Map([
        ['A', '1'],
        ['B', '2'],
      ]),
      new Map([['B', '3']]),
    ],
    (key, winner) => collisions.push([key, winner]),
  );
  assert.deepEqual(
    [...merged],
    [
      ['A', '1'],
      ['B', '3'],
    ],
  );
  assert.deepEqual(collisions, [['B', 1]]);
});

test('changedKeys: added, removed and changed keys, nothing else', () => {
  const before = new Map([
    ['SAME', 'x'],
    ['CHANGED', 'old'],
    ['REMOVED', 'gone'],
  ]);
  const after = new Map([
    ['SAME', 'x'],
    ['CHANGED', 'new'],
    ['ADDED', 'here'],
  ]);
  assert.deepEqual([...changedKeys(before, after)].sort(), ['ADDED', 'CHANGED', 'REMOVED']);
  assert.equal(changedKeys(after, after).size, 0);
});

test('SecretSnapshot: replace reports the merged keys that changed, applyValue sets and deletes', () => {
  const warnings: unknown[] = [];
  const logger = { warn: (obj: unknown) => warnings.push(obj) } as never;
  const snap = new SecretSnapshot(2, logger);
  let changed = snap.replace(
    new Map([
      [0, new Map([['K', 'a']])],
      [1, new Map([['K', 'b']])],
    ]),
  );
  assert.deepEqual([...changed], ['K']);
  assert.equal(snap.merged.get('K'), 'b');
  // the collision is logged once, by key name only
  assert.equal(warnings.length, 1);
  assert.doesNotMatch(JSON.stringify(warnings), /"a"|"b"/);
  changed = snap.replace(new Map([[0, new Map([['K', 'a2']])]]));
  assert.equal(changed.size, 0, 'source 1 still wins, so the merged value did not change');
  assert.equal(warnings.length, 1, 'no second warning for the same key');
  changed = snap.applyValue(1, 'K', undefined);
  assert.deepEqual([...changed], ['K']);
  assert.equal(snap.merged.get('K'), 'a2');
  changed = snap.applyValue(0, 'NEW', 'v');
  assert.deepEqual([...changed], ['NEW']);
  assert.throws(() => snap.source(5), RangeError);
});

/** Listings for a one-source snapshot. */
const only = (m: Map<string, string>): Map<number, Map<string, string>> => new Map([[0, m]]);

test('SecretSnapshot with one source: the merged view follows replace and applyValue, and changes are reported', () => {
  const snap = new SecretSnapshot(1);
  assert.deepEqual(
    [
      ...snap.replace(
        only(
          new Map([
            ['A', 'a1'],
            ['B', 'b1'],
          ]),
        ),
      ),
    ].sort(),
    ['A', 'B'],
  );
  assert.deepEqual([...snap.applyValue(0, 'A', 'a2')], ['A'], 'a new value is a change');
  assert.equal(snap.merged.get('A'), 'a2');
  assert.deepEqual([...snap.applyValue(0, 'A', 'a2')], [], 'the same value is not');
  assert.deepEqual([...snap.applyValue(0, 'C', 'c1')], ['C']);
  assert.deepEqual([...snap.applyValue(0, 'B', undefined)], ['B'], 'a deletion is a change');
  assert.equal(snap.merged.has('B'), false);
  assert.deepEqual([...snap.applyValue(0, 'B', undefined)], [], 'deleting an absent key is not');
  const merged = snap.merged;
  assert.deepEqual(
    [
      ...snap.replace(
        only(
          new Map([
            ['A', 'a2'],
            ['D', 'd1'],
          ]),
        ),
      ),
    ].sort(),
    ['C', 'D'],
    'the diff is against the view before the replace',
  );
  assert.deepEqual(
    [...merged.keys()].sort(),
    ['A', 'C'],
    'a view handed out earlier is not rewritten by replace',
  );
  assert.deepEqual([...snap.merged].sort(), [
    ['A', 'a2'],
    ['D', 'd1'],
  ]);
  assert.equal(snap.source(0), snap.merged);
});
