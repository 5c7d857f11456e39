// runReload end to end with real processes and a real HTTP server: a missing process is
// skipped on the first render and a failure later, signals reach a live process, commands and
// HTTP calls report failures as values (scrubbed), one log line per reload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import type { ReloadSpec } from '../../src/config/types.js';
import { Scrubber, createLogger, silentLogger } from '../../src/logger.js';
import { runCheck, runReload } from '../../src/reload/index.js';

const logger = silentLogger();
/** The runtime's scrubber these tests share (canaries are added to it). */
const scrubber = new Scrubber();
let root: string;
let server: Server;
let base: string;
const children: ChildProcess[] = [];

before(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'rld-reload-'));
  server = createServer((req, res) => {
    req.resume();
    if (req.url === '/ok') res.writeHead(200).end('reloaded');
    else if (req.url === '/fail') res.writeHead(500).end('config error near line 3');
    // '/hang': no answer
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await fsp.rm(root, { recursive: true, force: true });
});

async function waitFor(cond: () => boolean, timeoutMs: number, seen: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms; ${seen()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('signal: a missing pid file is skipped on the first render, failed afterwards', async () => {
  const spec: ReloadSpec = {
    kind: 'signal',
    signal: 'HUP',
    pidFile: path.join(root, 'absent.pid'),
    timeoutMs: 1000,
  };
  const first = await runReload(spec, { firstRender: true, logger, scrubber });
  assert.equal(first.status, 'skipped');
  assert.match(first.detail, /absent\.pid does not exist; first render/);
  const later = await runReload(spec, { firstRender: false, logger, scrubber });
  assert.equal(later.status, 'failed');
  assert.match(later.detail, /absent\.pid does not exist/);
});

test('signal: no process of that name is skipped first, failed later', async () => {
  const spec: ReloadSpec = {
    kind: 'signal',
    signal: 'HUP',
    processName: 'rld-none-xyz',
    timeoutMs: 1000,
  };
  assert.equal((await runReload(spec, { firstRender: true, logger, scrubber })).status, 'skipped');
  const later = await runReload(spec, { firstRender: false, logger, scrubber });
  assert.equal(later.status, 'failed');
  assert.match(later.detail, /no process named "rld-none-xyz"/);
});

test('signal: a live process from its pid file receives the signal', async (t) => {
  const hupFile = path.join(root, 'hup.log');
  const child = spawn(
    process.execPath,
    [
      '-e',
      `process.on('SIGUSR1', () => require('fs').appendFileSync(process.argv[1], 'usr1\\n'));
       setInterval(() => {}, 1000); process.stdout.write('ready\\n');`,
      hupFile,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(
    () => out.includes('ready'),
    5000,
    () => `output ${JSON.stringify(out)}`,
  );
  const pidFile = path.join(root, 'app.pid');
  writeFileSync(pidFile, `${child.pid}\n`);
  const r = await runReload(
    { kind: 'signal', signal: 'USR1', pidFile, timeoutMs: 1000 },
    { firstRender: false, logger, scrubber },
  );
  assert.equal(r.status, 'ok', r.detail);
  assert.equal(r.detail, `sent SIGUSR1 to pid ${child.pid}`);
  await waitFor(
    () => existsSync(hupFile) && readFileSync(hupFile, 'utf8') === 'usr1\n',
    5000,
    () => (existsSync(hupFile) ? readFileSync(hupFile, 'utf8') : 'no file'),
  );
});

test('command: exit 0 is ok; a failure is reported with its exit code and scrubbed stderr', async () => {
  const ok = await runReload(
    { kind: 'command', command: ['true'], timeoutMs: 2000 },
    { firstRender: false, logger, scrubber },
  );
  assert.equal(ok.status, 'ok');
  const canary = `canary-${Math.random().toString(36).slice(2)}-value`;
  scrubber.add(canary);
  const failed = await runReload(
    {
      kind: 'command',
      command: ['sh', '-c', `echo "auth failed for ${canary}" >&2; exit 4`],
      timeoutMs: 2000,
    },
    { firstRender: false, logger, scrubber },
  );
  assert.equal(failed.status, 'failed');
  assert.match(failed.detail, /^sh exited 4: auth failed for \[redacted\]$/);
  assert.ok(!failed.detail.includes(canary));
  const missing = await runReload(
    { kind: 'command', command: ['rld-no-such-cmd'], timeoutMs: 2000 },
    { firstRender: true, logger, scrubber },
  );
  assert.equal(missing.status, 'failed', 'the first-render skip is for signals only');
  assert.match(missing.detail, /command not found: rld-no-such-cmd/);
});

test('command: a timeout is a failure, not an exception', async () => {
  const r = await runReload(
    { kind: 'command', command: ['sleep', '30'], timeoutMs: 200 },
    { firstRender: false, logger, scrubber },
  );
  assert.equal(r.status, 'failed');
  assert.match(r.detail, /sleep timed out/);
  assert.ok(r.durationMs < 2500, `took ${r.durationMs} ms`);
});

test('http: 2xx ok, 500 failed with the body, no answer failed on timeout', async () => {
  const opts = { firstRender: false, logger, scrubber };
  const ok = await runReload(
    { kind: 'http', url: `${base}/ok`, method: 'POST', timeoutMs: 2000 },
    opts,
  );
  assert.equal(ok.status, 'ok', ok.detail);
  const fail = await runReload(
    { kind: 'http', url: `${base}/fail`, method: 'POST', timeoutMs: 2000 },
    opts,
  );
  assert.equal(fail.status, 'failed');
  assert.match(fail.detail, /answered 500: config error near line 3/);
  const hang = await runReload(
    { kind: 'http', url: `${base}/hang`, method: 'POST', timeoutMs: 300 },
    opts,
  );
  assert.equal(hang.status, 'failed');
  assert.match(hang.detail, /timed out after 300 ms/);
});

test('one log line per reload, warn when failed, with no secret in it', async () => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().trim().split('\n'));
      cb();
    },
  });
  const log = createLogger({ level: 'info', destination });
  const canary = `canary-${Math.random().toString(36).slice(2)}-log`;
  scrubber.add(canary);
  await runReload(
    { kind: 'command', command: ['true'], timeoutMs: 2000 },
    { firstRender: false, logger: log, scrubber },
  );
  await runReload(
    { kind: 'command', command: ['sh', '-c', `echo ${canary} >&2; exit 1`], timeoutMs: 2000 },
    { firstRender: false, logger: log, scrubber },
  );
  assert.equal(lines.length, 2, lines.join('\n'));
  const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(first?.level, 'info');
  assert.equal(first?.status, 'ok');
  assert.equal(first?.reload, 'command');
  assert.equal(second?.level, 'warn');
  assert.equal(second?.status, 'failed');
  assert.ok(!lines.join('\n').includes(canary));
});

