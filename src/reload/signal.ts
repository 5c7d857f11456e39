/**
 * `reload: { signal }`: find the process to signal — by `pid`, by `pidFile`, or by
 * `processName` matched against `/proc/<pid>/comm` — and send it a signal.
 *
 * The process-name rule, for nginx-like servers where a master and its workers share a name:
 *
 *  (1) list `/proc`, keep the pids whose `comm` equals the first 15 characters of
 *      `processName` (the kernel truncates comm to 15 bytes), or whose `argv[0]`
 *      (`/proc/<pid>/cmdline`) has `processName` as its base name — a process may rename its
 *      thread (Node 24's main thread is `MainThread`) or be started under another name
 *      (`exec -a`); our own pid is left out;
 *  (2) read each match's `/proc/<pid>/status`; leave out zombies (state Z), which a signal
 *      cannot reach;
 *  (3) keep the matches whose parent (PPid) is not itself a match: the master, not its workers;
 *  (4) if several remain (two unrelated servers of the same name), take the lowest pid — the
 *      one started first, usually — rather than signalling both.
 *
 * In Kubernetes the app's processes are only visible with `shareProcessNamespace: true`.
 */
import { constants as osConstants } from 'node:os';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ReloaderError } from '../errors.js';

export interface ProcessSelector {
  pid?: number;
  pidFile?: string;
  processName?: string;
}

/** Either a live pid, or why none was found (a sentence for logs and `/status`). */
export type Located = { pid: number; reason?: undefined } | { pid: undefined; reason: string };

/** Length of `/proc/<pid>/comm` (TASK_COMM_LEN - 1). */
export const COMM_LEN = 15;

const PROC = '/proc';

/** State letter and parent pid from `/proc/<pid>/status`; undefined when the pid is gone. */
async function readStatus(pid: number): Promise<{ state: string; ppid: number } | undefined> {
  try {
    const text = await fsp.readFile(path.join(PROC, String(pid), 'status'), 'utf8');
    const state = /^State:\s+(\S)/m.exec(text)?.[1] ?? '?';
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(text)?.[1] ?? NaN);
    return { state, ppid };
  } catch {
    return undefined;
  }
}

/** True when `pid` names a live (non-zombie) process; EPERM counts as alive. */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EPERM') return false;
  }
  const status = await readStatus(pid);
  // Without procfs (not Linux) kill(pid, 0) is all we know.
  return status === undefined ? true : status.state !== 'Z';
}

/** Parse a pid file: the first line, digits only, > 0. */
export function parsePidFile(text: string): number | undefined {
  const first = text.split('\n', 1)[0]?.trim() ?? '';
  if (!/^\d+$/.test(first)) return undefined;
  const pid = Number(first);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** The base name of `pid`'s `argv[0]` is `name`; false when it cannot be read. */
async function argv0Is(pid: string, name: string): Promise<boolean> {
  try {
    const cmdline = await fsp.readFile(path.join(PROC, pid, 'cmdline'), 'utf8');
    const argv0 = cmdline.split('\0')[0] ?? '';
    return argv0 !== '' && path.basename(argv0) === name;
  } catch {
    return false;
  }
}

/** Steps (1)–(4) of the module comment. */
async function findByName(name: string): Promise<Located> {
  const want = name.slice(0, COMM_LEN);
  let entries: string[];
  try {
    entries = await fsp.readdir(PROC);
  } catch (err) {
    return { pid: undefined, reason: `cannot list ${PROC} (${(err as { code?: string }).code})` };
  }
  // (1)
  const matches: number[] = [];
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid)
      .map(async (e) => {
        try {
          const comm = await fsp.readFile(path.join(PROC, e, 'comm'), 'utf8');
          if (comm.replace(/\n$/, '') === want || (await argv0Is(e, name))) matches.push(Number(e));
        } catch {
          // The process ended while we listed; not a match.
        }
      }),
  );
  // (2)
  const live = new Map<number, number>();
  for (const pid of matches) {
    const status = await readStatus(pid);
    if (status !== undefined && status.state !== 'Z') live.set(pid, status.ppid);
  }
  if (live.size === 0) return { pid: undefined, reason: `no process named "${name}"` };
  // (3)
  const masters = [...live].filter(([, ppid]) => !live.has(ppid)).map(([pid]) => pid);
  // (4)
  const pool = masters.length > 0 ? masters : [...live.keys()];
  return { pid: Math.min(...pool) };
}

