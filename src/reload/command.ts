/**
 * Run an argv command without a shell (a secret value never becomes part of a command
 * line) and bound it in time. Used for `check` and for `reload: { command }`.
 *
 * The child is spawned `detached`, i.e. as the leader of a new process group, so that a
 * timeout can signal the whole group: `sh -c 'sleep 100'` or `nginx -t` forking helpers leave
 * nothing behind. The procedure, marked `// (n)` in the body:
 *
 *  (1) spawn argv[0] with argv[1..] (PATH lookup, no shell), stdin closed, stdout/stderr piped
 *      into tails capped at `tailBytes` (the last bytes are the useful ones);
 *  (2) at `timeoutMs`, SIGTERM the process group;
 *  (3) once the leader has exited after a timeout, poll the group: when no live (non-zombie)
 *      member is left, finish; after `killGraceMs` anything left gets SIGKILL;
 *  (4) when the leader exits, wait briefly for its pipes to close (a background grandchild
 *      may hold them open forever; a command that exits normally keeps its daemons);
 *  (5) resolve with the outcome. Never rejects: a missing binary (ENOENT) is `ok: false` with
 *      `command not found: X` in `stderrTail`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { performance } from 'node:perf_hooks';

export interface CommandOutcome {
  /** Exit code 0 and no timeout. */
  ok: boolean;
  exitCode: number | null;
  /** Signal that ended the leader, e.g. `SIGTERM`. */
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  /** Last `tailBytes` of stdout / stderr, UTF-8. Not scrubbed: callers scrub before logging. */
  stdoutTail: string;
  stderrTail: string;
}

export interface RunCommandOptions {
  timeoutMs: number;
  /** Default: the reloader's own environment. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Time between SIGTERM and SIGKILL after a timeout; default 2000 ms. */
  killGraceMs?: number;
  /** Size of each output tail; default 2048 bytes. */
  tailBytes?: number;
}

export const DEFAULT_KILL_GRACE_MS = 2000;
export const DEFAULT_TAIL_BYTES = 2048;
/** How long to wait for the pipes to close after the leader exited. */
const PIPE_DRAIN_MS = 200;
const GROUP_POLL_MS = 20;

/**
 * Keeps the last `max` bytes written to it. When it had to drop the beginning, the partial
 * first line is dropped too: a secret cut in half is no longer a known value, and the scrubber
 * could not recognise what is left of it.
 */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  private truncated = false;
  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > this.max * 2) this.compact();
  }

  private compact(): void {
    const all = Buffer.concat(this.chunks);
    const kept = all.subarray(Math.max(0, all.length - this.max));
    if (kept.length < all.length) this.truncated = true;
    this.chunks = [kept];
    this.size = kept.length;
  }

  toString(): string {
    this.compact();
    const buf = this.chunks[0] ?? Buffer.alloc(0);
    // Do not start in the middle of a UTF-8 sequence.
    let start = 0;
    if (this.truncated) {
      const newline = buf.indexOf(0x0a);
      start = newline === -1 ? buf.length : newline + 1;
    }
    while (start < buf.length && start < 4 && ((buf[start] ?? 0) & 0xc0) === 0x80) start += 1;
    return buf.subarray(start).toString('utf8');
  }
}

/** Signal every process of the group led by `pid`; false when the group is empty (ESRCH). */
function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/**
 * True while the process group `pgid` has a member that is not a zombie. kill(-pgid, 0)
 * alone is not enough: an orphaned grandchild is reparented to pid 1, and an init that does
 * not reap (Node itself as pid 1 of a container, or a minimal VM init) leaves it a zombie in
 * the group forever. Without procfs, any member counts.
 */
