/**
 * Child processes for benches 5 and 6: spawn node the same way for the reloader and for its
 * baseline, read a process's RSS from /proc, time a run to completion.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { distBench, now, sleep } from './lib.js';

export interface Proc {
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): Promise<void>;
}

/** `node [--expose-gc --import gc-preload] ...args`, output collected. */
export function spawnNode(args: string[], opts: { gc?: boolean; cwd?: string } = {}): Proc {
  const pre = opts.gc
    ? ['--expose-gc', '--import', pathToFileURL(join(distBench, 'gc-preload.js')).href]
    : [];
  const child = spawn(process.execPath, [...pre, ...args], {
    cwd: opts.cwd,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'] },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, signal) => r({ code, signal })),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

/** VmRSS and VmHWM (peak) of `pid`, in MiB. */
export async function rss(pid: number): Promise<{ rssMiB: number; hwmMiB: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
}

/** Let `proc` settle, ask it for a full GC (SIGUSR2 via gc-preload), then read its RSS. */
export async function settledRss(
  proc: Proc,
  settleMs = 1000,
): Promise<{ rssMiB: number; hwmMiB: number }> {
  await sleep(settleMs);
  proc.child.kill('SIGUSR2');
  await sleep(300);
  proc.child.kill('SIGUSR2');
  await sleep(300);
  return rss(proc.child.pid as number);
}

/** Poll `probe` until truthy; throws with `what` and the last value after `timeoutMs`. */
export async function waitUntil<T>(
  probe: () => T | Promise<T>,
  what: string,
  timeoutMs = 30_000,
): Promise<NonNullable<T>> {
  const deadline = now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      last = await probe();
      if (last) return last as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (now() > deadline)
      throw new Error(`timed out waiting for ${what}; last saw ${String(last)}`);
    await sleep(20);
  }
}

/** Run `node ...args` to completion; wall time in ms (spawn → exit). */
export async function timeRun(
  args: string[],
  cwd?: string,
): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  const t0 = now();
  const p = spawnNode(args, { cwd });
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 60_000);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { ms: now() - t0, code, stdout: p.stdout(), stderr: p.stderr() };
}