/**
 * Find the live process `selector` designates: `pid` (checked alive), `pidFile` (read, first
 * line parsed, checked alive) or `processName` (the rule in the module comment). Never throws;
 * `{ pid: undefined, reason }` explains a miss. The reloader's own pid is never returned.
 */
export async function locateProcess(selector: ProcessSelector): Promise<Located> {
  let pid: number | undefined;
  let source: string;
  if (selector.pid !== undefined) {
    pid = selector.pid;
    source = `pid ${pid}`;
  } else if (selector.pidFile !== undefined) {
    source = `pid file ${selector.pidFile}`;
    let text: string;
    try {
      text = await fsp.readFile(selector.pidFile, 'utf8');
    } catch (err) {
      const code = (err as { code?: string }).code;
      const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`;
      return { pid: undefined, reason: `${source} ${why}` };
    }
    pid = parsePidFile(text);
    if (pid === undefined) return { pid: undefined, reason: `${source} does not hold a pid` };
    source = `pid ${pid} from ${source}`;
  } else if (selector.processName !== undefined) {
    return findByName(selector.processName);
  } else {
    return { pid: undefined, reason: 'no pid, pidFile or processName given' };
  }
  if (!Number.isSafeInteger(pid) || pid <= 0)
    return { pid: undefined, reason: `${source}: invalid pid` };
  if (pid === process.pid) return { pid: undefined, reason: `${source} is the reloader itself` };
  if (!(await isAlive(pid))) return { pid: undefined, reason: `${source}: no such process` };
  return { pid };
}

/** `locateProcess(selector).pid`: the pid to signal, or undefined when there is none. */
export async function findPid(selector: ProcessSelector): Promise<number | undefined> {
  return (await locateProcess(selector)).pid;
}

/** `HUP`, `SIGHUP` or `hup` → `SIGHUP`; RLD_ERR_RELOAD for a name the OS does not know. */
export function normalizeSignal(name: string): NodeJS.Signals {
  const upper = name.trim().toUpperCase();
  const full = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  if (!(full in osConstants.signals)) {
    throw new ReloaderError('RLD_ERR_RELOAD', `unknown signal "${name}"`, {
      details: { signal: name },
    });
  }
  return full as NodeJS.Signals;
}

/**
 * Send `signal` (e.g. `HUP`) to `pid`. Errors are `ReloaderError('RLD_ERR_RELOAD')` with
 * `details.osCode`: `ESRCH` (the process is gone; the caller decides whether that matters),
 * `EPERM` (not ours to signal — another user, or no shared process namespace).
 * Delivery is all a signal tells us: whether the app then reloaded successfully is unknown.
 */
export function sendSignal(pid: number, signal: string): void {
  const sig = normalizeSignal(signal);
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) {
    throw new ReloaderError('RLD_ERR_RELOAD', `refusing to send ${sig} to pid ${pid}`, {
      details: { pid, signal: sig },
    });
  }
  try {
    process.kill(pid, sig);
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why =
      code === 'ESRCH'
        ? 'no such process'
        : code === 'EPERM'
          ? 'operation not permitted (another user, or no shared process namespace)'
          : 'failed';
    throw new ReloaderError(
      'RLD_ERR_RELOAD',
      `cannot send ${sig} to pid ${pid}: ${why} (${code})`,
      {
        cause: err,
        details: { pid, signal: sig, osCode: code },
      },
    );
  }
}
