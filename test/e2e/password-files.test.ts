/**
 * Password hashes rendered for real software, from the shipped templates:
 *  - nginx `auth_basic` reading an htpasswd file rendered with `htpasswd` (bcrypt): after a
 *    rotation the new password is accepted and the old one refused, with no reload at all (nginx
 *    reads the file on every request: the same worker serves before and after);
 *  - PostgreSQL: a role's password set from a `scramSha256` verifier rendered to SQL and applied
 *    by a `command` reload (psql -f): the new password logs in, the old one fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertNoSecrets, repoRoot, waitFor } from '../helpers/harness.js';
import {
  childrenOf,
  freePort,
  nginxConf,
  psql,
  requireBinaries,
  requireBinary,
  requireRoot,
  selfSigned,
  startNginx,
  startPostgres,
  waitForSingleWorker,
  type Conn,
} from './helpers.js';
import { startFilesRig } from './files-rig.js';

/** GET https://127.0.0.1:port/ with basic auth; the status code. */
function basicAuthGet(port: number, user: string, password: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        rejectUnauthorized: false,
        agent: false,
        headers: {
          authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
        },
        timeout: 3000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

test('nginx auth_basic with a bcrypt htpasswd file: new password accepted, old refused, no reload', async (t) => {
  const nginx = requireBinary(t, 'nginx');
  if (!nginx || !requireRoot(t)) return;
  const pw1 = `canary-basic1-${randomBytes(6).toString('hex')}`;
  const pw2 = `canary-basic2-${randomBytes(6).toString('hex')}`;
  const port = await freePort();
  const rig = await startFilesRig(
    t,
    { BASIC_AUTH_USER: 'alice', BASIC_AUTH_PASSWORD: pw1 },
    () => `  - name: htpasswd
    files:
      - template: ${join(repoRoot, 'templates/nginx/htpasswd.hbs')}
        destination: auth/htpasswd
        mode: "0640"
        gid: 65534
`,
  );
  const { dir } = rig;
  const line = await readFile(join(dir, 'auth/htpasswd'), 'utf8');
  assert.match(line, /^alice:\$2y\$10\$[./A-Za-z0-9]{53}\n$/);
  assert.equal((await stat(join(dir, 'auth/htpasswd'))).mode & 0o777, 0o640);

  const tls = await selfSigned(dir, 'localhost');
  await writeFile(join(dir, 'tls.crt'), tls.cert);
  await writeFile(join(dir, 'tls.key'), tls.key);
  for (const sub of ['logs', 'tmp', 'conf.d', 'html'])
    await mkdir(join(dir, sub), { recursive: true });
  await writeFile(join(dir, 'html/index.html'), 'ok\n', { mode: 0o644 });
  await writeFile(
    join(dir, 'conf.d/auth.conf'),
    `server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${dir}/tls.crt;
    ssl_certificate_key ${dir}/tls.key;
    location / {
        auth_basic "reloader";
        auth_basic_user_file ${dir}/auth/htpasswd;
        root ${dir}/html; # not \`return\`: it runs before the access phase
    }
}
`,
  );
  // workers run as nobody:nogroup (gid 65534): the file's group lets them read it, and the
  // folders above it must let them through
  for (const d of [dir, join(dir, 'auth'), join(dir, 'html')]) await chmod(d, 0o711);
  await writeFile(join(dir, 'nginx.conf'), nginxConf(dir, `${dir}/conf.d/auth.conf`));
  const server = await startNginx(t, nginx, dir, port);
  const worker = await waitForSingleWorker(server.pid);
  const errors = () => readFile(join(dir, 'logs/error.log'), 'utf8').catch(() => '');
  assert.equal(await basicAuthGet(port, 'alice', pw1), 200, `pw1 accepted; ${await errors()}`);
  assert.equal(await basicAuthGet(port, 'alice', pw2), 401, 'pw2 not yet');

  const started = performance.now();
  rig.rotate({ BASIC_AUTH_PASSWORD: pw2 });
  await waitFor(async () => (await basicAuthGet(port, 'alice', pw2)) === 200, {
    what: 'nginx to accept pw2',
    timeoutMs: 15_000,
    intervalMs: 20,
  });
  t.diagnostic(`rotation → pw2 accepted by nginx: ${(performance.now() - started).toFixed(0)} ms`);
  assert.equal(await basicAuthGet(port, 'alice', pw1), 401, 'pw1 refused after the rotation');
  assert.deepEqual(childrenOf(server.pid), [worker], 'the same worker: nginx was not reloaded');
  const errorLog = await readFile(join(dir, 'logs/error.log'), 'utf8');
  assert.doesNotMatch(errorLog, /reconfiguring|signal 1 \(SIGHUP\)/, 'no reload in the error log');

  const state = await rig.daemon.target('htpasswd');
  assert.equal(state?.lastStatus, 'committed');
  assert.equal(state?.lastReload, undefined, 'the target has no reload');
  const output = await rig.daemon.stop();
  assertNoSecrets([output, JSON.stringify(state)], [pw1, pw2, ...rig.canaries]);
});

test('PostgreSQL: a role password set from a scramSha256 verifier by a psql -f reload', async (t) => {
  const bins = requireBinaries(t, ['initdb', 'pg_ctl', 'psql', 'runuser']);
  if (!bins || !requireRoot(t)) return;
  const b = bins as Record<'initdb' | 'pg_ctl' | 'psql' | 'runuser', string>;
  const pw1 = `canary-scram1-${randomBytes(6).toString('hex')}`;
  const pw2 = `canary-scram2-${randomBytes(6).toString('hex')}`;
  const pg = await startPostgres(t, b);
  const setup = await psql(b.psql, pg.admin, 'create role app login;\n');
  assert.equal(setup.code, 0, setup.stderr);
  const reload = [b.psql, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', pg.dir, '-p', String(pg.port)];
  const rig = await startFilesRig(
    t,
    { DB_USER: 'app', DB_PASSWORD: pw1 },
    (dir) => `  - name: pg-role
    files:
      - template: ${join(repoRoot, 'templates/postgresql/role-password.sql.hbs')}
        destination: ${dir}/sql/role-password.sql
    reload:
      command: ${JSON.stringify([...reload, '-U', 'postgres', '-d', 'postgres', '-f', `${dir}/sql/role-password.sql`])}
`,
  );
  const sql = await readFile(join(rig.dir, 'sql/role-password.sql'), 'utf8');
  assert.match(sql, /^ALTER ROLE "app" PASSWORD 'SCRAM-SHA-256\$4096:[^']+';\n$/);
  assert.doesNotMatch(sql, new RegExp(pw1), 'the file holds the verifier, not the password');
  const stored = await psql(
    b.psql,
    pg.admin,
    "select rolpassword from pg_authid where rolname = 'app';\n",
  );
  assert.equal(
    stored.stdout.trim(),
    /'([^']+)'/.exec(sql)?.[1],
    'PostgreSQL stores the verifier as it is',
  );

  const login = (password: string): Conn => ({
    host: '127.0.0.1',
    port: pg.port,
    user: 'app',
    dbname: 'postgres',
    password,
  });
  const first = await psql(b.psql, login(pw1), 'select current_user;\n');
  assert.equal(first.code, 0, `pw1 logs in over SCRAM: ${first.stderr}`);
  assert.equal(first.stdout.trim(), 'app');

  rig.rotate({ DB_PASSWORD: pw2 });
  let last = '';
  await waitFor(
    async () => {
      const res = await psql(b.psql, login(pw2), 'select 1;\n');
      last = res.stderr.trim();
      return res.code === 0;
    },
    { what: 'pw2 to log in', timeoutMs: 15_000, intervalMs: 50 },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; psql said: ${last}`);
  });
  const old = await psql(b.psql, login(pw1), 'select 1;\n');
  assert.notEqual(old.code, 0, 'pw1 is refused after the rotation');
  assert.match(old.stderr, /password authentication failed/);
  const state = await rig.daemon.target('pg-role');
  assert.equal(state?.lastReload?.status, 'ok');
  const metrics = await rig.daemon.metrics();
  assert.match(metrics, /reloader_reloads_total\{target="pg-role",outcome="ok"\} 2\b/);
  const pgLog = await readFile(join(pg.dir, 'postgres.log'), 'utf8').catch(() => '');
  const output = await rig.daemon.stop();
  assertNoSecrets([output, JSON.stringify(state), metrics, pgLog], [pw1, pw2, ...rig.canaries]);
});
