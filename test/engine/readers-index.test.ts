/**
 * The daemon's key → readers index: one reader is held as a name, several as a Set, and the
 * switch between the two forms never loses or invents a reader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadersIndex } from '../../src/engine/readers-index.js';

test('readers are added, de-duplicated and removed across the one-name and Set forms', () => {
  const index = new ReadersIndex();
  index.add('K', 't1');
  index.add('K', 't1');
  assert.deepEqual(index.readersOf('K'), ['t1']);
  index.add('K', 't2');
  index.add('K', 't3');
  assert.deepEqual(index.readersOf('K'), ['t1', 't2', 't3']);
  index.remove('K', 't2');
  index.remove('K', 't1');
  assert.deepEqual(index.readersOf('K'), ['t3'], 'back to one reader');
  index.add('K', 't4');
  assert.deepEqual(index.readersOf('K'), ['t3', 't4']);
  index.remove('K', 't3');
  index.remove('K', 't4');
  assert.deepEqual(index.readersOf('K'), []);
  assert.equal(index.size, 0, 'a key without readers is dropped');
});

test('removing a name that does not read the key changes nothing', () => {
  const index = new ReadersIndex();
  index.add('A', 't1');
  index.remove('A', 't2');
  index.remove('B', 't1');
  assert.deepEqual(index.readersOf('A'), ['t1']);
  index.add('A', 't2');
  index.remove('A', 'other');
  assert.deepEqual(index.readersOf('A'), ['t1', 't2']);
  const seen: string[] = [];
  index.forEach('A', (name) => seen.push(name));
  assert.deepEqual(seen.sort(), ['t1', 't2']);
  index.clear();
  assert.equal(index.size, 0);
});
