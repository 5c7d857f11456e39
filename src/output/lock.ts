/**
 * Per-destination locks, so that two reloader processes sharing a volume — an
 * init container and the sidecar racing at pod start, or two replicas of a misconfigured
 * deployment — never interleave the files of one set, and never run a `check` against a set
 * the other process is half-way through.
 *
 * The lock is proper-lockfile's: an atomic `mkdir` of `.<basename>.rld-lock` beside the
 * destination (`lockPathOf`; or `lockfilePath`) whose mtime the holder refreshes every
 * `staleMs / 2`; a lock not refreshed for `staleMs` is broken by the next taker (the last resort,
 * see below). `realpath: false` because the destination may not exist yet. The lock directory
 * lives beside the destination, so the parent directory must exist before locking
 * (`commitTarget` creates it first).
 *
 * The name is hidden, like the temp files (`.<basename>.rld-tmp-*`), because the lock is held
 * while `check` runs: proper-lockfile's default `<destination>.lock` is matched by globs such
 * as nginx's `include conf.d/*;`, and `nginx -t` then failed on it ("pread() … Is a
 * directory"), so the check of such a target failed on every commit.
 *
 * A lock whose holder is dead is broken at once, not after the stale time: the taker writes
 * its identity into the lock directory (`owner`, see `holder.ts`), and a process that finds
 * the lock taken judges that holder against the living processes. A kubelet-restarted sidecar
 * thus takes over the locks its SIGKILLed predecessor left within milliseconds. Breaking is
 * serialised by a second directory (`<lock>.break`, atomic `mkdir`): the breaker re-reads the
 * owner under it and removes the lock only if it is still the one judged dead, so two
 * restarting processes never break a lock the other has just taken. A lock directory without
 * an owner file is one whose taker was killed between its `mkdir` and the owner file's write
 * once it is `OWNERLESS_GRACE_MS` old. Only when the holder cannot be judged (another host on
 * a network volume) does the stale time decide.
 *
 * Waiting is our own loop, not proper-lockfile's `retries`: the reloader's `Backoff` (25 ms
 * doubling to 250 ms) until a deadline, so the caller states the longest wait in milliseconds.
 *
 * proper-lockfile is given `lockFs` (its documented `fs` option) with `mkdir` writing the owner
 * file and `rmdir` removing it: its few calls (mkdir + stat to take, rmdir to release, stat + utimes every `staleMs / 2` to refresh) follow the rule of
 * `fs-calls.ts` — synchronous while no fsync is in flight, where graceful-fs paid a
 * thread-pool round trip for each (≈ 0.9 ms per commit measured in `npm run bench`, on the
 * path of every webhook). It is one object for the process, not proper-lockfile's `lockSync`
 * adapter, which copies the whole fs module on every call and so loses the mtime-precision
 * probe proper-lockfile caches on the fs object (an extra utimes + stat per lock). The waits
 * between attempts are timers: a lock held by someone else never blocks the event loop.
 */
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import * as path from 'node:path';
import lockfile from 'proper-lockfile';
import { ReloaderError } from '../errors.js';
import { Backoff, type BackoffPolicy } from '../util/backoff.js';
import { osCode } from './atomic-write.js';
import { lockFs, quiet } from './fs-calls.js';
import { holderState, listenForLiveness, ownerRecord, parseOwner } from './holder.js';

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

/** Waits between attempts on a lock held by a live process. */
export const LOCK_WAIT_BACKOFF: BackoffPolicy = { baseMs: 25, maxMs: 250 };

/** The file in a lock directory that names its holder. */
export const OWNER_FILE = 'owner';

/**
 * Readable by all: it holds no secret (pid, start time, boot id, host name, namespaces), and a
 * process of another user sharing the volume must read it to judge the holder.
 */
const OWNER_MODE = 0o644;

/**
 * A `.break` directory older than this was left by a breaker that died (breaking is a few
 * synchronous calls); it is removed.
 */
const BREAK_STALE_MS = 500;

/**
 * A lock directory without an owner file older than this was left by a taker killed between
 * its `mkdir` and the owner file's write (microseconds apart, or one thread-pool round trip).
 */
export const OWNERLESS_GRACE_MS = 1000;

type Callback = (err: NodeJS.ErrnoException | null) => void;

/**
 * proper-lockfile's fs: a lock directory is created with its owner file in it, and the owner
 * file goes before the directory is removed (by its holder, or by proper-lockfile breaking a
 * stale lock). The owner file is written synchronously while the file system is quiet, like
 * every other lock call (`fs-calls.ts`).
 */
