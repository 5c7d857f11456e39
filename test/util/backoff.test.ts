import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, backoffDelay } from '../../src/util/backoff.js';

test('backoff is capped at maxMs and jitter stays within ±20 %', () => {
  const base = { baseMs: 100, maxMs: 1000 };
  assert.equal(
    backoffDelay(1, base, () => 0),
    80,
  );
  assert.equal(
    backoffDelay(1, base, () => 0.999999),
    120,
  );
  assert.equal(
    backoffDelay(3, base, () => 0.5),
    400,
  );
  assert.equal(
    backoffDelay(10, base, () => 0.999999),
    1000,
    'cap holds after jitter',
  );
  assert.equal(
    backoffDelay(10, base, () => 0),
    800,
  );
  for (let n = 1; n < 8; n++) {
    const d = backoffDelay(n, base);
    const exp = Math.min(1000, 100 * 2 ** (n - 1));
    assert.ok(d >= exp * 0.8 - 1 && d <= Math.min(1000, exp * 1.2 + 1), `n=${n} d=${d}`);
  }
});

test('a Backoff counts its failures, doubles to the cap, and starts over after reset', () => {
  const b = new Backoff({ baseMs: 1000, maxMs: 60_000, jitter: 0 });
  assert.deepEqual(
    Array.from({ length: 8 }, () => b.next()),
    [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000],
  );
  assert.equal(b.attempts, 8);
  b.reset();
  assert.equal(b.attempts, 0);
  assert.equal(b.next(), 1000);
});

test('jitter spreads a fleet: three backoffs with different random sources give three delays', () => {
  const delays = [0.1, 0.5, 0.9].map((r) =>
    new Backoff({ baseMs: 1000, maxMs: 60_000 }, () => r).next(),
  );
  assert.equal(new Set(delays).size, 3, `delays ${delays.join(', ')}`);
  for (const d of delays) assert.ok(d >= 800 && d <= 1200, `delay ${d} within ±20 % of 1 s`);
});
