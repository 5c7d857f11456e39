import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatDuration, parseDuration } from '../../src/config/duration.js';

test('parseDuration reads every unit', () => {
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('5s'), 5_000);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  assert.equal(parseDuration('0s'), 0);
});

test('parseDuration reads compounds and fractions', () => {
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1m30s500ms'), 90_500);
  assert.equal(parseDuration('1.5s'), 1_500);
  assert.equal(parseDuration('2d12h'), 2.5 * 86_400_000);
});

test('parseDuration refuses plain numbers, unknown units and junk', () => {
  assert.throws(() => parseDuration('10'), /has no unit/);
  assert.throws(() => parseDuration('1.5'), /has no unit/);
  for (const bad of ['', 's', '5 s', '5sec', '-5s', '5S', '1h 30m', '5s ', 'ms', '1w', '1.s']) {
    assert.throws(() => parseDuration(bad), /invalid duration/, `accepted ${JSON.stringify(bad)}`);
  }
  assert.throws(() => parseDuration(10 as unknown as string), /must be a string/);
});

test('formatDuration gives the shortest compound form', () => {
  assert.equal(formatDuration(0), '0ms');
  assert.equal(formatDuration(250), '250ms');
  assert.equal(formatDuration(5_400_000), '1h30m');
  assert.equal(formatDuration(90_500), '1m30s500ms');
  assert.equal(formatDuration(7 * 86_400_000), '7d');
  assert.throws(() => formatDuration(-1), /non-negative/);
});

test('formatDuration output always parses back to the same milliseconds', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 400 * 86_400_000 }), (ms) => {
      assert.equal(parseDuration(formatDuration(ms)), ms);
    }),
  );
});
