/**
 * `atomic: set` — the files of a target swapped as a whole, the way the kubelet writes a
 * Secret volume. In the target's one directory D:
 *
 *   D/..2026_12_03_07_01_02.5f3a9c1e/   a hidden data directory holding one version of every file
 *   D/..data -> ..2026_12_03_07_01_02.5f3a9c1e
 *   D/tls.crt -> ..data/tls.crt          each destination is a symlink into ..data
 *   D/tls.key -> ..data/tls.key
 *
 * A new version is a new data directory, and going live is ONE `rename` of a `..data` symlink:
 * a reader opening any destination, and a crash at any instant, finds the whole old set or the
 * whole new set — never a certificate of one version next to the key of another. Rolling back
 * is the same single rename, to the old directory.
 *
 * `commitSet`, marked `// (n)` in the body:
 *
 *  (1) every destination is in D (the spec refuses anything else; checked again here);
 *  (2) lock D/..data (one lock for the whole set);
 *  (3) remove crash leftovers: hidden data directories that ..data does not name, a stale
 *      `..data_tmp` and link temp files — only a killed run leaves them, and the lock proves no
 *      live writer owns them (the start-up clean-up, `removeCrashLeftovers`, does the same);
 *  (4) read the current set through the destinations (whatever they are now: symlinks into
 *      ..data, or plain files of a target that was not a set before);
 *  (5) if ..data exists, every destination is its symlink into ..data and every file already
 *      has the rendered bytes, mode and owner: return `{ written: [] }` (no write, no reload);
 *  (6) when there is no ..data yet (first set commit), make the current files a data
 *      directory of their own and swap it in, then turn every destination into its symlink
 *      (each link resolves to the same bytes as the plain file it replaces, so a reader sees no
 *      change): from here on, a rollback is always one swap back;
 *  (7) write the new data directory `..<UTC time>.<random>` (mode 0755): every file complete,
 *      with its mode and owner, fsynced, then the directory fsynced;
 *  (8) create the symlink `..data_tmp` -> new directory and rename it over `..data` — the one
 *      step that makes the new set live — then fsync D;
 *  (9) run `check`; if it fails, swap back (8) to the old directory, remove the new one and throw
 *      RLD_ERR_CHECK;
 * (10) release the lock. The caller then either `settle()`s (removes the old data directory:
 *      after the reload, and after `verify` when there is one) or `rollback()`s (one swap back to
 *      the old directory, the new one removed).
 *
 * A destination that is itself a directory or a FIFO is refused (RLD_ERR_WRITE) as in the
 * per-file commit. Files of the previous set that are no longer in the target are left in their
 * data directory only until `settle`; their destination symlinks are left alone.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { FileSpec, TargetSpec } from '../config/types.js';
import { ReloaderError } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  DIR_MODE,
  ensureParentDir,
  fsyncDir,
  installTemp,
  osCode,
  prepareTemp,
  readCurrent,
  type CurrentFile,
} from './atomic-write.js';
import { withLocks, type LockOptions } from './lock.js';

/** The symlink that names the live data directory. */
export const DATA_LINK = '..data';
const DATA_TMP = '..data_tmp';
/** Data directories: `..` + UTC time + `.` + random hex. */
const DATA_DIR = /^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{3}\.[0-9a-f]{8}$/;
const LINK_TMP_INFIX = '.rld-link-';

export interface SetFile {
  spec: FileSpec;
  data: Buffer;
}

export interface SetCommit {
  written: string[];
  unchanged: string[];
  /** One swap back to the previous data directory; the new one is removed. Throws RLD_ERR_WRITE. */
  rollback(): Promise<void>;
  /** The new set stays: remove the previous data directory. */
  settle(): Promise<void>;
}

function dataDirName(now = new Date()): string {
  const iso = now.toISOString(); // 2026-12-03T07:01:02.345Z
  const stamp = `${iso.slice(0, 10).replace(/-/g, '_')}_${iso.slice(11, 19).replace(/:/g, '_')}.${iso.slice(20, 23)}`;
  return `..${stamp}.${randomBytes(4).toString('hex')}`;
}

function setError(dir: string, step: string, err: unknown): ReloaderError {
  if (err instanceof ReloaderError) return err;
  const code = osCode(err) ?? 'EIO';
  return new ReloaderError(
    'RLD_ERR_WRITE',
    `cannot write the file set in ${dir}: ${step} (${code})`,
    {
      cause: err,
      details: { directory: dir, step, code },
    },
  );
}

async function readLinkOrUndefined(file: string): Promise<string | undefined> {
  try {
    return await fsp.readlink(file);
  } catch (err) {
    const code = osCode(err);
    if (code === 'ENOENT' || code === 'EINVAL') return undefined; // absent, or not a symlink
    throw err;
  }
}