async function groupAlive(pgid: number): Promise<boolean> {
  if (!signalGroup(pgid, 0)) return false;
  let entries: string[];
  try {
    entries = await fsp.readdir('/proc');
  } catch {
    return true;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = await fsp.readFile(`/proc/${e}/stat`, 'utf8');
      // Fields after "(comm) ": state ppid pgrp ...
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

function spawnFailureText(
  argv0: string,
  code: string | undefined,
  cwd: string | undefined,
): string {
  if (code === 'ENOENT') {
    return cwd === undefined
      ? `command not found: ${argv0}`
      : `command not found: ${argv0} (or the working directory ${cwd} does not exist)`;
  }
  if (code === 'EACCES') return `permission denied: ${argv0} is not executable`;
  return `cannot start ${argv0}${code ? ` (${code})` : ''}`;
}

/** Run `argv` without a shell, within `timeoutMs`; see the module comment. Never rejects. */
export function runCommand(argv: string[], opts: RunCommandOptions): Promise<CommandOutcome> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  const argv0 = argv[0];
  const failed = (stderrTail: string): CommandOutcome => ({
    ok: false,
    exitCode: null,
    signal: null,
    timedOut: false,
    durationMs: elapsed(),
    stdoutTail: '',
    stderrTail,
  });
  if (argv0 === undefined || argv0 === '') return Promise.resolve(failed('empty command'));

  const tailBytes = opts.tailBytes ?? DEFAULT_TAIL_BYTES;
  const graceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  return new Promise<CommandOutcome>((resolve) => {
    const stdout = new Tail(tailBytes);
    const stderr = new Tail(tailBytes);
    let child: ChildProcess;
    try {
      // (1)
      child = spawn(argv0, argv.slice(1), {
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        shell: false,
      });
    } catch (err) {
      resolve(failed(spawnFailureText(argv0, (err as { code?: string }).code, opts.cwd)));
      return;
    }
    child.stdout?.on('data', (c: Buffer) => stdout.push(c));
    child.stderr?.on('data', (c: Buffer) => stderr.push(c));

    let settled = false;
    let timedOut = false;
    let exited = false;
    let groupGone = true;
    let exitCode: number | null = null;
    let exitSignal: string | null = null;
    let closed = false;
    const timers: NodeJS.Timeout[] = [];

    const finish = (): void => {
      if (settled) return;
      // (5) after a timeout, not before the group is gone (or was SIGKILLed) and pipes closed.
      if (!exited || (timedOut && !groupGone) || !closed) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      resolve({
        ok: exitCode === 0 && !timedOut,
        exitCode,
        signal: exitSignal,
        timedOut,
        durationMs: elapsed(),
        stdoutTail: stdout.toString(),
        stderrTail: stderr.toString(),
      });
    };

    child.on('error', (err: Error & { code?: string }) => {
      if (child.pid !== undefined || settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      resolve(failed(spawnFailureText(argv0, err.code, opts.cwd)));
    });

    const pid = child.pid;
    if (pid === undefined) return; // 'error' follows

    // (2)
    timers.push(
      setTimeout(() => {
        if (exited) return;
        timedOut = true;
        groupGone = false;
        signalGroup(pid, 'SIGTERM');
        timers.push(
          setTimeout(() => {
            signalGroup(pid, 'SIGKILL');
            groupGone = true;
            finish();
          }, graceMs),
        );
      }, opts.timeoutMs),
    );

    // (3)
    const pollGroup = (): void => {
      if (settled || groupGone) return;
      void groupAlive(pid).then((alive) => {
        if (settled || groupGone) return;
        if (!alive) {
          groupGone = true;
          finish();
          return;
        }
        timers.push(setTimeout(pollGroup, GROUP_POLL_MS));
      });
    };

    child.on('exit', (code, signal) => {
      exited = true;
      exitCode = code;
      exitSignal = signal;
      if (timedOut) pollGroup();
      // (4)
      timers.push(
        setTimeout(() => {
          if (closed) return;
          child.stdout?.destroy();
          child.stderr?.destroy();
          closed = true;
          finish();
        }, PIPE_DRAIN_MS),
      );
      finish();
    });
    child.on('close', () => {
      closed = true;
      finish();
    });
  });
}
