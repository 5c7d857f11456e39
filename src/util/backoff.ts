/**
 * The one backoff of the reloader: exponential, capped, with jitter.
 *
 * Delay before retry n (n = 1 after the first failure): `min(maxMs, baseMs × 2^(n-1))`, then
 * spread by ±`jitter` (a fraction, default 0.2) and capped at `maxMs` again. ±20 % rather than
 * full jitter keeps a delay predictable for an operator reading the logs, and still spreads a
 * fleet of sidecars apart: three replicas that lost Infisical at the same instant do not come
 * back at the same instant.
 *
 * Used for Infisical requests, the first fetch, the token lifecycle, failed reloads, peer
 * relay retries, Event Subscription reconnects and lock waits; each caller owns one `Backoff`
 * per thing it retries.
 */

/** How a backoff grows. */
export interface BackoffPolicy {
  /** First delay, in milliseconds. */
  baseMs: number;
  /** Largest delay, in milliseconds. */
  maxMs: number;
  /** Spread as a fraction of the delay, 0 ≤ jitter < 1; default 0.2 (±20 %). */
  jitter?: number;
}

const DEFAULT_JITTER = 0.2;

/**
 * The delay before retry `attempt` (1-based) under `policy`, with `random()` in [0, 1) as the
 * source of jitter. Never negative, never above `policy.maxMs`.
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  const jitter = policy.jitter ?? DEFAULT_JITTER;
  const jittered = exp * (1 + jitter * (2 * random() - 1));
  return Math.max(0, Math.min(policy.maxMs, Math.round(jittered)));
}

/**
 * A backoff with its own attempt counter: `next()` after each failure, `reset()` after a
 * success. Owned by one retry loop; not shared.
 */
export class Backoff {
  private failures = 0;

  constructor(
    readonly policy: BackoffPolicy,
    private readonly random: () => number = Math.random,
  ) {}

  /** Counts one more failure and returns the delay before the next attempt. */
  next(): number {
    this.failures++;
    return backoffDelay(this.failures, this.policy, this.random);
  }

  /** Back to the first delay (after a success). */
  reset(): void {
    this.failures = 0;
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.failures;
  }
}