test('runCheck runs the check command within its timeout', async () => {
  const r = await runCheck({ command: ['sh', '-c', 'echo checked; exit 0'], timeoutMs: 2000 });
  assert.equal(r.ok, true);
  assert.equal(r.stdoutTail, 'checked\n');
  const t = await runCheck({ command: ['sleep', '30'], timeoutMs: 200 });
  assert.equal(t.ok, false);
  assert.equal(t.timedOut, true);
});

test('a multi-line secret printed by a reload command never reaches the detail, even in part', async () => {
  const pem =
    '-----BEGIN TEST KEY-----\nQUFBQUFBQUFBQUFB-canary-line-1\nQkJCQkJCQkJCQkJC-canary-line-2\n-----END TEST KEY-----';
  scrubber.add(pem);
  const script = `process.stderr.write(${JSON.stringify(`noise\n${pem}\nmore noise\n`)}); process.exit(3)`;
  const failed = await runReload(
    { kind: 'command', command: [process.execPath, '-e', script], timeoutMs: 5000 },
    { firstRender: false, logger, scrubber },
  );
  assert.equal(failed.status, 'failed');
  assert.match(failed.detail, /exited 3/);
  assert.doesNotMatch(failed.detail, /canary-line/);
  const ok = await runReload(
    {
      kind: 'command',
      command: [process.execPath, '-e', `console.log(${JSON.stringify(pem)})`],
      timeoutMs: 5000,
    },
    { firstRender: false, logger, scrubber },
  );
  assert.equal(ok.status, 'ok');
  assert.doesNotMatch(ok.detail, /canary-line/);
});
