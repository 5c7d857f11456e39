/**
 * PostgreSQL 15 and pgbouncer as real processes for the e2e tests. Both refuse to
 * run as root, so they run as Debian's `postgres` user through `runuser -u postgres --` (the
 * tests run as root). Each helper owns a temp dir (owned by postgres, 0700), stops its process
 * by pid in `t.after` and then removes the dir.
 *
 * psql is the client: passwords go through PGPASSWORD and SQL through stdin, never argv.
 */
import { spawn } from 'node:child_process';
import { chown, chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { waitFor } from '../helpers/harness.js';
import { freePort, run, spawnCollect, stopPid, waitForExit, type RunResult } from './process.js';

/** uid and gid of Debian's `postgres` user (from `id`). */
export async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  assert.ok(uid > 0 && gid > 0, 'the postgres user exists');
  return { uid, gid };
}

async function makePostgresDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const { uid, gid } = await postgresIds();
  await chown(dir, uid, gid);
  await chmod(dir, 0o700);
  return dir;
}

/**
 * A temp dir owned by postgres, mode 0700, removed after the test. Removing it while a process
 * still runs in it is harmless: processes are stopped by pid, not through files in it.
 */
export async function postgresDir(t: TestContext, prefix: string): Promise<string> {
  const dir = await makePostgresDir(prefix);
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const AS_POSTGRES = ['-u', 'postgres', '--'];

export interface Conn {
  host: string;
  port: number;
  user: string;
  dbname: string;
  password?: string;
}

function connString(c: Conn): string {
  return `host=${c.host} port=${c.port} user=${c.user} dbname=${c.dbname}`;
}

function psqlEnv(c: Conn): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, PGCONNECT_TIMEOUT: '3' };
  if (c.password !== undefined) env.PGPASSWORD = c.password;
  return env;
}

/** Run `sql` (stdin) with psql over `conn`; unaligned, tuples only, stop on the first error. */
export function psql(psqlBin: string, conn: Conn, sql: string): Promise<RunResult> {
  return run(psqlBin, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', connString(conn)], {
    env: psqlEnv(conn),
    input: sql,
    timeoutMs: 10_000,
  });
}

export interface Postgres {
  port: number;
  dir: string;
  /** The superuser over the Unix socket (trust): for setup and ALTER ROLE. */
  admin: Conn;
}

/**
 * initdb a fresh cluster (scram-sha-256 over TCP, trust on the socket, fsync off: it is a
 * throwaway), start it on a free 127.0.0.1 port with its socket in the temp dir. Stopped with
 * `pg_ctl stop -m fast` in `t.after`.
 */
export async function startPostgres(
  t: TestContext,
  bins: { initdb: string; pg_ctl: string; runuser: string },
): Promise<Postgres> {
  const dir = await makePostgresDir('rld-e2e-pg-');
  const data = join(dir, 'data');
  const port = await freePort();
  let started = false;
  t.after(async () => {
    if (started) {
      const res = await run(bins.runuser, [
        ...AS_POSTGRES,
        bins.pg_ctl,
        '-D',
        data,
        '-m',
        'fast',
        '-w',
        '-t',
        '10',
        'stop',
      ]);
      if (res.code !== 0) {
        const pid = Number(
          (await readFile(join(data, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0],
        );
        if (pid > 0) await stopPid(pid, 'SIGKILL', 2000);
      }
    }
    await rm(dir, { recursive: true, force: true });
  });
  const init = await run(bins.runuser, [
    ...AS_POSTGRES,
    bins.initdb,
    '-D',
    data,
    '-N',
    '-U',
    'postgres',
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
  ]);
  assert.equal(init.code, 0, `initdb failed: ${init.stderr}`);
  started = true;
  const start = await run(bins.runuser, [
    ...AS_POSTGRES,
    bins.pg_ctl,
    '-D',
    data,
    '-l',
    join(dir, 'postgres.log'),
    '-w',
    '-t',
    '20',
    '-o',
    `-c listen_addresses=127.0.0.1 -p ${port} -c unix_socket_directories=${dir} -c fsync=off`,
    'start',
  ]);
  const log = await readFile(join(dir, 'postgres.log'), 'utf8').catch(() => '');
  assert.equal(start.code, 0, `pg_ctl start failed: ${start.stderr} ${log.slice(-1000)}`);
  return { port, dir, admin: { host: dir, port, user: 'postgres', dbname: 'postgres' } };
}

export interface Pgbouncer {
  pid: number;
  log(): Promise<string>;
}

/**
 * Start pgbouncer as postgres in the foreground (our child is runuser; pgbouncer's own pid is
 * read from its pid file, the one the reloader signals) and wait until `port` accepts a login
 * by `probe`. Stopped in `t.after` with SIGTERM (immediate shutdown) to that pid.
 */
export async function startPgbouncer(
  t: TestContext,
  bins: { pgbouncer: string; runuser: string; psql: string },
  dir: string,
  probe: Conn,
): Promise<Pgbouncer> {
  const proc = spawnCollect(bins.runuser, [
    ...AS_POSTGRES,
    bins.pgbouncer,
    join(dir, 'pgbouncer.ini'),
  ]);
  let pid = 0;
  t.after(async () => {
    if (pid > 0) await stopPid(pid, 'SIGTERM', 5000);
    else if (proc.child.pid !== undefined) await stopPid(proc.child.pid, 'SIGTERM', 2000);
    await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 3000))]);
  });
  pid = await waitFor(
    async () => {
      if (proc.child.exitCode !== null) {
        throw new Error(`pgbouncer exited ${proc.child.exitCode}: ${proc.output()}`);
      }
      const text = await readFile(join(dir, 'pgbouncer.pid'), 'utf8').catch(() => '');
      return Number(text.trim()) || undefined;
    },
    { what: 'pgbouncer to write its pid file', timeoutMs: 10_000 },
  );
  let last: RunResult | undefined;
  await waitFor(
    async () => {
      last = await psql(bins.psql, probe, 'select 1;');
      return last.code === 0;
    },
    { what: 'pgbouncer to accept a login', timeoutMs: 10_000 },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; psql said: ${last?.stderr}`);
  });
  return { pid, log: () => readFile(join(dir, 'pgbouncer.log'), 'utf8').catch(() => '') };
}

/**
 * A long-lived psql session (one client connection, one server backend in session pooling):
 * commands go in on stdin, one result line comes back per `query`.
 */
export interface PsqlSession {
  query(sql: string): Promise<string>;
  close(): Promise<void>;
}

/** Open a session over `conn`; closed (stdin ended, then killed if needed) in `t.after`. */
export async function openSession(
  t: TestContext,
  psqlBin: string,
  conn: Conn,
): Promise<PsqlSession> {
  const child = spawn(
    psqlBin,
    ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', connString(conn)],
    { env: psqlEnv(conn), stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  const close = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin.end();
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
    if (child.pid !== undefined && child.exitCode === null) {
      child.kill('SIGKILL');
      await waitForExit(child.pid, 2000);
    }
  };
  t.after(close);
  let consumed = 0;
  return {
    async query(sql) {
      const lines = () => out.split('\n').filter(Boolean);
      const before = consumed;
      child.stdin.write(`${sql}\n`);
      const line = await waitFor(
        () => {
          if (child.exitCode !== null) throw new Error(`psql session ended: ${err}`);
          return lines()[before];
        },
        { what: `a result for "${sql}" (stderr: ${err})`, timeoutMs: 5000 },
      );
      consumed = before + 1;
      return line;
    },
    close,
  };
}
