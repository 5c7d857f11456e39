import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Debouncer, type Burst } from '../../src/util/debouncer.js';
import type { Timers } from '../../src/util/timers.js';

/** Deterministic timers: `advance(ms)` fires what is due, in order. */
function fakeTimers(): Timers & { advance(ms: number): Promise<void> } {
  let now = 1_000;
  let seq = 0;
  const queue = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++seq;
      queue.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(handle) {
      queue.delete(handle as number);
    },
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        const next = [...queue.entries()].sort((a, b) => a[1].at - b[1].at)[0];
        if (!next || next[1].at > end) break;
        queue.delete(next[0]);
        now = next[1].at;
        next[1].fn();
        await new Promise((r) => setImmediate(r));
      }
      now = end;
      await new Promise((r) => setImmediate(r));
    },
  };
}

test('a burst inside wait.min gives one run, after min of quiet', async () => {
  const timers = fakeTimers();
  const runs: Array<[string, Burst]> = [];
  const d = new Debouncer<string>({
    run: async (k, b) => {
      runs.push([k, b]);
    },
    waitFor: () => ({ minMs: 100, maxMs: 1000 }),
    timers,
  });
  for (let i = 0; i < 5; i++) {
    d.trigger('t');
    await timers.advance(50);
  }
  assert.equal(runs.length, 0, 'still inside the quiet period');
  await timers.advance(100);
  assert.equal(runs.length, 1);
  assert.equal(runs[0]?.[1].count, 5);
  assert.equal(runs[0]?.[1].firstEventAtMs, 1_000);
});

test('wait.max bounds a continuous stream', async () => {
  const timers = fakeTimers();
  const runAt: number[] = [];
  const d = new Debouncer<string>({
    run: async () => {
      runAt.push(timers.now());
    },
    waitFor: () => ({ minMs: 100, maxMs: 300 }),
    timers,
  });
  for (let i = 0; i < 10; i++) {
    d.trigger('t');
    await timers.advance(50);
  }
  assert.ok(runAt.length >= 1, `a run must happen within max; saw ${runAt.length}`);
  assert.equal(runAt[0], 1_300, 'first run exactly at first + max');
});

test('a trigger during a run causes exactly one more run, never a concurrent one', async () => {
  const timers = fakeTimers();
  let running = 0;
  let maxConcurrent = 0;
  let release!: () => void;
  const runs: Burst[] = [];
  const d = new Debouncer<string>({
    run: async (_k, b) => {
      running++;
      maxConcurrent = Math.max(maxConcurrent, running);
      runs.push(b);
      if (runs.length === 1) await new Promise<void>((r) => (release = r));
      running--;
    },
    waitFor: () => ({ minMs: 0, maxMs: 0 }),
    timers,
  });
  d.trigger('t');
  await timers.advance(1);
  assert.equal(runs.length, 1);
  d.trigger('t');
  d.trigger('t');
  await timers.advance(10);
  assert.equal(runs.length, 1, 'second run waits for the first');
  release();
  await d.idle();
  assert.equal(runs.length, 2);
  assert.equal(runs[1]?.count, 2);
  assert.equal(maxConcurrent, 1);
});

test('keys are independent; immediate runs skip the quiet period; errors go to onError', async () => {
  const timers = fakeTimers();
  const runs: string[] = [];
  const errors: string[] = [];
  const d = new Debouncer<string>({
    run: async (k) => {
      runs.push(k);
      if (k === 'bad') throw new Error('boom');
    },
    waitFor: (k) => (k === 'slow' ? { minMs: 500, maxMs: 500 } : { minMs: 10, maxMs: 10 }),
    onError: (k) => errors.push(k),
    timers,
  });
  d.trigger('slow');
  d.trigger('fast');
  d.trigger('bad');
  await timers.advance(20);
  assert.deepEqual(runs.sort(), ['bad', 'fast']);
  assert.deepEqual(errors, ['bad']);
  d.trigger('now', timers.now(), true);
  await timers.advance(0);
  assert.ok(runs.includes('now'));
  await d.stop();
  await timers.advance(1000);
  assert.ok(!runs.includes('slow'), 'stop drops pending bursts');
});
