/**
 * Processes for the end-to-end tests: prerequisites that may be missing (skip loudly, or fail
 * under REQUIRE_E2E=1), free ports, commands run to completion, children collected, and pids
 * stopped for sure in `t.after`. Nothing here puts a secret on a command line: passwords go
 * through the environment or stdin.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { accessSync, constants as fsConstants, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { waitFor } from '../helpers/harness.js';

/** How to install each binary the e2e tests use (Debian 12). */
const INSTALL: Record<string, string> = {
  nginx: 'apt-get install -y nginx-light',
  pgbouncer: 'apt-get install -y pgbouncer',
  initdb: 'apt-get install -y postgresql',
  pg_ctl: 'apt-get install -y postgresql',
  psql: 'apt-get install -y postgresql-client',
  runuser: 'apt-get install -y util-linux',
  openssl: 'apt-get install -y openssl',
  python3: 'apt-get install -y python3',
  java: 'apt-get install -y openjdk-17-jdk-headless',
  javac: 'apt-get install -y openjdk-17-jdk-headless',
  keytool: 'apt-get install -y openjdk-17-jdk-headless',
  kubectl: 'apt-get install -y kubernetes-client',
};

/** Where PostgreSQL keeps its server binaries on Debian (not on PATH). */
function postgresBinDirs(): string[] {
  try {
    return readdirSync('/usr/lib/postgresql')
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => `/usr/lib/postgresql/${v}/bin`);
  } catch {
    return [];
  }
}

/** Absolute path of an executable `name` on PATH (plus sbin and PostgreSQL dirs), or undefined. */
export function findBinary(name: string): string | undefined {
  const dirs = [
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/sbin',
    '/sbin',
    ...postgresBinDirs(),
  ];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * A prerequisite the test cannot run without is missing. Under `REQUIRE_E2E=1` (CI) that fails
 * the test; elsewhere the test is skipped with a loud line on stderr, so a developer without
 * nginx still sees that the e2e coverage did not run. Returns false when the caller must return.
 */
export function missingPrerequisite(t: TestContext, why: string): false {
  if (process.env.REQUIRE_E2E === '1') {
    assert.fail(`${why} (REQUIRE_E2E=1 makes end-to-end tests mandatory)`);
  }
  process.stderr.write(`\n!!!! E2E SKIPPED: ${t.name}: ${why} !!!!\n\n`);
  t.skip(why);
  return false;
}

/**
 * Absolute paths of `names`, or undefined after skipping (or failing, under REQUIRE_E2E=1) the
 * test with how to install the first missing one.
 */
export function requireBinaries(
  t: TestContext,
  names: string[],
): Record<string, string> | undefined {
  const found: Record<string, string> = {};
  for (const name of names) {
    const path = findBinary(name);
    if (path === undefined) {
      missingPrerequisite(t, `${name} not installed: ${INSTALL[name] ?? `install ${name}`}`);
      return undefined;
    }
    found[name] = path;
  }
  return found;
}

/** One binary: its absolute path, or undefined after skipping/failing (see requireBinaries). */
export function requireBinary(t: TestContext, name: string): string | undefined {
  return requireBinaries(t, [name])?.[name];
}

/**
 * PostgreSQL and pgbouncer refuse to run as root, and switching to the `postgres` user with
 * runuser needs root: this returns false (after skip/fail) when we are not root.
 */
export function requireRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  return missingPrerequisite(t, 'must run as root (runuser -u postgres)');
}

/**
 * A TCP port that was free on 127.0.0.1 a moment ago. For servers that cannot take port 0 and
 * report back (nginx, PostgreSQL, pgbouncer); the tiny window before they bind is accepted.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run `file args` to completion without a shell; never rejects on a non-zero exit (the caller
 * asserts). `input` is written to stdin — the way to pass SQL that carries a password.
 */
export function run(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      {
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        timeout: opts.timeoutMs ?? 20_000,
        killSignal: 'SIGKILL',
        maxBuffer: 8 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code =
          err === null ? 0 : typeof err.code === 'number' ? err.code : (child.exitCode ?? -1);
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    // a child that never reads stdin (or exits early) must not crash the test with EPIPE
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

/** True when `pid` is a live process; a zombie (reaped by nobody yet) counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EPERM') return false;
  }
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

/**
 * The live children of `pid`, from `/proc/<pid>/task/<pid>/children` when the kernel has it,
 * else by scanning every `/proc/<n>/stat` for the parent pid (4th field).
 */
export function childrenOf(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text === '' ? [] : text.split(/\s+/).map(Number).filter(isAlive);
  } catch {
    // CONFIG_PROC_CHILDREN is off here: scan
  }
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // comm may hold spaces and parentheses: fields start after the last ')'
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out.sort((a, b) => a - b);
}

/** Wait until `pid` has exited (or is a zombie); false on timeout. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/**
 * Stop `pid` with `signal`, wait up to `timeoutMs`, then SIGKILL it (and any children it left).
 * Used in `t.after`, so it never throws.
 */
export async function stopPid(
  pid: number,
  signal: NodeJS.Signals,
  timeoutMs = 5000,
): Promise<void> {
  const children = childrenOf(pid);
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  if (!(await waitForExit(pid, timeoutMs))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
    await waitForExit(pid, 2000);
  }
  for (const child of children) {
    if (!isAlive(child)) continue;
    try {
      process.kill(child, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
}

/** A spawned child with its output collected; `exited` settles on close. */
export interface Spawned {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** Spawn `file args` (no shell) and collect stdout+stderr. The caller arranges the stop. */
export function spawnCollect(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: 'pipe' | 'ignore' } = {},
): Spawned {
  const child = spawn(file, args, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => {
    child.on('close', (code) => resolve(code));
    child.on('error', () => resolve(-1));
  });
  return { child, output: () => out, exited };
}

/**
 * Spawn an example app that prints `listening on http://127.0.0.1:<port>`; stopped with SIGTERM
 * after the test. Resolves with that base URL; fails with the app's output if it exits first.
 */
export async function startApp(
  t: TestContext,
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; what: string; timeoutMs: number },
): Promise<{ app: Spawned; base: string }> {
  const app = spawnCollect(file, args, { env: opts.env, cwd: opts.cwd });
  t.after(async () => {
    if (app.child.pid !== undefined) await stopPid(app.child.pid, 'SIGTERM', 5000);
    await Promise.race([app.exited, new Promise((r) => setTimeout(r, 2000))]);
  });
  const base = await waitFor(
    () => {
      if (app.child.exitCode !== null) throw new Error(`app exited: ${app.output()}`);
      return app.output().match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)?.[1];
    },
    { what: opts.what, timeoutMs: opts.timeoutMs },
  );
  return { app, base };
}
