/**
 * Shared test plumbing: temp dirs that clean themselves up, the local Infisical-compatible
 * server, the built CLI as a real child process, polling with a timeout that reports what it
 * saw last, and the canary scan that proves no secret reached an output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import {
  startLocalInfisical,
  type LocalInfisical,
  type LocalInfisicalOptions,
} from '../../src/dev/local-infisical.js';
import { parseSeed } from '../../src/dev/seed.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root, whether the tests run from test/ (tsx) or dist/test/ (built). */
export const repoRoot = here.includes(`${'/dist/'}`)
  ? resolve(here, '..', '..', '..')
  : resolve(here, '..', '..');
/** The built CLI entry point (npm test builds before running). */
export const mainJs = join(repoRoot, 'dist', 'src', 'main.js');

/**
 * The environment a user's shell has: without the npm_* variables of an enclosing npm run or npx
 * (`npm test`, `npx -p node@24 -c …`), which would change what inner npm commands do.
 */
export function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const own = Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k));
  return { ...Object.fromEntries(own), ...extra };
}

/**
 * A fresh temp dir removed after the test. `after` hooks run in the order they were added, and
 * one that throws skips the rest: this one usually runs before the stop of a daemon started
 * later in the test, so it never throws. The removal retries (ENOTEMPTY while a last write
 * lands); if the dir still cannot be removed it says so on stderr and is removed again when the
 * process exits. A test whose daemon may still be writing stops it itself before it ends.
 */
export async function tempDir(t: TestContext, prefix = 'rld-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(async () => {
    try {
      await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    } catch (err) {
      process.stderr.write(`tempDir: ${dir} not removed yet (${String(err)}); again at exit\n`);
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    }
  });
  return dir;
}

/**
 * The quickstart's secrets as shipped. The quick start tells a newcomer to edit
 * examples/quickstart/secrets.yaml, so tests never read that file: they use this copy.
 */
export const QUICKSTART_SECRETS = `DB_HOST: 127.0.0.1
DB_PORT: "5432"
DB_USER: app
DB_PASSWORD: change-me-1
API_KEY: ak_live_quickstart
`;

/** examples/quickstart in a fresh temp dir, without rendered files, with QUICKSTART_SECRETS. */
export async function quickstartCopy(t: TestContext): Promise<string> {
  const dir = await tempDir(t, 'rld-quickstart-');
  const from = join(repoRoot, 'examples', 'quickstart');
  await cp(from, dir, { recursive: true, filter: (src) => !src.startsWith(join(from, 'out')) });
  await writeFile(join(dir, 'secrets.yaml'), QUICKSTART_SECRETS, { mode: 0o600 });
  return dir;
}

/**
 * Seed YAML for one project `p1` (environment `prod`) with the given folders (YAML flow maps by
 * path) and one universal-auth identity `cid` / `csecret-123456` without lockout.
 */
export function oneProjectSeed(folders: Record<string, string>): string {
  const lines = Object.entries(folders).map(([path, map]) => `          ${path}: ${map}`);
  return `
projects:
  - id: p1
    name: P
    environments:
      - slug: prod
        name: Production
        folders:
${lines.join('\n')}
identities:
  - id: i1
    name: r
    universal: { clientId: cid, clientSecret: csecret-123456, lockout: false }
`;
}

/** Start the local Infisical-compatible server from seed YAML; closed after the test. */
export async function startInfisical(
  t: TestContext,
  seedYaml: string,
  options: Omit<LocalInfisicalOptions, 'seed'> = {},
): Promise<LocalInfisical> {
  const local = await startLocalInfisical({ ...options, seed: parseSeed(seedYaml, 'seed.yaml') });
  t.after(() => local.close());
  return local;
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the built CLI to completion (killed after `timeoutMs`). */
export function runCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [mainJs, ...args], {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** A long-running CLI process (the daemon) with its output collected; killed after the test. */
export interface CliProcess {
  child: ChildProcess;
  output(): { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startCli(
  t: TestContext,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): CliProcess {
  const child = spawn(process.execPath, [mainJs, ...args], {
    cwd: opts.cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, signal) => r({ code, signal })),
  );
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, output: () => ({ stdout, stderr }), exited };
}

/** Poll `probe` until it returns a truthy value; fail with the last value seen. */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; what: string },
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      last = await probe();
      if (last) return last as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      assert.fail(
        `timed out waiting for ${opts.what}; last saw: ${String(last instanceof Error ? last.message : JSON.stringify(last))}`,
      );
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}

/** JWT-looking strings: access tokens and service-account tokens must never be printed. */
const JWT_PATTERN = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/;

/** Assert that none of `canaries` (secret values, tokens) nor any JWT appears in `texts`. */
export function assertNoSecrets(texts: string[], canaries: string[]): void {
  const all = texts.join('\n');
  for (const canary of canaries) {
    assert.ok(
      !all.includes(canary),
      `a secret value leaked into the output: ${canary.slice(0, 4)}…`,
    );
  }
  const jwt = all.match(JWT_PATTERN);
  assert.equal(jwt, null, `a token leaked into the output: ${jwt?.[0].slice(0, 12)}…`);
}
