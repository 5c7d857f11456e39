/**
 * Atomic replacement of one file: a reader of the destination sees the
 * whole old file or the whole new file, never a partial one, and a crash at any point leaves
 * the old file or the new file in place plus, at worst, a hidden temp file that
 * `removeStaleTempFiles` deletes at the next start.
 *
 * The procedure, in two halves so that a set of files can be prepared together and then put
 * in place back to back (`commitTarget`); marked `// (n)` in the body:
 *
 * `prepareTemp` — a complete, durable temp file beside the destination:
 *  (1) if `createDirs`, create the missing parent directories with mode exactly 0755;
 *  (2) create a temp file in the SAME directory (a rename is atomic only within one file
 *      system), named `.<basename>.rld-tmp-<random>` so that globs such as `conf.d/*.conf`
 *      never pick it up, with O_CREAT|O_EXCL|O_NOFOLLOW (never reuse or follow anything);
 *  (3) write all the bytes;
 *  (4) fchown when uid/gid are given, then fchmod to exactly `mode` when the file does not
 *      have it yet (the umask narrowed the mode passed to open, or chown cleared set-id bits;
 *      fchmod comes after fchown for that reason);
 *  (5) fsync the file — after (4), so that data, owner and mode are all durable before the
 *      name points at them;
 *  (6) close;
 * `installTemp` —
 *  (7) rename over the destination;
 * `fsyncDir` —
 *  (8) fsync the directory, so that the rename itself survives a power loss.
 * `writeFileAtomic` is the three in a row for one file.
 *
 * Every call goes through `fs-calls.ts`: synchronous while no fsync is in flight (then they
 * take microseconds, less than a thread-pool round trip), through the thread pool otherwise;
 * the fsyncs, the calls that wait for the device, are always asynchronous.
 *
 * On any failure the temp file is removed and a `ReloaderError('RLD_ERR_WRITE')` names the
 * destination, the step and the OS error code. A single file bind-mounted into a container
 * (a Kubernetes `subPath` mount) cannot be renamed over (EBUSY); we say so and never fall back
 * to an in-place write, which a reader could observe half-written.
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ReloaderError } from '../errors.js';
import * as io from './fs-calls.js';

/** Infix of every temp file name; the full name is `.<basename>${TEMP_INFIX}<12 hex>`. */
export const TEMP_INFIX = '.rld-tmp-';

/** Mode of directories created by `createDirs`, whatever the umask. */
export const DIR_MODE = 0o755;

export interface WriteOptions {
  /** Exact final mode, e.g. 0o600; the umask neither narrows nor widens it. */
  mode: number;
  uid?: number;
  gid?: number;
  /** Create missing parent directories (mode 0755); otherwise a missing parent is an error. */
  createDirs: boolean;
  /** The caller has just run `ensureParentDir` for this destination: skip step (1). */
  parentReady?: boolean;
}

/** What is on disk at a destination now; `mode` holds the permission bits only (& 0o7777). */
export interface CurrentFile {
  contents: Buffer;
  mode: number;
  uid: number;
  gid: number;
}

/** A complete, fsynced temp file waiting to be renamed over `destination`. */
export interface PreparedFile {
  destination: string;
  tmp: string;
  createDirs: boolean;
}

/** The prefix every temp file of `dest` starts with. */
export function tempPrefix(dest: string): string {
  return `.${path.basename(dest)}${TEMP_INFIX}`;
}

/** Replace `dest` atomically with `data` (see the module comment for the numbered steps). */
export async function writeFileAtomic(
  dest: string,
  data: string | Buffer,
  opts: WriteOptions,
): Promise<void> {
  const prepared = await prepareTemp(dest, data, opts);
  await installTemp(prepared);
  await fsyncDirStep(prepared.destination, opts.createDirs);
}

/**
 * Steps (1)–(6): write `data` to a new temp file beside `dest`, with its final mode and owner,
 * durable on disk. Nothing is visible at `dest` yet. On failure the temp file is gone and the
 * error is RLD_ERR_WRITE naming the step.
 */
