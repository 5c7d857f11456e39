/**
 * Per-destination locks, so that two reloader processes sharing a volume — an
 * init container and the sidecar racing at pod start, or two replicas of a misconfigured
 * deployment — never interleave the files of one set, and never run a `check` against a set
 * the other process is half-way through.
 *
 * The lock is proper-lockfile's: an atomic `mkdir` of `.<basename>.rld-lock` beside the
 * destination (`lockPathOf`; or `lockfilePath`) whose mtime the holder refreshes every
 * `staleMs / 2`; a lock not refreshed for `staleMs` (its holder was SIGKILLed) is broken by the
 * next taker. `realpath: false` because the destination may not exist yet. The lock directory
 * lives beside the destination, so the parent directory must exist before locking
 * (`commitTarget` creates it first).
 *
 * The name is hidden, like the temp files (`.<basename>.rld-tmp-*`), because the lock is held
 * while `check` runs: proper-lockfile's default `<destination>.lock` is matched by globs such
 * as nginx's `include conf.d/*;`, and `nginx -t` then failed on it ("pread() … Is a
 * directory"), so the check of such a target failed on every commit.
 *
 * Waiting is our own loop, not proper-lockfile's `retries`: short sleeps (25 ms doubling to
 * 250 ms) until a deadline, so the caller states the longest wait in milliseconds.
 *
 * proper-lockfile is given `lockFs` (its documented `fs` option): its few calls (mkdir + stat
 * to take, rmdir to release, stat + utimes every `staleMs / 2` to refresh) follow the rule of
 * `fs-calls.ts` — synchronous while no fsync is in flight, where graceful-fs paid a
 * thread-pool round trip for each (≈ 0.9 ms per commit measured in `npm run bench`, on the
 * path of every webhook). It is one object for the process, not proper-lockfile's `lockSync`
 * adapter, which copies the whole fs module on every call and so loses the mtime-precision
 * probe proper-lockfile caches on the fs object (an extra utimes + stat per lock). The waits
 * between attempts are timers: a lock held by someone else never blocks the event loop.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as path from 'node:path';
import lockfile from 'proper-lockfile';
import { ReloaderError } from '../errors.js';
import { osCode } from './atomic-write.js';
import { lockFs } from './fs-calls.js';

export interface LockOptions {
  /** A lock not refreshed for this long is considered abandoned and broken (min 2000). */
  staleMs?: number;
  /** Longest time to wait for a lock held by someone else before RLD_ERR_LOCK. */
  waitMs?: number;
  /** Where the lock lives; default `lockPathOf(destination)`. Only for a single destination. */
  lockfilePath?: string;
  /** Called when a held lock was taken away (we stalled past `staleMs`, or it was deleted). */
  onCompromised?: (err: Error, destination: string) => void;
}

/** Releases a lock; never throws (a lock that is already gone is fine). */
export type Release = () => Promise<void>;

export const DEFAULT_STALE_MS = 10_000;
export const DEFAULT_WAIT_MS = 30_000;

/** Suffix of every lock directory: `.<basename>${LOCK_SUFFIX}`. */
export const LOCK_SUFFIX = '.rld-lock';

/** The lock directory of `destination`: hidden, beside it (see the module comment). */
export function lockPathOf(destination: string): string {
  const dest = path.resolve(destination);
  return path.join(path.dirname(dest), `.${path.basename(dest)}${LOCK_SUFFIX}`);
}

/**
 * Take the lock on one destination, waiting up to `waitMs` while another holder has it.
 * Failure (timeout, or the lock directory cannot be created: missing parent, read-only
 * file system) is `ReloaderError('RLD_ERR_LOCK')` naming the destination and the OS code.
 */
export async function acquireLock(destination: string, opts: LockOptions = {}): Promise<Release> {
  const dest = path.resolve(destination);
  const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
  const deadline = Date.now() + waitMs;
  let delay = 25;
  for (;;) {
    try {
      const release = await lockfile.lock(dest, {
        fs: lockFs,
        realpath: false,
        stale: opts.staleMs ?? DEFAULT_STALE_MS,
        retries: 0,
        lockfilePath: opts.lockfilePath ?? lockPathOf(dest),
        // The default throws from a timer, which would crash the daemon.
        onCompromised: (err: Error) => opts.onCompromised?.(err, dest),
      });
      return async () => {
        await release().catch(() => undefined);
      };
    } catch (err) {
      const code = osCode(err);
      if (code === 'ELOCKED' && Date.now() < deadline) {
        await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
        delay = Math.min(delay * 2, 250);
        continue;
      }
      const why =
        code === 'ELOCKED'
          ? `still held by another process after ${waitMs} ms`
          : `the lock could not be created (${code ?? 'unknown error'})`;
      throw new ReloaderError('RLD_ERR_LOCK', `cannot lock ${dest}: ${why}`, {
        cause: err,
        details: { destination: dest, osCode: code, waitMs },
      });
    }
  }
}

/**
 * Run `fn` while holding the locks of every destination. Locks are taken one at a time in
 * sorted order (two processes locking overlapping sets in the same order cannot deadlock)
 * and released in reverse order in a `finally`, whatever `fn` does. Duplicates are locked once.
 */
export async function withLocks<T>(
  destinations: string[],
  opts: Omit<LockOptions, 'lockfilePath'>,
  fn: () => Promise<T>,
): Promise<T> {
  const sorted = [...new Set(destinations.map((d) => path.resolve(d)))].sort();
  const held: Release[] = [];
  try {
    for (const dest of sorted) held.push(await acquireLock(dest, opts));
    return await fn();
  } finally {
    for (const release of held.reverse()) await release();
  }
}
