/**
 * Plumbing for the end-to-end tests with real processes (nginx, pgbouncer, PostgreSQL, the
 * example apps): free ports, binaries that may be missing, child processes stopped by pid,
 * TLS probes, self-signed certificates and the daemon as a real process.
 *
 * Rules every helper keeps: everything binds 127.0.0.1; every process a helper starts is stopped
 * by its pid in `t.after` (even when the test failed); every wait has a timeout and says what it
 * saw last; a secret never goes on a command line (passwords go through the environment or
 * stdin).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { accessSync, constants as fsConstants, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { request } from 'undici';
import { signWebhook } from '../../src/events/signature.js';
import { startCli, waitFor, type CliProcess } from '../helpers/harness.js';

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
      missingPrerequisite(
        t,
        `${name} not installed: ${INSTALL[name] ?? `install ${name}`}`,
      );
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
          err === null ? 0 : typeof err.code === 'number' ? err.code : child.exitCode ?? -1;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
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

// ---------------------------------------------------------------- certificates and TLS

export interface SelfSigned {
  cert: string;
  key: string;
  /** The base64 lines of the private key: canaries that must never reach a log. */
  keyLines: string[];
}

/** A P-256 self-signed certificate with CN=`name`, valid one day, from the openssl CLI. */
export async function selfSigned(dir: string, name: string): Promise<SelfSigned> {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  const res = await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  assert.equal(res.code, 0, `openssl req failed: ${res.stderr}`);
  const key = await readFile(keyFile, 'utf8');
  const cert = await readFile(certFile, 'utf8');
  const keyLines = key
    .split('\n')
    .filter((l) => l.length >= 16 && !l.startsWith('-----'));
  return { cert, key, keyLines };
}

export interface PeerCert {
  cn: string;
  fingerprint256: string;
}

/**
 * One fresh TLS handshake with 127.0.0.1:`port` (no session reuse, no verification: the certs
 * are self-signed) and the subject CN and SHA-256 fingerprint of the certificate served.
 */
export function tlsPeer(port: number, timeoutMs = 2000): Promise<PeerCert> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TLS handshake with 127.0.0.1:${port} timed out`));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const peer = socket.getPeerCertificate();
      socket.end();
      const cn = peer.subject?.CN;
      resolve({ cn: Array.isArray(cn) ? cn.join(',') : (cn ?? ''), fingerprint256: peer.fingerprint256 });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}

/** Subject CN served on `port`. */
export async function tlsSubject(port: number): Promise<string> {
  return (await tlsPeer(port)).cn;
}

/** SHA-256 fingerprint (colon-separated hex) of the certificate served on `port`. */
export async function tlsFingerprint(port: number): Promise<string> {
  return (await tlsPeer(port)).fingerprint256;
}

// ---------------------------------------------------------------- nginx

export interface Nginx {
  /** The master's pid (nginx runs in the foreground as our child: `daemon off`). */
  pid: number;
  proc: Spawned;
  /** `nginx -p D -e D/logs/error.log -c D/nginx.conf`: the argv prefix for -t and friends. */
  argv: string[];
}

/**
 * The nginx.conf of a test: everything under `dir` (pid, error log, temp paths), one worker
 * (so "the old worker is gone" means "one child"), and the rendered server block included.
 */
export function nginxConf(dir: string, include: string): string {
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log notice;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path ${dir}/tmp/client_body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    include ${include};
}
`;
}

/** The argv prefix that points nginx at `dir` without touching /etc/nginx or /var/log/nginx. */
export function nginxArgv(nginx: string, dir: string): string[] {
  return [nginx, '-p', `${dir}/`, '-e', `${dir}/logs/error.log`, '-c', `${dir}/nginx.conf`];
}

/**
 * Start nginx in the foreground (`daemon off`) as our child, wait for its pid file and for
 * `port` to answer a TLS handshake. Stopped in `t.after` with SIGQUIT to the master (not
 * `nginx -s quit`, which fails while the files are torn, NOTES 2a), waiting for it to exit.
 */
export async function startNginx(
  t: TestContext,
  nginx: string,
  dir: string,
  port: number,
): Promise<Nginx> {
  const argv = nginxArgv(nginx, dir);
  const proc = spawnCollect(argv[0] as string, [...argv.slice(1), '-g', 'daemon off;']);
  t.after(async () => {
    if (proc.child.pid !== undefined) await stopPid(proc.child.pid, 'SIGQUIT', 5000);
    await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 2000))]);
  });
  const pid = await waitFor(
    async () => {
      if (proc.child.exitCode !== null) {
        throw new Error(`nginx exited ${proc.child.exitCode}: ${proc.output()}`);
      }
      const text = await readFile(join(dir, 'nginx.pid'), 'utf8').catch(() => '');
      return Number(text.trim()) || undefined;
    },
    { what: 'nginx to write its pid file', timeoutMs: 10_000 },
  );
  assert.equal(pid, proc.child.pid, 'the pid file names the master we started');
  await waitFor(() => tlsPeer(port).then(() => true), {
    what: `nginx to answer TLS on 127.0.0.1:${port}`,
    timeoutMs: 10_000,
  });
  return { pid, proc, argv };
}

