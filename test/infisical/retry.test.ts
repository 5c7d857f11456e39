import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRetryAfter, withRetry, type RetryOptions } from '../../src/infisical/retry.js';

class Retryable extends Error {
  constructor(readonly after?: number) {
    super('retryable');
  }
}

function opts(over: Partial<RetryOptions> = {}): RetryOptions & { waits: number[] } {
  const waits: number[] = [];
  return {
    attempts: 4,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    shouldRetry: (e) => e instanceof Retryable,
    retryAfterMs: (e) => (e instanceof Retryable ? e.after : undefined),
    sleep: async (ms) => {
      waits.push(ms);
    },
    random: () => 0.5,
    waits,
    ...over,
  };
}

test('retries a retryable error until success and counts attempts', async () => {
  const o = opts();
  let calls = 0;
  const out = await withRetry(async (attempt) => {
    calls++;
    assert.equal(attempt, calls);
    if (calls < 3) throw new Retryable();
    return 'ok';
  }, o);
  assert.equal(out, 'ok');
  assert.equal(calls, 3);
  assert.deepEqual(o.waits, [100, 200], 'exponential from the base, no jitter at random=0.5');
});

test('gives up after `attempts` calls and rethrows the last error unchanged', async () => {
  const o = opts({ attempts: 3 });
  let calls = 0;
  const last = new Retryable();
  await assert.rejects(
    withRetry(async () => {
      calls++;
      throw calls === 3 ? last : new Retryable();
    }, o),
    (err) => err === last,
  );
  assert.equal(calls, 3);
  assert.equal(o.waits.length, 2);
});

test('a non-retryable error is thrown at once', async () => {
  const o = opts();
  let calls = 0;
  await assert.rejects(
    withRetry(async () => {
      calls++;
      throw new Error('fatal');
    }, o),
    /fatal/,
  );
  assert.equal(calls, 1);
  assert.deepEqual(o.waits, []);
});

test('a server retry-after is waited exactly; above the cap it is rethrown without waiting', async () => {
  const o = opts({ maxRetryAfterMs: 5000 });
  let calls = 0;
  await withRetry(async () => {
    if (++calls === 1) throw new Retryable(3000);
    return 1;
  }, o);
  assert.deepEqual(o.waits, [3000], 'retry-after wins over backoff and over maxDelayMs');

  const o2 = opts({ maxRetryAfterMs: 5000 });
  let calls2 = 0;
  await assert.rejects(
    withRetry(async () => {
      calls2++;
      throw new Retryable(6000);
    }, o2),
    Retryable,
  );
  assert.equal(calls2, 1);
  assert.deepEqual(o2.waits, []);
});

test('parseRetryAfter reads seconds and HTTP dates', () => {
  assert.equal(parseRetryAfter(undefined), undefined);
  assert.equal(parseRetryAfter(''), undefined);
  assert.equal(parseRetryAfter('garbage'), undefined);
  assert.equal(parseRetryAfter('2'), 2000);
  assert.equal(parseRetryAfter(' 0 '), 0);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now), 0, 'a past date means now');
});

test('an aborted signal ends the wait with the abort reason', async () => {
  const ac = new AbortController();
  let calls = 0;
  const p = withRetry(
    async () => {
      calls++;
      throw new Retryable();
    },
    {
      attempts: 5,
      baseDelayMs: 10_000,
      maxDelayMs: 10_000,
      shouldRetry: () => true,
      signal: ac.signal,
    },
  );
  setTimeout(() => ac.abort(new Error('stopped')), 20);
  const started = Date.now();
  await assert.rejects(p, /stopped/);
  assert.ok(Date.now() - started < 2000, 'did not sleep the full backoff');
  assert.equal(calls, 1);
});