const ownedLockFs = {
  ...lockFs,
  mkdir: (dir: string, cb: Callback) =>
    lockFs.mkdir(dir, (err) => {
      if (err) return cb(err);
      const owner = path.join(dir, OWNER_FILE);
      const done = (werr: NodeJS.ErrnoException | null) => {
        if (!werr) return cb(null);
        // ENOENT: an ownerless directory was broken under us; EEXIST makes proper-lockfile
        // look again (and take it, now that it is gone).
        if (werr.code === 'ENOENT') return cb(Object.assign(werr, { code: 'EEXIST' }));
        lockFs.rmdir(dir, () => cb(werr));
      };
      if (!quiet()) return fs.writeFile(owner, ownerRecord(), { mode: OWNER_MODE }, done);
      try {
        fs.writeFileSync(owner, ownerRecord(), { mode: OWNER_MODE });
      } catch (werr) {
        return done(werr as NodeJS.ErrnoException);
      }
      done(null);
    }),
  rmdir: (dir: string, cb: Callback) => {
    const owner = path.join(dir, OWNER_FILE);
    const rm = (err: NodeJS.ErrnoException | null) => {
      if (err && (err.code === 'EACCES' || err.code === 'EPERM')) {
        // A lock directory of another user that we may not empty (see `setAside`).
        try {
          setAside(dir);
        } catch (aerr) {
          return cb(aerr as NodeJS.ErrnoException);
        }
        return cb(null);
      }
      if (err && err.code !== 'ENOENT' && err.code !== 'ENOTDIR') return cb(err);
      lockFs.rmdir(dir, cb);
    };
    if (!quiet()) return fs.unlink(owner, rm);
    try {
      fs.unlinkSync(owner);
    } catch (err) {
      return rm(err as NodeJS.ErrnoException);
    }
    rm(null);
  },
};

/**
 * The owner file's text; undefined when there is none (ENOENT), null when it cannot be read
 * (another user's lock directory that we may not enter): then the holder is not judged.
 */
function readOwnerText(lockDir: string): string | undefined | null {
  try {
    return fs.readFileSync(path.join(lockDir, OWNER_FILE), 'utf8');
  } catch (err) {
    return osCode(err) === 'ENOENT' ? undefined : null;
  }
}

let setAsideCount = 0;

/**
 * Remove a lock directory we may not empty: one created by another user whose mode (umask)
 * does not let us delete its owner file. Renaming it within its parent needs only the
 * parent's write permission, as removing an empty lock directory does; the renamed directory
 * (`<lock>.dead-<pid>-<n>`, hidden) stays behind.
 */
function setAside(lockDir: string): void {
  setAsideCount += 1;
  fs.renameSync(lockDir, `${lockDir}.dead-${process.pid}-${setAsideCount}`);
}

/**
 * Break `lockDir` if its holder is certainly dead; true when it was broken (or is gone), so the
 * caller tries again at once. Serialised by `<lockDir>.break` (see the module comment).
 */
export async function breakIfHolderDead(lockDir: string): Promise<boolean> {
  const text = readOwnerText(lockDir);
  if (text === null) return false; // not ours to judge: the stale time decides
  const owner = text === undefined ? undefined : parseOwner(text);
  if (owner === undefined) {
    // No owner file, or one cut short by a kill between its open and its write.
    const mtime = fs.statSync(lockDir, { throwIfNoEntry: false })?.mtimeMs;
    if (mtime === undefined) return true;
    if (Date.now() - mtime < OWNERLESS_GRACE_MS) return false;
  } else if ((await holderState(owner)) !== 'dead') return false;
  const breakDir = `${lockDir}.break`;
  try {
    fs.mkdirSync(breakDir);
  } catch (err) {
    if (osCode(err) !== 'EEXIST') return false;
    const age = Date.now() - (fs.statSync(breakDir, { throwIfNoEntry: false })?.mtimeMs ?? 0);
    if (age > BREAK_STALE_MS) fs.rmSync(breakDir, { recursive: true, force: true });
    return false;
  }
  try {
    if (readOwnerText(lockDir) !== text) return false; // taken again meanwhile: not ours
    // Ownerless: a plain rmdir, which fails (ENOTEMPTY) if the owner file appeared meanwhile;
    // an owner file cut short stays as it was (the comparison above) and is removed.
    if (text !== undefined) {
      try {
        fs.rmSync(path.join(lockDir, OWNER_FILE), { force: true });
      } catch (err) {
        const code = osCode(err);
        if (code !== 'EACCES' && code !== 'EPERM') throw err;
        setAside(lockDir);
        return true;
      }
    }
    fs.rmdirSync(lockDir);
    return true;
  } catch (err) {
    return osCode(err) === 'ENOENT';
  } finally {
    fs.rmSync(breakDir, { recursive: true, force: true });
  }
}

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
  const backoff = new Backoff(LOCK_WAIT_BACKOFF);
  const lockDir = opts.lockfilePath ?? lockPathOf(dest);
  await listenForLiveness();
  for (;;) {
    try {
      const release = await lockfile.lock(dest, {
        fs: ownedLockFs,
        realpath: false,
        stale: opts.staleMs ?? DEFAULT_STALE_MS,
        retries: 0,
        lockfilePath: lockDir,
        // The default throws from a timer, which would crash the daemon.
        onCompromised: (err: Error) => opts.onCompromised?.(err, dest),
      });
      return async () => {
        await release().catch(() => undefined);
      };
    } catch (err) {
      const code = osCode(err);
      if (code === 'ELOCKED' && (await breakIfHolderDead(lockDir))) continue;
      if (code === 'ELOCKED' && Date.now() < deadline) {
        await sleep(Math.min(backoff.next(), Math.max(1, deadline - Date.now())));
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
