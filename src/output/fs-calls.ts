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

/** `sync()` right now when the file system is quiet, else `async()`. */
function pick<T>(sync: () => T, async: () => Promise<T>): Promise<T> {
  if (!quiet()) return async();
  try {
    return Promise.resolve(sync());
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

const p = {
  open: promisify(fs.open),
  writeFile: promisify(fs.writeFile),
  fchown: promisify(fs.fchown),
  fchmod: promisify(fs.fchmod),
  fsync: promisify(fs.fsync),
  close: promisify(fs.close),
  rename: promisify(fs.rename),
  unlink: promisify(fs.unlink),
  stat: promisify(fs.stat),
  fstat: promisify(fs.fstat),
  mkdir: promisify(fs.mkdir),
  chmod: promisify(fs.chmod),
  readFile: promisify(fs.readFile),
};

export const open = (path: string, flags: number, mode?: number): Promise<number> =>
  pick(
    () => fs.openSync(path, flags, mode),
    () => p.open(path, flags, mode),
  );
/** Write all of `data` at the file's current position (partial writes are continued). */
export const writeAll = (fd: number, data: string | Buffer): Promise<void> =>
  pick(
    () => fs.writeFileSync(fd, data),
    () => p.writeFile(fd, data),
  );
export const fchown = (fd: number, uid: number, gid: number): Promise<void> =>
  pick(
    () => fs.fchownSync(fd, uid, gid),
    () => p.fchown(fd, uid, gid),
  );
export const fchmod = (fd: number, mode: number): Promise<void> =>
  pick(
    () => fs.fchmodSync(fd, mode),
    () => p.fchmod(fd, mode),
  );
export const close = (fd: number): Promise<void> =>
  pick(
    () => fs.closeSync(fd),
    () => p.close(fd),
  );
export const rename = (from: string, to: string): Promise<void> =>
  pick(
    () => fs.renameSync(from, to),
    () => p.rename(from, to),
  );
export const unlink = (path: string): Promise<void> =>
  pick(
    () => fs.unlinkSync(path),
    () => p.unlink(path),
  );
export const stat = (path: string): Promise<fs.Stats> =>
  pick(
    () => fs.statSync(path),
    () => p.stat(path),
  );
export const fstat = (fd: number): Promise<fs.Stats> =>
  pick(
    () => fs.fstatSync(fd),
    () => p.fstat(fd),
  );
export const mkdirRecursive = (path: string, mode: number): Promise<string | undefined> =>
  pick(
    () => fs.mkdirSync(path, { recursive: true, mode }),
    () => p.mkdir(path, { recursive: true, mode }),
  );
export const chmod = (path: string, mode: number): Promise<void> =>
  pick(
    () => fs.chmodSync(path, mode),
    () => p.chmod(path, mode),
  );
/** The rest of the file from the current position. */
export const readAll = (fd: number): Promise<Buffer> =>
  pick(
    () => fs.readFileSync(fd),
    () => p.readFile(fd),
  );

/** fsync, always asynchronous, and counted: while it runs the file system is not quiet. */
export async function fsync(fd: number): Promise<void> {
  fsyncsInFlight += 1;
  try {
    await p.fsync(fd);
  } finally {
    fsyncsInFlight -= 1;
  }
}

type Callback<T> = (err: NodeJS.ErrnoException | null, value?: T) => void;

/** Node-style callback version of `pick`, for proper-lockfile's `fs` option. */
function pickCb<T>(sync: () => T, async: (cb: Callback<T>) => void, cb: Callback<T>): void {
  if (!quiet()) {
    async(cb);
    return;
  }
  let value: T;
  try {
    value = sync();
  } catch (err) {
    cb(err as NodeJS.ErrnoException);
    return;
  }
  cb(null, value);
}

/**
 * The callback-style fs that proper-lockfile calls (mkdir + stat to take a lock, rmdir to
 * release it, stat + utimes to refresh it), under the same rule. One object for the process:
 * proper-lockfile caches its mtime-precision probe on the fs object it is given.
 */
export const lockFs = {
  mkdir: (path: string, cb: Callback<void>): void =>
    pickCb(
      () => fs.mkdirSync(path),
      (done) => fs.mkdir(path, (err) => done(err)),
      cb,
    ),
  rmdir: (path: string, cb: Callback<void>): void =>
    pickCb(
      () => fs.rmdirSync(path),
      (done) => fs.rmdir(path, (err) => done(err)),
      cb,
    ),
  stat: (path: string, cb: Callback<fs.Stats>): void =>
    pickCb(
      () => fs.statSync(path),
      (done) => fs.stat(path, done),
      cb,
    ),
  realpath: (path: string, cb: Callback<string>): void =>
    pickCb(
      () => fs.realpathSync(path),
      (done) => fs.realpath(path, done),
      cb,
    ),
  utimes: (path: string, atime: Date, mtime: Date, cb: Callback<void>): void =>
    pickCb(
      () => fs.utimesSync(path, atime, mtime),
      (done) => fs.utimes(path, atime, mtime, (err) => done(err)),
      cb,
    ),
};
