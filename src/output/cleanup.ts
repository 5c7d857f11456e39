/**
 * Start-up clean-up after a crash: remove the temp files (`.<name>.rld-tmp-*`) a killed run
 * left next to the destinations, and the unfinished data directories of `atomic: set` targets.
 *
 * Each destination's temp files are removed while holding that destination's lock, so a temp
 * file of any age can go: a live writer (another reloader process) always holds the lock
 * while its temp file exists, and a dead one's lock is broken at once (`lock.ts`).
 * Without the lock, only temp files older than the stale time could safely be removed, and a
 * pod restarted within seconds of a crash would keep the dead run's files.
 */
import { readlink, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { removeStaleTempFiles } from './atomic-write.js';
import { withLocks } from './lock.js';
import { DATA_LINK, removeSetLeftovers } from './set-swap.js';

/**
 * Remove crash leftovers next to every destination; returns how many files were removed. A
 * directory holding an `atomic: set` (a `..data` link) also loses, under the set's lock, the
 * data directories `..data` does not name and a half-made `..data_tmp`.
 */
export async function removeCrashLeftovers(destinations: readonly string[]): Promise<number> {
  let removed = 0;
  const setDirs = new Set<string>();
  for (const dest of new Set(destinations)) {
    const dir = await stat(dirname(dest)).catch(() => undefined);
    if (!dir?.isDirectory()) continue; // nothing was ever written there
    removed += await withLocks([dest], {}, () => removeStaleTempFiles([dest], { olderThanMs: 0 }));
    setDirs.add(dirname(dest));
  }
  for (const dir of setDirs) {
    const link = join(dir, DATA_LINK);
    if ((await readlink(link).catch(() => undefined)) === undefined) continue;
    removed += await withLocks([link], {}, async () =>
      removeSetLeftovers(dir, await readlink(link).catch(() => undefined)),
    );
  }
  return removed;
}
