/**
 * `run --once` end to end: the built CLI as a real process, against the local
 * Infisical-compatible server, with Kubernetes auth through a service-account token file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { assertNoSecrets, runCli, startInfisical, tempDir } from '../helpers/harness.js';

const CANARY_PASSWORD = 'canary-pw-7f3a9c21e4';
const CANARY_KEY = 'canary-api-5b8d0e6f12';

const SEED = `
projects:
  - id: proj-once
    name: Once
    environments:
      - slug: prod
        name: Production
        folders:
          /:
            DB_USER: app
            DB_PASSWORD: ${CANARY_PASSWORD}
          /api:
            API_KEY: ${CANARY_KEY}
identities:
  - id: ident-1
    name: reloader
    kubernetes: { allowedNamespaces: "apps", allowedNames: "reloader" }
`;

interface Fixture {
  dir: string;
  spec: string;
  saToken: string;
  local: Awaited<ReturnType<typeof startInfisical>>;
  env: NodeJS.ProcessEnv;
}

async function fixture(t: Parameters<typeof tempDir>[0], targetsYaml?: string): Promise<Fixture> {
  const dir = await tempDir(t);
  const local = await startInfisical(t, SEED);
  const saToken = local.mintServiceAccountToken({ namespace: 'apps', name: 'reloader' });
  await writeFile(join(dir, 'sa-token'), saToken, { mode: 0o600 });
  await mkdir(join(dir, 'tpl'));
  await writeFile(
    join(dir, 'tpl', 'userlist.txt.hbs'),
    '"{{secrets.DB_USER}}" "{{secrets.DB_PASSWORD}}"\n',
  );
  await writeFile(join(dir, 'tpl', 'api.env.hbs'), 'API_KEY={{secret "API_KEY"}}\n');
  const spec = join(dir, 'reloader.yaml');
  await writeFile(
    spec,
    `infisical:
  url: ${local.url}
  auth:
    kubernetes:
      identityId: ident-1
      tokenPath: sa-token
  timeout: 2s
sources:
  - projectId: proj-once
    environment: prod
    path: /
  - projectId: proj-once
    environment: prod
    path: /api
targets:
${
  targetsYaml ??
  `  - name: db
    files:
      - template: tpl/userlist.txt.hbs
        destination: out/userlist.txt
    reload:
      command: [sh, -c, 'echo db >> "$0"', ${join(dir, 'reloads.log')}]
  - name: api
    files:
      - template: tpl/api.env.hbs
        destination: out/api.env
        mode: "0644"
    reload:
      command: [sh, -c, 'echo api >> "$0"', ${join(dir, 'reloads.log')}]`
}
`,
  );
  return { dir, spec, saToken, local, env: {} };
}

async function reloadLog(dir: string): Promise<string[]> {
  try {
    return (await readFile(join(dir, 'reloads.log'), 'utf8')).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

test('--once renders every target, sets modes, runs each reload once, exits 0; a second run changes nothing', async (t) => {
  const f = await fixture(t);
  const run = await runCli(['run', '--once', '--config', f.spec]);
  assert.equal(run.code, 0, `exit code; stderr: ${run.stderr.slice(-2000)}`);
  assert.equal(
    await readFile(join(f.dir, 'out/userlist.txt'), 'utf8'),
    `"app" "${CANARY_PASSWORD}"\n`,
  );
  assert.equal(await readFile(join(f.dir, 'out/api.env'), 'utf8'), `API_KEY=${CANARY_KEY}\n`);
  assert.equal((await stat(join(f.dir, 'out/userlist.txt'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(f.dir, 'out/api.env'))).mode & 0o777, 0o644);
  assert.deepEqual((await reloadLog(f.dir)).sort(), ['api', 'db']);
  const logins = f.local.requests.filter((r) => r.route.includes('kubernetes-auth/login'));
  assert.equal(logins.length, 1, 'one Kubernetes login');
  assert.equal(
    f.local.requests.filter((r) => r.route.startsWith('GET /api/v4/secrets')).length,
    2,
    'one listing per source',
  );

  const inode = (await stat(join(f.dir, 'out/userlist.txt'))).ino;
  const again = await runCli(['run', '--once', '--config', f.spec]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual((await reloadLog(f.dir)).sort(), ['api', 'db'], 'unchanged output: no reload');
  assert.equal(
    (await stat(join(f.dir, 'out/userlist.txt'))).ino,
    inode,
    'unchanged output: no write',
  );

  // rotate, run again: only the changed target is written and reloaded
  f.local.setSecret({
    projectId: 'proj-once',
    environment: 'prod',
    path: '/',
    key: 'DB_PASSWORD',
    value: 'rotated-pw-0c1d2e3f',
  });
  const third = await runCli(['run', '--once', '--config', f.spec]);
  assert.equal(third.code, 0, third.stderr);
  assert.equal(
    await readFile(join(f.dir, 'out/userlist.txt'), 'utf8'),
    `"app" "rotated-pw-0c1d2e3f"\n`,
  );
  assert.deepEqual((await reloadLog(f.dir)).sort(), ['api', 'db', 'db']);
  assertNoSecrets(
    [run.stdout, run.stderr, again.stdout, again.stderr, third.stdout, third.stderr],
    [CANARY_PASSWORD, CANARY_KEY, 'rotated-pw-0c1d2e3f', f.saToken],
  );
});

test('--once exits 2 on a template error before any network call', async (t) => {
  const f = await fixture(t);
  await writeFile(join(f.dir, 'tpl', 'api.env.hbs'), 'API_KEY={{#if}}\n');
  const run = await runCli(['run', '--once', '--config', f.spec]);
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /RLD_ERR_TEMPLATE/);
  assert.match(run.stderr, /api\.env\.hbs/);
  assert.equal(f.local.requests.length, 0, 'no request reached Infisical');
});

test('--once exits 2 on a spec error naming file, YAML path and line', async (t) => {
  const f = await fixture(t);
  const text = await readFile(f.spec, 'utf8');
  await writeFile(f.spec, text.replace('  timeout: 2s', '  timeout: 2s\n  retries: 3'));
  const run = await runCli(['run', '--once', '--config', f.spec]);
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /reloader\.yaml:8: infisical\.retries: unknown key/);
  assert.equal(f.local.requests.length, 0);
});

test('--once exits 1 on a missing key and keeps the old file; other targets still commit', async (t) => {
  const f = await fixture(t);
  assert.equal((await runCli(['run', '--once', '--config', f.spec])).code, 0);
  await writeFile(
    join(f.dir, 'tpl', 'userlist.txt.hbs'),
    '"{{secrets.DB_USER}}" "{{secrets.DB_PASSWORD_TYPO}}"\n',
  );
  await writeFile(join(f.dir, 'tpl', 'api.env.hbs'), 'API_KEY={{secret "API_KEY"}}\n# v2\n');
  const run = await runCli(['run', '--once', '--config', f.spec]);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /DB_PASSWORD_TYPO/);
  assert.equal(
    await readFile(join(f.dir, 'out/userlist.txt'), 'utf8'),
    `"app" "${CANARY_PASSWORD}"\n`,
    'old file kept',
  );
  assert.match(
    await readFile(join(f.dir, 'out/api.env'), 'utf8'),
    /# v2/,
    'the other target was committed',
  );
  assertNoSecrets([run.stdout, run.stderr], [CANARY_PASSWORD, CANARY_KEY, f.saToken]);
});

test('--once exits 1 when the service account is not allowed, naming the cause, leaking no token', async (t) => {
  const f = await fixture(t);
  const wrong = f.local.mintServiceAccountToken({ namespace: 'other', name: 'reloader' });
  await writeFile(join(f.dir, 'sa-token'), wrong);
  const run = await runCli(['run', '--once', '--config', f.spec]);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /K8s namespace not allowed/);
  assertNoSecrets([run.stdout, run.stderr], [wrong, f.saToken, CANARY_PASSWORD]);
});

test('--once exits 1 when Infisical keeps failing, after bounded retries, writing nothing', async (t) => {
  const f = await fixture(t);
  f.local.faults.add({ route: 'GET /api/v4/secrets', status: 503, times: Infinity });
  const started = Date.now();
  const run = await runCli(['run', '--once', '--config', f.spec], { timeoutMs: 60_000 });
  assert.equal(run.code, 1, run.stderr);
  assert.ok(Date.now() - started < 45_000, 'retries are bounded');
  const listings = f.local.requests.filter((r) => r.route.startsWith('GET /api/v4/secrets'));
  assert.ok(listings.length >= 2, `retried (saw ${listings.length} listing requests)`);
  await assert.rejects(stat(join(f.dir, 'out/userlist.txt')), { code: 'ENOENT' });
});

test('--once: a failing check rolls the files back and exits 1', async (t) => {
  const f = await fixture(
    t,
    `  - name: checked
    files:
      - contents: "password={{secrets.DB_PASSWORD}}\\n"
        destination: out/checked.conf
    check:
      command: [sh, -c, 'grep -q rotated "$0"', out/checked.conf]
      timeout: 5s`,
  );
  await mkdir(join(f.dir, 'out'));
  await writeFile(join(f.dir, 'out/checked.conf'), 'password=previous-good\n', { mode: 0o600 });
  const run = await runCli(['run', '--once', '--config', f.spec]);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /RLD_ERR_CHECK/);
  assert.equal(await readFile(join(f.dir, 'out/checked.conf'), 'utf8'), 'password=previous-good\n');
  assertNoSecrets([run.stdout, run.stderr], [CANARY_PASSWORD]);
});
