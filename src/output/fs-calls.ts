/**
 * The file-system calls of the commit path (atomic writes, read-back, locks), each run either
 * as a synchronous system call or through libuv's thread pool — whichever is cheaper now.
 *
 * Why both. The asynchronous API pays a thread-pool round trip per call (≈ 0.1–0.3 ms measured
 * here, a dozen calls per file), which was most of the reloader's own share of a webhook →
 * file latency. A synchronous open/write/fchmod/rename/mkdir of a config-sized file on a local
 * or `emptyDir` volume takes microseconds — but only while the file system is quiet: on ext4
 * any call that changes metadata may wait for the journal while an fsync is committing it
 * (measured: a lock's mkdir blocked ≈ 2.3 ms each while 500 targets were committing at
 * start, freezing the event loop, webhook answers included).
 *
 * So the rule: while no fsync of this process is in flight, calls run synchronously (one
 * event, one target — the common case); while one is, they go through the thread pool. The
 * fsyncs themselves — the calls that wait for the device — are always asynchronous, and are
 * counted here (`fsync`) so the rule can see them.
 */
import * as fs from 'node:fs';
import { promisify } from 'node:util';

let fsyncsInFlight = 0;

/** True while no fsync started through this module is still running. */
export function quiet(): boolean {
  return fsyncsInFlight === 0;
}

/** A call that runs `sync` right now while the file system is quiet, else `pooled`. */
function dual<A extends unknown[], R>(
  sync: (...args: A) => R,
  pooled: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return (...args) => {
    if (!quiet()) return pooled(...args);
    try {
      return Promise.resolve(sync(...args));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  };
}

const fsp = fs.promises;
const viaPool = {
  open: promisify(fs.open),
  writeFile: promisify(fs.writeFile),
  fstat: promisify(fs.fstat),
  readFile: promisify(fs.readFile),
  fsync: promisify(fs.fsync),
};

export const open = dual(
  (path: string, flags: number, mode?: number) => fs.openSync(path, flags, mode),
  (path: string, flags: number, mode?: number) => viaPool.open(path, flags, mode),
);
/** Write all of `data` at the file's current position (partial writes are continued). */
export const writeAll = dual(
  (fd: number, data: string | Buffer) => fs.writeFileSync(fd, data),
  (fd: number, data: string | Buffer) => viaPool.writeFile(fd, data),
);
export const fchown = dual(fs.fchownSync, promisify(fs.fchown));
export const fchmod = dual(fs.fchmodSync, promisify(fs.fchmod));
export const close = dual(fs.closeSync, promisify(fs.close));
export const rename = dual(fs.renameSync, fsp.rename);
export const unlink = dual(fs.unlinkSync, fsp.unlink);
export const chmod = dual(fs.chmodSync, fsp.chmod);
export const stat = dual(
  (path: string) => fs.statSync(path),
  (path: string) => fsp.stat(path),
);
export const fstat = dual(
  (fd: number) => fs.fstatSync(fd),
  (fd: number) => viaPool.fstat(fd),
);
export const mkdirRecursive = dual(
  (path: string, mode: number) => fs.mkdirSync(path, { recursive: true, mode }),
  (path: string, mode: number) => fsp.mkdir(path, { recursive: true, mode }),
);
/** The rest of the file from the current position. */
export const readAll = dual(
  (fd: number) => fs.readFileSync(fd),
  (fd: number) => viaPool.readFile(fd),
);

/** fsync, always asynchronous, and counted: while it runs the file system is not quiet. */
export async function fsync(fd: number): Promise<void> {
  fsyncsInFlight += 1;
  try {
    await viaPool.fsync(fd);
  } finally {
    fsyncsInFlight -= 1;
  }
}

type Callback<T> = (err: NodeJS.ErrnoException | null, value?: T) => void;

/** The callback form of `dual`, for proper-lockfile's `fs` option (the callback comes last). */
function dualCb<A extends unknown[], T>(
  sync: (...args: A) => T,
  pooled: (...args: [...A, Callback<T>]) => void,
): (...args: [...A, Callback<T>]) => void {
  return (...all) => {
    if (!quiet()) {
      pooled(...all);
      return;
    }
    const cb = all[all.length - 1] as Callback<T>;
    let value: T;
    try {
      value = sync(...(all.slice(0, -1) as A));
    } catch (err) {
      cb(err as NodeJS.ErrnoException);
      return;
    }
    cb(null, value);
  };
}

/**
 * The callback-style fs that proper-lockfile calls (mkdir + stat to take a lock, rmdir to
 * release it, stat + utimes to refresh it), under the same rule. One object for the process:
 * proper-lockfile caches its mtime-precision probe on the fs object it is given.
 */
export const lockFs = {
  mkdir: dualCb(
    (path: string) => fs.mkdirSync(path),
    (path: string, cb: Callback<void>) => fs.mkdir(path, (err) => cb(err)),
  ),
  rmdir: dualCb(
    (path: string) => fs.rmdirSync(path),
    (path: string, cb: Callback<void>) => fs.rmdir(path, (err) => cb(err)),
  ),
  stat: dualCb(
    (path: string) => fs.statSync(path),
    (path: string, cb: Callback<fs.Stats>) => fs.stat(path, cb),
  ),
  realpath: dualCb(
    (path: string) => fs.realpathSync(path),
    (path: string, cb: Callback<string>) => fs.realpath(path, cb),
  ),
  utimes: dualCb(
    (path: string, atime: Date, mtime: Date) => fs.utimesSync(path, atime, mtime),
    (path: string, atime: Date, mtime: Date, cb: Callback<void>) =>
      fs.utimes(path, atime, mtime, (err) => cb(err)),
  ),
};