export async function prepareTemp(
  dest: string,
  data: string | Buffer,
  opts: WriteOptions,
): Promise<PreparedFile> {
  const target = path.resolve(dest);
  const dir = path.dirname(target);
  const mode = opts.mode & 0o7777;
  let step = 'create parent directory';
  let tmp: string | undefined;
  let fd: number | undefined;
  try {
    // (1)
    if (opts.parentReady !== true) await ensureParentDir(target, opts.createDirs);
    // (2)
    step = 'create temp file';
    const name = path.join(dir, tempPrefix(target) + randomBytes(6).toString('hex'));
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    fd = await io.open(name, flags, mode);
    tmp = name;
    // (3)
    step = 'write temp file';
    await io.writeAll(fd, data);
    // (4)
    if (opts.uid !== undefined || opts.gid !== undefined) {
      step = 'chown temp file';
      await io.fchown(fd, opts.uid ?? -1, opts.gid ?? -1);
    }
    // open() applied the umask; fchmod only when that narrowed the mode or a chown may have
    // cleared set-id bits (an fchmod is one more journal write on the path to the rename).
    step = 'chmod temp file';
    const chowned = opts.uid !== undefined || opts.gid !== undefined;
    if (chowned || ((await io.fstat(fd)).mode & 0o7777) !== mode) await io.fchmod(fd, mode);
    // (5)
    step = 'fsync temp file';
    await io.fsync(fd);
    // (6)
    step = 'close temp file';
    const closing = fd;
    fd = undefined;
    await io.close(closing);
    return { destination: target, tmp: name, createDirs: opts.createDirs };
  } catch (err) {
    if (fd !== undefined) await closeQuietly(fd);
    if (tmp !== undefined) await unlinkQuietly(tmp);
    if (err instanceof ReloaderError) throw err;
    throw writeError(target, step, err, opts.createDirs);
  }
}

/**
 * Step (7): rename the prepared temp file over its destination. On failure the temp file is
 * removed and the destination keeps what it had (RLD_ERR_WRITE).
 */
export async function installTemp(prepared: PreparedFile): Promise<void> {
  try {
    await io.rename(prepared.tmp, prepared.destination);
  } catch (err) {
    await unlinkQuietly(prepared.tmp);
    throw writeError(
      prepared.destination,
      'rename temp file over the destination',
      err,
      prepared.createDirs,
    );
  }
}

/** Remove a prepared temp file that will not be installed; never throws. */
export async function discardTemp(prepared: PreparedFile): Promise<void> {
  await unlinkQuietly(prepared.tmp);
}

/** Step (8) for `dest`'s directory, failures reported as RLD_ERR_WRITE of `dest`. */
export async function fsyncDirStep(dest: string, createDirs: boolean): Promise<void> {
  try {
    await fsyncDir(path.dirname(path.resolve(dest)));
  } catch (err) {
    throw writeError(path.resolve(dest), 'fsync directory', err, createDirs);
  }
}

async function closeQuietly(fd: number): Promise<void> {
  await io.close(fd).catch(() => undefined); // already closed or never valid
}

async function unlinkQuietly(file: string): Promise<void> {
  await io.unlink(file).catch(() => undefined); // gone already: nothing to clean
}

/**
 * Make sure the parent directory of `dest` exists. With `createDirs` the missing directories
 * are created and chmod'ed to exactly 0755 (under umask 077 `mkdir` alone would give 0700 and
 * a non-root app could not reach its file); without it, a missing parent is RLD_ERR_WRITE.
 * `commitTarget` calls this before taking the lock, whose lock directory lives beside `dest`.
 */
export async function ensureParentDir(dest: string, createDirs: boolean): Promise<void> {
  const target = path.resolve(dest);
  const dir = path.dirname(target);
  try {
    if (!createDirs) {
      const st = await io.stat(dir);
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      return;
    }
    const first = await io.mkdirRecursive(dir, DIR_MODE);
    if (first === undefined) return;
    // chmod every directory this call created, from `dir` up to `first`.
    for (let d = dir; ; d = path.dirname(d)) {
      await io.chmod(d, DIR_MODE);
      if (d === path.resolve(first) || path.dirname(d) === d) break;
    }
  } catch (err) {
    if (err instanceof ReloaderError) throw err;
    const step = createDirs ? 'create parent directory' : 'check parent directory';
    throw writeError(target, step, err, createDirs);
  }
}

/**
 * Read what is at `dest` now: contents, permission bits, owner. `undefined` when nothing is
 * there (ENOENT, including a dangling symlink). Anything else that is not a regular file, or
 * that cannot be read, is RLD_ERR_WRITE: we would not be able to restore it on rollback.
 * O_NONBLOCK, so that a FIFO at the destination is refused at once instead of blocking (a
 * synchronous open would block the whole process) until a writer appears.
 */