/** Point `link` at `target` atomically: a temp symlink renamed over it. */
async function swapLink(dir: string, link: string, target: string): Promise<void> {
  const tmp = path.join(
    dir,
    link === DATA_LINK ? DATA_TMP : `.${link}${LINK_TMP_INFIX}${randomBytes(4).toString('hex')}`,
  );
  await fsp.rm(tmp, { force: true });
  await fsp.symlink(target, tmp);
  try {
    await fsp.rename(tmp, path.join(dir, link));
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/** Step (3): remove what a killed run left in `dir`; `live` is the data directory ..data names. */
export async function removeSetLeftovers(dir: string, live: string | undefined): Promise<number> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if (osCode(err) === 'ENOENT') return 0;
    throw err;
  }
  let removed = 0;
  for (const name of names) {
    const stale =
      name === DATA_TMP || name.includes(LINK_TMP_INFIX) || (DATA_DIR.test(name) && name !== live);
    if (!stale) continue;
    await fsp.rm(path.join(dir, name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}

/** Step (7): a complete, durable data directory holding `files` (by base name). */
async function writeDataDir(dir: string, name: string, files: readonly SetFile[]): Promise<void> {
  const full = path.join(dir, name);
  await fsp.mkdir(full, { mode: DIR_MODE });
  await fsp.chmod(full, DIR_MODE);
  await Promise.all(
    files.map(async (f) => {
      const dest = path.join(full, path.basename(f.spec.destination));
      const prepared = await prepareTemp(dest, f.data, {
        mode: f.spec.mode,
        ...(f.spec.uid !== undefined ? { uid: f.spec.uid } : {}),
        ...(f.spec.gid !== undefined ? { gid: f.spec.gid } : {}),
        createDirs: false,
        parentReady: true,
      });
      await installTemp(prepared);
    }),
  );
  await fsyncDir(full);
}

function sameFile(cur: CurrentFile | undefined, f: SetFile): boolean {
  if (cur === undefined) return false;
  if (cur.mode !== (f.spec.mode & 0o7777) || !cur.contents.equals(f.data)) return false;
  if (f.spec.uid !== undefined && cur.uid !== f.spec.uid) return false;
  if (f.spec.gid !== undefined && cur.gid !== f.spec.gid) return false;
  return true;
}

/**
 * Commit `files` of `target` as one set in their directory; see the module comment for the
 * numbered algorithm. `check` runs with the new set live; a failure (its error, thrown by
 * `check`) swaps the old set back before it propagates.
 */
export async function commitSet(
  target: TargetSpec,
  files: readonly SetFile[],
  opts: { logger: Logger; lock: Omit<LockOptions, 'lockfilePath'>; check?: () => Promise<void> },
): Promise<SetCommit> {
  const destinations = files.map((f) => path.resolve(f.spec.destination));
  const dir = path.dirname(destinations[0] ?? '');
  // (1)
  if (destinations.some((d) => path.dirname(d) !== dir)) {
    throw new ReloaderError(
      'RLD_ERR_INTERNAL',
      `target "${target.name}": atomic: set needs every file in one directory`,
      { details: { target: target.name } },
    );
  }
  await ensureParentDir(destinations[0] as string, files[0]?.spec.createDirs ?? true);
  let step = 'lock';
  // (2)
  return withLocks([path.join(dir, DATA_LINK)], opts.lock, async () => {
    try {
      step = 'read ..data';
      let live = await readLinkOrUndefined(path.join(dir, DATA_LINK));
      // (3)
      step = 'remove crash leftovers';
      const removed = await removeSetLeftovers(dir, live);
      if (removed > 0)
        opts.logger.warn({ directory: dir, removed }, 'removed what a crash left of a file set');
      // (4)
      step = 'read the current files';
      const current = await Promise.all(destinations.map((d) => readCurrent(d)));
      const links = await Promise.all(destinations.map((d) => readLinkOrUndefined(d)));
      const linked = (i: number): boolean =>
        links[i] === `${DATA_LINK}/${path.basename(destinations[i] as string)}`;
      const changed = files.filter((f, i) => !(live && linked(i) && sameFile(current[i], f)));
      const unchanged = destinations.filter((_, i) => !changed.includes(files[i] as SetFile));
      // (5)
      if (live !== undefined && changed.length === 0) {
        return {
          written: [],
          unchanged,
          rollback: async () => undefined,
          settle: async () => undefined,
        };
      }
      // (6)
      if (live === undefined) {
        step = 'make the current files a data directory';
        const old = dataDirName();
        const present = files.flatMap((f, i) => {
          const cur = current[i];
          if (cur === undefined) return [];
          return [{ spec: { ...f.spec, mode: cur.mode }, data: cur.contents }];
        });
        await writeDataDir(dir, old, present);
        await swapLink(dir, DATA_LINK, old);
        live = old;
      }
      step = 'link the destinations into ..data';
      for (const [i, d] of destinations.entries()) {
        if (!linked(i)) await swapLink(dir, path.basename(d), `${DATA_LINK}/${path.basename(d)}`);
      }
      // (7)
      step = 'write the new data directory';
      const next = dataDirName();
      await writeDataDir(dir, next, files);
      // (8)
      step = 'swap ..data';
      await swapLink(dir, DATA_LINK, next);
      await fsyncDir(dir);
      const previous = live;
      const swapBack = async (): Promise<void> => {
        await swapLink(dir, DATA_LINK, previous);
        await fsyncDir(dir);
        await fsp.rm(path.join(dir, next), { recursive: true, force: true });
      };
      // (9)
      if (opts.check) {
        try {
          await opts.check();
        } catch (err) {
          step = 'swap back after the check';
          await swapBack();
          throw err;
        }
      }
      const written = changed.map((f) => path.resolve(f.spec.destination));
      return {
        written,
        unchanged,
        rollback: () =>
          withLocks([path.join(dir, DATA_LINK)], opts.lock, () => swapBack()).catch(
            (err: unknown) => {
              throw setError(dir, 'swap back', err);
            },
          ),
        settle: () =>
          withLocks([path.join(dir, DATA_LINK)], opts.lock, () =>
            fsp.rm(path.join(dir, previous), { recursive: true, force: true }),
          ).catch((err: unknown) => {
            opts.logger.warn(
              { directory: dir, err },
              'could not remove the previous data directory',
            );
          }),
      };
    } catch (err) {
      if (err instanceof ReloaderError) throw err;
      throw setError(dir, step, err);
    }
  });
  // (10) withLocks releases the lock in its `finally`.
}
