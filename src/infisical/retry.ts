/**
 * Bounded retry with exponential backoff, for calls to Infisical.
 *
 * Delay before retry n (n = 1 after the first failure):
 *
 * 1. if `retryAfterMs(err)` gives a value (a 429/503 `retry-after`), wait exactly that long —
 *    the server said when it will accept us again, so jitter would only make us early. A value
 *    above `maxRetryAfterMs` stops the retries and rethrows: Infisical's rate-limit window is
 *    60 s, and sleeping longer than the cap inside one request would stall the caller, whose own
 *    lifecycle (token timers, the next event) is the better place to try again;
 * 2. otherwise the reloader's one backoff (util/backoff.ts): `min(maxDelayMs, baseDelayMs ×
 *    2^(n-1))` with ±20 % jitter (the @infisical/sdk shape), never above `maxDelayMs`.
 *
 * `attempts` counts every call of `fn`, the first included. Errors for which `shouldRetry` is
 * false, and the error of the last attempt, are rethrown unchanged.
 */

import { backoffDelay } from '../util/backoff.js';
import { sleep as abortableSleep } from '../util/timers.js';

/** Options of {@link withRetry}. */
export interface RetryOptions {
  /** Total number of calls of `fn` (≥ 1). */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Upper bound for a server-given retry-after; above it the error is rethrown. Default 60 s. */
  maxRetryAfterMs?: number;
  shouldRetry: (err: unknown) => boolean;
  /** A server-given wait for this error (retry-after), in milliseconds. */
  retryAfterMs?: (err: unknown) => number | undefined;
  /** Aborts the waits between attempts (the sleep rejects with the signal's reason). */
  signal?: AbortSignal;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Called before each wait: for debug logs and tests. */
  onRetry?: (info: { err: unknown; attempt: number; delayMs: number }) => void;
  /** Source of randomness in [0, 1), for deterministic tests. */
  random?: () => number;
}

/** Default cap for a server-given retry-after: Infisical's rate-limit window. */
export const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

/**
 * Parses an HTTP `retry-after` value: delta-seconds or an HTTP date. Returns milliseconds
 * (never negative) or undefined when the header is absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, nowMs = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

/**
 * Calls `fn(attempt)` until it resolves, a non-retryable error is thrown, or `attempts` calls
 * have failed. See the module comment for the delay rules.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  opts: RetryOptions,
): Promise<T> {
  const attempts = Math.max(1, Math.floor(opts.attempts));
  const sleep = opts.sleep ?? abortableSleep;
  const maxRetryAfter = opts.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !opts.shouldRetry(err)) throw err;
      const hinted = opts.retryAfterMs?.(err);
      let delayMs: number;
      if (hinted !== undefined) {
        if (hinted > maxRetryAfter) throw err;
        delayMs = Math.max(0, hinted);
      } else {
        delayMs = backoffDelay(
          attempt,
          { baseMs: opts.baseDelayMs, maxMs: opts.maxDelayMs },
          opts.random,
        );
      }
      opts.onRetry?.({ err, attempt, delayMs });
      await sleep(delayMs, opts.signal);
    }
  }
}