/**
 * Wait until the nginx master has exactly one worker and it is not `oldWorker`: right after a
 * reload the old worker can still accept a connection and serve the OLD certificate (NOTES 2a),
 * so a verification must wait for it to exit. Returns the new worker's pid.
 */
export async function waitForSingleWorker(
  masterPid: number,
  oldWorker?: number,
  timeoutMs = 10_000,
): Promise<number> {
  let last: number[] = [];
  return waitFor(
    () => {
      last = childrenOf(masterPid);
      return last.length === 1 && last[0] !== oldWorker ? last[0] : undefined;
    },
    { what: `nginx master ${masterPid} to have one new worker (old ${oldWorker})`, timeoutMs },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; children: ${last.join(',')}`);
  });
}

// ---------------------------------------------------------------- the daemon

export interface Daemon {
  proc: CliProcess;
  url: string;
  get(path: string): Promise<{ status: number; text: string }>;
  /** A signed webhook POST with the given body. */
  signedEvent(body: object, secret: string): Promise<number>;
  /** The /status entry of `target`. */
  target(name: string): Promise<TargetStatus | undefined>;
  metrics(): Promise<string>;
  /** SIGTERM, expect exit 0, return everything it printed. */
  stop(): Promise<string>;
}

export interface TargetStatus {
  name: string;
  lastStatus?: string;
  lastError?: { code: string; message: string };
  files: Record<string, string>;
  lastReload?: { status: string; detail: string };
}

/**
 * `infisical-reloader run --config spec` as a real process (the built CLI), ready: listening
 * (port parsed from its log line) and `/readyz` 200, i.e. every target rendered once.
 */
export async function startDaemon(
  t: TestContext,
  spec: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Daemon> {
  const proc = startCli(t, ['run', '--config', spec, '--log-level', 'debug'], { env });
  const url = await waitFor(
    () => {
      if (proc.child.exitCode !== null) {
        throw new Error(`daemon exited ${proc.child.exitCode}: ${proc.output().stderr.slice(-1500)}`);
      }
      return proc.output().stderr.match(/"url":"(http:\/\/127\.0\.0\.1:\d+)","path"/)?.[1];
    },
    { what: 'the daemon to listen', timeoutMs: 15_000 },
  );
  const get = async (path: string) => {
    const res = await request(`${url}${path}`);
    return { status: res.statusCode, text: await res.body.text() };
  };
  await waitFor(async () => (await get('/readyz')).status === 200, {
    what: 'the daemon to be ready (/readyz 200)',
    timeoutMs: 15_000,
  }).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${proc.output().stderr.slice(-3000)}`);
  });
  return {
    proc,
    url,
    get,
    async signedEvent(body, secret) {
      const text = JSON.stringify(body);
      const res = await request(`${url}/infisical/webhook`, {
        method: 'POST',
        body: text,
        headers: {
          'content-type': 'application/json',
          'x-infisical-signature': signWebhook(text, secret, Date.now()),
        },
      });
      await res.body.text();
      return res.statusCode;
    },
    async target(name) {
      const status = JSON.parse((await get('/status')).text) as { targets: TargetStatus[] };
      return status.targets.find((x) => x.name === name);
    },
    async metrics() {
      return (await get('/metrics')).text;
    },
    async stop() {
      proc.child.kill('SIGTERM');
      const { code } = await proc.exited;
      const { stdout, stderr } = proc.output();
      assert.equal(code, 0, `SIGTERM ends the daemon with exit 0; stderr: ${stderr.slice(-1500)}`);
      return `${stdout}\n${stderr}`;
    },
  };
}

/**
 * Milliseconds from `sinceMs` (wall clock) to the first daemon log line of each message in
 * `msgs` at or after it: a breakdown of where a rotation spent its time, for t.diagnostic.
 */
export function logTimeline(stderr: string, sinceMs: number, msgs: string[]): string {
  const lines = stderr
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        const line = JSON.parse(l) as { time?: number | string; msg?: string };
        return [{ msg: line.msg, at: typeof line.time === 'string' ? Date.parse(line.time) : line.time }];
      } catch {
        return [];
      }
    })
    .filter((l) => typeof l.at === 'number' && l.at >= sinceMs);
  return msgs
    .map((m) => {
      const hit = lines.find((l) => l.msg === m);
      return `${m} +${hit ? (hit.at as number) - sinceMs : '?'} ms`;
    })
    .join(', ');
}

/** Seed YAML (JSON is YAML) for one project/environment/folder and one Kubernetes identity. */
export function seedYaml(p: {
  projectId: string;
  environment: string;
  secrets: Record<string, string>;
  identityId: string;
}): string {
  return JSON.stringify({
    projects: [
      {
        id: p.projectId,
        name: p.projectId,
        environments: [
          { slug: p.environment, name: p.environment, folders: { '/': p.secrets } },
        ],
      },
    ],
    identities: [
      {
        id: p.identityId,
        name: 'reloader',
        kubernetes: { allowedNamespaces: 'apps', allowedNames: 'reloader' },
      },
    ],
  });
}
