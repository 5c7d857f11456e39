/**
 * `npm start` as a newcomer stops it: SIGTERM to npm (a process manager, `kill <npm pid>`) and
 * Ctrl-C (SIGINT to the terminal's whole process group) both end the daemon too — no process is
 * left holding the webhook port, and the next start can bind it. The build step runs no `tsc`
 * when nothing changed since the last build.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { repoRoot, userEnv, waitFor } from '../helpers/harness.js';
import { childrenOf, freePort, isAlive } from '../e2e/process.js';

/** Every descendant of `pid`. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const child of childrenOf(pid)) out.push(child, ...descendants(child));
  return out;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function startAndStop(t: TestContext, how: 'SIGTERM to npm' | 'Ctrl-C'): Promise<string> {
  const port = await freePort();
  // its own process group, like a shell job: Ctrl-C signals the whole group
  const npm = spawn('npm', ['start'], {
    cwd: repoRoot,
    detached: true,
    env: userEnv({
      RELOADER_PORT: String(port),
      RELOADER_ADMIN_PORT: '0',
      npm_config_update_notifier: 'false',
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  npm.stdout.on('data', (d: Buffer) => (out += d.toString()));
  npm.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => npm.on('close', (code) => r(code)));
  const pid = npm.pid as number;
  const started = [pid];
  t.after(() => {
    for (const p of started) if (isAlive(p)) process.kill(p, 'SIGKILL');
  });
  await waitFor(() => out.includes('ready to serve'), {
    what: `npm start to serve; output: ${out}`,
    timeoutMs: 120_000,
  });
  const daemon = descendants(pid).find((p) => cmdline(p).includes('dist/src/main.js dev'));
  assert.ok(daemon, `the daemon runs under npm: ${descendants(pid).map(cmdline).join(' | ')}`);
  started.push(daemon);
  assert.equal(await portFree(port), false, 'the daemon holds the webhook port');

  if (how === 'SIGTERM to npm') process.kill(pid, 'SIGTERM');
  else process.kill(-pid, 'SIGINT');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
  await waitFor(() => !isAlive(daemon), { what: `the daemon to exit after ${how}` });
  assert.ok(await portFree(port), 'the webhook port is free again');
  return out;
}

test('npm start: SIGTERM to npm stops the daemon; nothing is rebuilt when nothing changed', async (t) => {
  const out = await startAndStop(t, 'SIGTERM to npm');
  assert.match(out, /"msg":"stopped"/, 'the daemon stopped cleanly');
  const check = spawnSync(process.execPath, ['scripts/build-if-stale.mjs', '--check'], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  assert.equal(check.status, 0, `the next npm start builds nothing: ${check.stderr}`);
  assert.match(check.stderr, /up to date/);
});

test('npm start: Ctrl-C (SIGINT to the process group) stops the daemon', async (t) => {
  await startAndStop(t, 'Ctrl-C');
});
