/**
 * The one timer interface of the reloader. Every module that waits takes a `Timers` (a
 * constructor field with `realTimers` as the default), so tests drive time by hand.
 */

/** A clock and one-shot timers. */
export interface Timers {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` after `ms`; a delay ≤ 0 runs on the next turn of the event loop. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** A run due now: the next turn of the event loop, not a 0 ms timer. */
interface ImmediateHandle {
  immediate: NodeJS.Immediate;
}

/** Longest delay Node's setTimeout honours (≈ 24.8 days); longer ones are re-armed in steps. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

function makeTimers(unref: boolean): Timers {
  return {
    now: () => Date.now(),
    // A delay ≤ 0 uses setImmediate: setTimeout(fn, 0) waits at least 1 ms, which was a fixed
    // 1 ms on every event → file path.
    setTimeout: (fn, ms) => {
      if (ms <= 0) {
        const immediate = setImmediate(fn);
        if (unref) immediate.unref();
        return { immediate } satisfies ImmediateHandle;
      }
      const t = setTimeout(fn, Math.min(ms, MAX_TIMER_MS));
      if (unref) t.unref();
      return t;
    },
    clearTimeout: (handle) => {
      if (typeof handle === 'object' && handle !== null && 'immediate' in handle) {
        clearImmediate((handle as ImmediateHandle).immediate);
      } else {
        clearTimeout(handle as NodeJS.Timeout);
      }
    },
  };
}

/** Node's timers; a pending timer keeps the process alive. */
export const realTimers: Timers = makeTimers(false);

/**
 * Node's timers, unref'd: for background lifecycles (token renewal, reconnects) that must never
 * be the only thing keeping a process alive — a library user's `stop()` or a finished
 * `--once` exits even while one is armed.
 */
export const backgroundTimers: Timers = makeTimers(true);

/** A sleep that ends early, rejecting with the signal's reason, when `signal` aborts. */
export function sleep(
  ms: number,
  signal?: AbortSignal,
  timers: Timers = realTimers,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      timers.clearTimeout(handle);
      reject(signal?.reason);
    };
    const handle = timers.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
