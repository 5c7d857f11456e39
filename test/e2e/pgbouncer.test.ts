/**
 * Real PostgreSQL 15 behind real pgbouncer, with pgbouncer.ini and userlist.txt rendered by the
 * reloader daemon (a real process, running as root) from the shipped templates, owned by the
 * postgres user that pgbouncer runs as. A password rotation goes: ALTER ROLE in PostgreSQL, then
 * the secret in (local) Infisical → signed webhook → userlist re-rendered → SIGHUP to pgbouncer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertNoSecrets, repoRoot, startInfisical, tempDir, waitFor } from '../helpers/harness.js';
import {
  freePort,
  isAlive,
  logTimeline,
  openSession,
  postgresDir,
  postgresIds,
  psql,
  requireBinaries,
  requireRoot,
  seedYaml,
  specHeader,
  startDaemon,
  startPgbouncer,
  startPostgres,
  type Conn,
} from './helpers.js';

const WEBHOOK_SECRET = 'canary-e2e-pgb-webhook-77f0aa';
const PROJECT = 'proj-pgb';
const ENV = 'prod';

test('pgbouncer: a rotated password reaches userlist.txt and pgbouncer by SIGHUP; old sessions survive', async (t) => {
  const bins = requireBinaries(t, ['pgbouncer', 'initdb', 'pg_ctl', 'psql', 'runuser']);
  if (!bins || !requireRoot(t)) return;
  const b = bins as Record<'pgbouncer' | 'initdb' | 'pg_ctl' | 'psql' | 'runuser', string>;
  // random per run, so a leak can't hide behind a value that happens to be printed elsewhere
  const pw1 = `canary-pw1-${randomBytes(6).toString('hex')}`;
  const pw2 = `canary-pw2-${randomBytes(6).toString('hex')}`;
  const adminPw = `canary-adm-${randomBytes(6).toString('hex')}`;

  const pg = await startPostgres(t, b);
  const setup = await psql(b.psql, pg.admin, `create role app login password '${pw1}';\n`);
  assert.equal(setup.code, 0, setup.stderr);
  // CREATE DATABASE cannot run in a transaction block: a separate psql
  const db = await psql(b.psql, pg.admin, 'create database appdb owner app;\n');
  assert.equal(db.code, 0, db.stderr);

  const bouncerDir = await postgresDir(t, 'rld-e2e-pgb-');
  const bouncerPort = await freePort();
  const { uid, gid } = await postgresIds();
  const local = await startInfisical(
    t,
    seedYaml({
      projectId: PROJECT,
      environment: ENV,
      identityId: 'ident-pgb',
      secrets: {
        DB_HOST: '127.0.0.1',
        DB_PORT: String(pg.port),
        DB_NAME: 'appdb',
        DB_USER: 'app',
        DB_PASSWORD: pw1,
        PGBOUNCER_ADMIN_USER: 'pgbadmin',
        PGBOUNCER_ADMIN_PASSWORD: adminPw,
      },
    }),
    { webhookDelayMs: 20 },
  );
  const dir = await tempDir(t, 'rld-e2e-pgb-daemon-');
  const saToken = local.mintServiceAccountToken({ namespace: 'apps', name: 'reloader' });
  await writeFile(join(dir, 'sa-token'), saToken, { mode: 0o600 });
  await writeFile(join(dir, 'webhook-secret'), `${WEBHOOK_SECRET}\n`, { mode: 0o600 });
  const tpl = (name: string) => join(repoRoot, 'templates', 'pgbouncer', name);
  const spec = join(dir, 'reloader.yaml');
  await writeFile(
    spec,
    `${specHeader({ url: local.url, identityId: 'ident-pgb', projectId: PROJECT, environment: ENV })}targets:
  - name: pgbouncer
    files:
      - template: ${tpl('pgbouncer.ini.hbs')}
        destination: ${bouncerDir}/pgbouncer.ini
        mode: "0640"
        uid: ${uid}
        gid: ${gid}
      - template: ${tpl('userlist.txt.hbs')}
        destination: ${bouncerDir}/userlist.txt
        mode: "0600"
        uid: ${uid}
        gid: ${gid}
    reload: { signal: HUP, pidFile: ${bouncerDir}/pgbouncer.pid }
`,
  );

  const daemon = await startDaemon(t, spec, {
    PGBOUNCER_DIR: bouncerDir,
    PGBOUNCER_LISTEN_ADDR: '127.0.0.1',
    PGBOUNCER_LISTEN_PORT: String(bouncerPort),
  });
  for (const [file, mode] of [
    ['pgbouncer.ini', 0o640],
    ['userlist.txt', 0o600],
  ] as const) {
    const st = await stat(join(bouncerDir, file));
    assert.equal(st.mode & 0o777, mode, `${file} mode`);
    assert.equal(st.uid, uid, `${file} owned by postgres`);
    assert.equal(st.gid, gid, `${file} group postgres`);
  }
  assert.equal(
    (await daemon.target('pgbouncer'))?.lastReload?.status,
    'skipped',
    'no pgbouncer yet: the first reload is skipped',
  );

  const viaBouncer = (password: string): Conn => ({
    host: '127.0.0.1',
    port: bouncerPort,
    user: 'app',
    dbname: 'appdb',
    password,
  });

  const bouncer = await startPgbouncer(t, b, bouncerDir, viaBouncer(pw1));
  const admin: Conn = { ...viaBouncer(adminPw), user: 'pgbadmin', dbname: 'pgbouncer' };
  const pools = await psql(b.psql, admin, 'show pools;\n');
  assert.equal(pools.code, 0, `the admin user from userlist.txt logs in: ${pools.stderr}`);

  // a session opened before the rotation
  const session = await openSession(t, b.psql, viaBouncer(pw1));
  const backend = await session.query('select pg_backend_pid();');
  assert.match(backend, /^\d+$/);

  local.addWebhook({
    projectId: PROJECT,
    environment: ENV,
    secretPath: '/**',
    url: `${daemon.url}/infisical/webhook`,
    secretKey: WEBHOOK_SECRET,
  });
  const alter = await psql(b.psql, pg.admin, `alter role app password '${pw2}';\n`);
  assert.equal(alter.code, 0, alter.stderr);
  const started = performance.now();
  const startedWall = Date.now();
  local.setSecret({
    projectId: PROJECT,
    environment: ENV,
    path: '/',
    key: 'DB_PASSWORD',
    value: pw2,
  });
  // Before the re-render, a pw2 login fails at pgbouncer's client auth (no server login is
  // attempted, so server_login_retry never kicks in): polling is safe.
  let last = '';
  await waitFor(
    async () => {
      const res = await psql(b.psql, viaBouncer(pw2), 'select 1;\n');
      last = res.stderr.trim();
      return res.code === 0 && res.stdout.trim() === '1';
    },
    { what: 'a login with pw2 through pgbouncer', timeoutMs: 15_000, intervalMs: 10 },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; psql said: ${last}`);
  });
  const elapsed = performance.now() - started;
  t.diagnostic(
    `setSecret → first successful pw2 login through pgbouncer: ${elapsed.toFixed(0)} ms`,
  );
  t.diagnostic(
    `daemon timeline: ${logTimeline(daemon.proc.output().stderr, startedWall, ['webhook', 'secrets fetched', 'files committed', 'reloaded'])}`,
  );

  const old = await psql(b.psql, viaBouncer(pw1), 'select 1;\n');
  assert.notEqual(old.code, 0, 'pw1 is refused after the rotation');
  assert.match(old.stderr, /SASL authentication failed|password authentication failed/);
  assert.equal(
    await session.query('select pg_backend_pid();'),
    backend,
    'the session opened before the rotation runs queries on the same backend',
  );
  assert.equal(await session.query('select 40 + 2;'), '42');
  assert.ok(isAlive(bouncer.pid), 'pgbouncer was reloaded, not restarted');
  assert.equal(
    Number((await readFile(join(bouncerDir, 'pgbouncer.pid'), 'utf8')).trim()),
    bouncer.pid,
  );
  const log = await bouncer.log();
  assert.equal(log.match(/got SIGHUP, re-reading config/g)?.length, 1, 'one SIGHUP');
  assert.equal(
    await readFile(join(bouncerDir, 'userlist.txt'), 'utf8'),
    `"app" "${pw2}"\n"pgbadmin" "${adminPw}"\n`,
  );
  const state = await daemon.target('pgbouncer');
  assert.equal(state?.lastStatus, 'committed');
  assert.equal(state?.lastReload?.status, 'ok');
  const metrics = await daemon.metrics();
  assert.match(metrics, /reloader_reloads_total\{target="pgbouncer",outcome="ok"\} 1\b/);

  await session.close();
  const output = await daemon.stop();
  assertNoSecrets(
    [output, JSON.stringify(state), metrics],
    [pw1, pw2, adminPw, WEBHOOK_SECRET, saToken],
  );
});