export async function readCurrent(dest: string): Promise<CurrentFile | undefined> {
  const target = path.resolve(dest);
  let fd: number;
  try {
    fd = await io.open(target, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if (osCode(err) === 'ENOENT') return undefined;
    throw writeError(target, 'read current file', err, true);
  }
  try {
    const st = await io.fstat(fd);
    if (!st.isFile()) {
      throw new ReloaderError(
        'RLD_ERR_WRITE',
        `cannot write ${target}: it exists and is not a regular file`,
        { details: { destination: target, step: 'read current file' } },
      );
    }
    const contents = await io.readAll(fd);
    return { contents, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  } catch (err) {
    if (err instanceof ReloaderError) throw err;
    throw writeError(target, 'read current file', err, true);
  } finally {
    await closeQuietly(fd);
  }
}

/**
 * Delete the temp files (`.<basename>.rld-tmp-*`) that a crashed run left next to each
 * destination; returns how many were removed (start-up uses it through removeCrashLeftovers,
 * under the lock, with olderThanMs 0). A temp file younger
 * than `olderThanMs` (default 10 s, the lock's stale time) is left alone: it may belong to
 * another reloader process writing right now (an init container racing the sidecar).
 * A missing directory is not an error; any other failure is RLD_ERR_WRITE.
 */
export async function removeStaleTempFiles(
  destinations: string[],
  opts: { olderThanMs?: number } = {},
): Promise<number> {
  const olderThanMs = opts.olderThanMs ?? 10_000;
  const byDir = new Map<string, Set<string>>();
  for (const dest of destinations) {
    const target = path.resolve(dest);
    const dir = path.dirname(target);
    const prefixes = byDir.get(dir) ?? new Set<string>();
    prefixes.add(tempPrefix(target));
    byDir.set(dir, prefixes);
  }
  let removed = 0;
  const now = Date.now();
  for (const [dir, prefixes] of byDir) {
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch (err) {
      const code = osCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw writeError(dir, 'list directory for stale temp files', err, true);
    }
    for (const name of names) {
      if (![...prefixes].some((p) => name.startsWith(p))) continue;
      const file = path.join(dir, name);
      try {
        const st = await fsp.lstat(file);
        if (now - st.mtimeMs < olderThanMs) continue;
        await fsp.unlink(file);
        removed += 1;
      } catch (err) {
        if (osCode(err) === 'ENOENT') continue;
        throw writeError(file, 'remove stale temp file', err, true);
      }
    }
  }
  return removed;
}

/** fsync a directory; file systems that cannot (EINVAL) are tolerated. */
export async function fsyncDir(dir: string): Promise<void> {
  const fd = await io.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await io.fsync(fd);
  } catch (err) {
    if (osCode(err) !== 'EINVAL') throw err;
  } finally {
    await closeQuietly(fd);
  }
}

/** The `code` of a Node.js system error (`EACCES`, ...), if any. */
export function osCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A hint for the operator per OS code; the message never holds file contents. */
function hint(code: string | undefined, createDirs: boolean): string {
  switch (code) {
    case 'EBUSY':
      return (
        ': the destination is a mount point — a single file bind-mounted into the container ' +
        '(e.g. a Kubernetes subPath or single-file volume mount) cannot be replaced by rename; ' +
        'mount its directory instead (no in-place fallback: a reader could see a partial file)'
      );
    case 'EXDEV':
      return ': the temp file and the destination are on different file systems (a bind-mounted file?)';
    case 'EACCES':
    case 'EPERM':
      return ': permission denied (directory not writable, file immutable, or chown not allowed)';
    case 'EROFS':
      return ': read-only file system';
    case 'ENOSPC':
      return ': no space left on device';
    case 'ENOENT':
      return createDirs
        ? ': a path component does not exist'
        : ': the parent directory does not exist (createDirs is false)';
    case 'ENOTDIR':
      return ': a component of the parent path is not a directory';
    default:
      return '';
  }
}

function writeError(dest: string, step: string, err: unknown, createDirs: boolean): ReloaderError {
  const code = osCode(err);
  const message = `cannot write ${dest}: ${step} failed${code ? ` (${code})` : ''}${hint(code, createDirs)}`;
  return new ReloaderError('RLD_ERR_WRITE', message, {
    cause: err,
    details: { destination: dest, step, osCode: code },
  });
}
