/**
 * examples/node-app as a real process against real PostgreSQL, with its shipped subscriber.yaml
 * (only `${VAR}` overrides from the environment): the app holds a `pg` pool built from
 * DATABASE_URL by the library's SecretSubscriber. While four query loops run against the app,
 * the role's password is rotated the way Infisical's rotation does it — ALTER ROLE, then the
 * secret changed in Infisical, which sends a signed webhook to the app. The app opens a new pool,
 * drains the old one, and no query fails after the switch (none fails before it either: the
 * sessions opened with the old password stay authenticated); the old password is refused for
 * new connections; no secret reaches the app's output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { assertNoSecrets, repoRoot, startInfisical, tempDir, waitFor } from '../helpers/harness.js';
import {
  freePort,
  psql,
  requireBinaries,
  requireRoot,
  seedYaml,
  startApp,
  startPostgres,
} from './helpers.js';

const WEBHOOK_SECRET = 'canary-e2e-node-app-webhook-5d1c';
const PROJECT = 'proj-node';
const ENV = 'prod';
const IDENTITY = 'ident-node';

interface QueryAnswer {
  user?: string;
  generation?: number;
  error?: string;
}

test('node-app: a rotated DATABASE_URL switches the pg pool with no failed query; the old password is refused', async (t) => {
  const bins = requireBinaries(t, ['initdb', 'pg_ctl', 'psql', 'runuser']);
  if (!bins || !requireRoot(t)) return;
  const b = bins as Record<'initdb' | 'pg_ctl' | 'psql' | 'runuser', string>;
  const pw1 = `canary-node-pw1-${randomBytes(6).toString('hex')}`;
  const pw2 = `canary-node-pw2-${randomBytes(6).toString('hex')}`;

  const pg = await startPostgres(t, b);
  const setup = await psql(b.psql, pg.admin, `create role app login password '${pw1}';\n`);
  assert.equal(setup.code, 0, setup.stderr);
  const db = await psql(b.psql, pg.admin, 'create database appdb owner app;\n');
  assert.equal(db.code, 0, db.stderr);
  const urlOf = (pw: string) => `postgres://app:${pw}@127.0.0.1:${pg.port}/appdb`;
  const tcp = (password: string) => ({
    host: '127.0.0.1',
    port: pg.port,
    user: 'app',
    dbname: 'appdb',
    password,
  });

  const dir = await tempDir(t, 'rld-e2e-node-app-');
  const local = await startInfisical(
    t,
    seedYaml({
      projectId: PROJECT,
      environment: ENV,
      identityId: IDENTITY,
      secrets: { DATABASE_URL: urlOf(pw1) },
    }),
    { webhookDelayMs: 20 },
  );
  await writeFile(
    join(dir, 'sa-token'),
    local.mintServiceAccountToken({ namespace: 'apps', name: 'reloader' }),
    { mode: 0o600 },
  );
  await writeFile(join(dir, 'webhook-secret'), `${WEBHOOK_SECRET}\n`, { mode: 0o600 });
  const webhookPort = await freePort();

  const { app, base } = await startApp(
    t,
    process.execPath,
    [join(repoRoot, 'examples', 'node-app', 'app.mjs')],
    {
      cwd: dir,
      env: {
        PATH: process.env.PATH,
        RELOADER_CONFIG: join(repoRoot, 'examples', 'node-app', 'subscriber.yaml'),
        INFISICAL_API_URL: local.url,
        INFISICAL_IDENTITY_ID: IDENTITY,
        INFISICAL_TOKEN_PATH: join(dir, 'sa-token'),
        INFISICAL_PROJECT_ID: PROJECT,
        INFISICAL_ENVIRONMENT: ENV,
        RELOADER_LISTEN: `127.0.0.1:${webhookPort}`,
        RELOADER_WEBHOOK_SECRET_FILE: join(dir, 'webhook-secret'),
        PORT: '0',
      },
      what: 'the node app to listen',
      timeoutMs: 20_000,
    },
  );
  const query = async (): Promise<QueryAnswer & { status: number }> => {
    const res = await request(`${base}/query`);
    return { status: res.statusCode, ...((await res.body.json()) as QueryAnswer) };
  };
  const first = await query();
  assert.equal(first.status, 200, JSON.stringify(first));
  assert.deepEqual([first.user, first.generation], ['app', 1]);

  // four query loops, each answer stamped with the time it came back
  const answers: Array<{ atMs: number; ok: boolean; generation?: number; error?: string }> = [];
  let looping = true;
  const loop = async () => {
    while (looping) {
      try {
        const a = await query();
        answers.push({
          atMs: Date.now(),
          ok: a.status === 200,
          generation: a.generation,
          error: a.error,
        });
      } catch (err) {
        answers.push({ atMs: Date.now(), ok: false, error: (err as Error).message });
      }
    }
  };
  const loops = [loop(), loop(), loop(), loop()];
  t.after(async () => {
    looping = false;
    await Promise.allSettled(loops);
  });
  await waitFor(() => answers.length > 50, { what: 'the query loops running' });

  // the rotation: PostgreSQL first, then Infisical (which sends the signed webhook)
  local.addWebhook({
    projectId: PROJECT,
    environment: ENV,
    secretPath: '/**',
    url: `http://127.0.0.1:${webhookPort}/infisical/webhook`,
    secretKey: WEBHOOK_SECRET,
  });
  const rotatedAt = Date.now();
  const alter = await psql(b.psql, pg.admin, `alter role app password '${pw2}';\n`);
  assert.equal(alter.code, 0, alter.stderr);
  local.setSecret({
    projectId: PROJECT,
    environment: ENV,
    path: '/',
    key: 'DATABASE_URL',
    value: urlOf(pw2),
  });

  const switchedAt = await waitFor(
    async () => {
      const res = await request(`${base}/status`);
      const s = (await res.body.json()) as { generation: number; switchedAt?: string };
      return s.generation === 2 && s.switchedAt !== undefined
        ? Date.parse(s.switchedAt)
        : undefined;
    },
    { what: 'the pool switched to generation 2', timeoutMs: 15_000 },
  );
  t.diagnostic(`ALTER ROLE + Infisical change → new pool in use: ${switchedAt - rotatedAt} ms`);
  // keep querying a while on the new pool
  const countAfter = answers.length;
  await waitFor(() => answers.length > countAfter + 200, { what: 'queries after the switch' });
  looping = false;
  await Promise.all(loops);

  const failed = answers.filter((a) => !a.ok);
  const after = answers.filter((a) => a.atMs > switchedAt);
  assert.deepEqual(
    failed.filter((a) => a.atMs > switchedAt),
    [],
    'no failed query after the switch',
  );
  assert.deepEqual(failed, [], 'no failed query at all (old sessions stay authenticated)');
  assert.ok(after.length >= 200, `${after.length} queries after the switch`);
  assert.equal(after.at(-1)?.generation, 2, 'the last answers come from the new pool');
  t.diagnostic(
    `${answers.length} queries, ${after.length} after the switch, ${failed.length} failed`,
  );

  // the old pool was drained: no backend of generation 1 is left
  await waitFor(
    async () => {
      const r = await psql(
        b.psql,
        pg.admin,
        "select count(*) from pg_stat_activity where application_name = 'node-app-gen-1';\n",
      );
      return r.code === 0 && r.stdout.trim() === '0';
    },
    { what: 'the old pool closed its connections' },
  );
  const oldRefused = await psql(b.psql, tcp(pw1), 'select 1;\n');
  assert.notEqual(oldRefused.code, 0, 'the old password is refused');
  assert.match(oldRefused.stderr, /password authentication failed/);
  const newWorks = await psql(b.psql, tcp(pw2), 'select 1;\n');
  assert.equal(newWorks.code, 0, newWorks.stderr);

  assert.match(app.output(), /pool switched to generation 2/);
  assertNoSecrets([app.output()], [pw1, pw2, WEBHOOK_SECRET]);
});
