/**
 * The hand-written baselines' durable write, in a module of its own that loads Node built-ins
 * only, so that the hand-written `--once` (once-handwritten.ts) can use it without loading
 * the benchmark plumbing (undici, the daemon) into a process whose start-up is measured.
 */
import { open, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Replace `dest` the minimal durable way, as any careful hand-written tool would: temp file in
 * the same directory, write, fsync, close, rename over the destination, fsync the directory.
 */
export async function writeDurably(dest: string, data: string, mode = 0o600): Promise<void> {
  const tmp = join(
    dirname(dest),
    `.${basename(dest)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`,
  );
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, dest);
  const dh = await open(dirname(dest), 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
