/**
 * The daemon end to end: the built CLI as a real process, the local Infisical-compatible server
 * with its real signed webhooks, Kubernetes auth through a service-account token file.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { adminUrlOf } from '../e2e/daemon.js';
import { signWebhook } from '../../src/events/signature.js';
import {
  assertNoSecrets,
  startCli,
  startInfisical,
  tempDir,
  waitFor,
  type CliProcess,
} from '../helpers/harness.js';
import type { LocalInfisical } from '../../src/dev/local-infisical.js';

const PW1 = 'canary-daemon-pw1-8d7e6f';
const PW2 = 'canary-daemon-pw2-1a2b3c';
const TOKEN_VALUE = 'canary-daemon-tok-9f8e7d';
const WEBHOOK_SECRET = 'canary-webhook-secret-42a1b0c9';

const SEED = `
projects:
  - id: proj-d
    name: Daemon
    environments:
      - slug: prod
        name: Production
        folders:
          /:
            DB_USER: app
            DB_PASSWORD: ${PW1}
            API_TOKEN: ${TOKEN_VALUE}
identities:
  - id: ident-d
    name: reloader
    kubernetes: { allowedNamespaces: "apps", allowedNames: "reloader" }
`;

interface Daemon {
  dir: string;
  spec: string;
  local: LocalInfisical;
  proc: CliProcess;
  url: string;
  saToken: string;
  reloads(): Promise<string[]>;
  post(
    path: string,
    body: string,
    headers?: Record<string, string>,
  ): Promise<{ status: number; json: unknown }>;
  get(path: string): Promise<{ status: number; text: string }>;
  signedEvent(body: object): Promise<{ status: number; json: unknown }>;
  canaries(): string[];
}

async function startDaemon(
  t: TestContext,
  opts: {
    ttl?: number;
    maxTtl?: number;
    wait?: string;
    extraTargets?: string;
    webhookDelayMs?: number;
    infisicalDownAtStart?: boolean;
  } = {},
): Promise<Daemon> {
  const dir = await tempDir(t);
  const local = await startInfisical(t, SEED, {
    webhookDelayMs: opts.webhookDelayMs ?? 20,
    accessTokenTTL: opts.ttl,
    accessTokenMaxTTL: opts.maxTtl,
  });
  if (opts.infisicalDownAtStart) local.faults.add({ route: '*', reset: true, times: Infinity });
  const saToken = local.mintServiceAccountToken({ namespace: 'apps', name: 'reloader' });
  await writeFile(join(dir, 'sa-token'), saToken, { mode: 0o600 });
  await writeFile(join(dir, 'webhook-secret'), `${WEBHOOK_SECRET}\n`, { mode: 0o600 });
  await mkdir(join(dir, 'tpl'));
  await writeFile(join(dir, 'tpl', 'db.hbs'), '"{{secrets.DB_USER}}" "{{secrets.DB_PASSWORD}}"\n');
  const spec = join(dir, 'reloader.yaml');
  await writeFile(
    spec,
    `infisical:
  url: ${local.url}
  auth: { kubernetes: { identityId: ident-d, tokenPath: sa-token } }
  timeout: 2s
sources:
  - { projectId: proj-d, environment: prod, path: / }
webhook:
  listen: 127.0.0.1:0
  secretFile: webhook-secret
  payloadValues: apply
admin:
  listen: 127.0.0.1:0
defaults:
  wait: ${opts.wait ?? '{ min: 50ms, max: 500ms }'}
targets:
  - name: db
    files:
      - template: tpl/db.hbs
        destination: out/userlist.txt
    reload:
      command: [sh, -c, 'echo db >> reloads.log']
  - name: token
    files:
      - contents: "token={{secrets.API_TOKEN}}\\n"
        destination: out/token.env
${opts.extraTargets ?? ''}`,
  );
  const proc = startCli(t, ['run', '--config', spec, '--log-level', 'debug']);
  const url = await waitFor(
    () => proc.output().stderr.match(/"url":"(http:\/\/127\.0\.0\.1:\d+)","path"/)?.[1],
    { what: 'the daemon to listen', timeoutMs: 15_000 },
  );
  const admin = adminUrlOf(proc.output().stderr);
  const d: Daemon = {
    dir,
    spec,
    local,
    proc,
    url,
    saToken,
    async reloads() {
      try {
        return (await readFile(join(dir, 'reloads.log'), 'utf8'))
          .trim()
          .split('\n')
          .filter(Boolean);
      } catch {
        return [];
      }
    },
    async post(path, body, headers = {}) {
      const base = path === '/infisical/webhook' ? url : admin;
      const res = await request(`${base}${path}`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', ...headers },
      });
      const text = await res.body.text();
      return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
    },
    async get(path) {
      const res = await request(`${admin}${path}`);
      return { status: res.statusCode, text: await res.body.text() };
    },
    async signedEvent(body) {
      const text = JSON.stringify(body);
      const ts = (body as { timestamp?: number }).timestamp ?? Date.now();
      return d.post('/infisical/webhook', text, {
        'x-infisical-signature': signWebhook(text, WEBHOOK_SECRET, ts),
      });
    },
    canaries: () => [PW1, PW2, TOKEN_VALUE, WEBHOOK_SECRET, saToken],
  };
  return d;
}

async function fileOf(d: Daemon, rel: string): Promise<string> {
  return readFile(join(d.dir, rel), 'utf8').catch(() => '');
}

async function stopDaemon(d: Daemon): Promise<void> {
  d.proc.child.kill('SIGTERM');
  const { code } = await d.proc.exited;
  assert.equal(code, 0, 'SIGTERM ends the daemon with exit 0');
  const { stdout, stderr } = d.proc.output();
  assertNoSecrets([stdout, stderr], d.canaries());
}

test('start-up renders everything and turns ready; a real Infisical webhook re-renders within the wait; reload runs once', async (t) => {
  const d = await startDaemon(t);
  await waitFor(async () => (await d.get('/readyz')).status === 200, { what: '/readyz 200' });
  assert.equal((await d.get('/healthz')).status, 200);
  assert.equal(await fileOf(d, 'out/userlist.txt'), `"app" "${PW1}"\n`);
  assert.deepEqual(await d.reloads(), ['db']);

  d.local.addWebhook({
    projectId: 'proj-d',
    environment: 'prod',
    secretPath: '/**',
    url: `${d.url}/infisical/webhook`,
    secretKey: WEBHOOK_SECRET,
  });
  const started = Date.now();
  d.local.setSecret({
    projectId: 'proj-d',
    environment: 'prod',
    path: '/',
    key: 'DB_PASSWORD',
    value: PW2,
  });
  await waitFor(async () => (await fileOf(d, 'out/userlist.txt')).includes(PW2), {
    what: 'the rotated password on disk',
  });
  const elapsed = Date.now() - started;
  t.diagnostic(`setSecret → file on disk: ${elapsed} ms (webhook delay 20 ms, wait.min 50 ms)`);
  await waitFor(async () => (await d.reloads()).length === 2, { what: 'the second reload' });
  assert.equal(
    await fileOf(d, 'out/token.env'),
    `token=${TOKEN_VALUE}\n`,
    'the other target is untouched',
  );
  assert.deepEqual(await d.reloads(), ['db', 'db']);
  const deliveries = d.local.deliveries.filter((x) => x.status === 200);
  assert.equal(deliveries.length, 1, 'one webhook delivery, answered 200');

  const status = JSON.parse((await d.get('/status')).text) as {
    targets: Array<{ name: string; lastStatus: string; files: Record<string, string> }>;
  };
  const db = status.targets.find((x) => x.name === 'db');
  assert.equal(db?.lastStatus, 'committed');
  assert.equal(Object.keys(db?.files ?? {}).length, 1);
  const metrics = (await d.get('/metrics')).text;
  assert.match(metrics, /reloader_renders_total\{target="db",outcome="committed"\} 2/);
  assert.match(metrics, /reloader_reloads_total\{target="db",outcome="ok"\} 2/);
  assertNoSecrets([JSON.stringify(status), metrics], d.canaries());
  await stopDaemon(d);
});

test('a burst of 40 signed value events gives one render and one reload; bad signatures change nothing', async (t) => {
  const d = await startDaemon(t, { wait: '{ min: 300ms, max: 2s }' });
  await waitFor(async () => (await d.get('/readyz')).status === 200, { what: 'ready' });
  const unsigned = await d.post(
    '/infisical/webhook',
    JSON.stringify({
      event: 'secret.updated',
      timestamp: Date.now(),
      payload: { secretKey: 'DB_PASSWORD', secretValue: 'forged' },
    }),
  );
  assert.equal(unsigned.status, 401);
  const forged = JSON.stringify({
    event: 'secret.updated',
    timestamp: Date.now(),
    payload: { secretKey: 'DB_PASSWORD', secretValue: 'forged' },
  });
  const bad = await d.post('/infisical/webhook', forged, {
    'x-infisical-signature': signWebhook(forged, 'wrong-secret', Date.now()),
  });
  assert.equal(bad.status, 401);
  for (let i = 0; i < 40; i++) {
    const res = await d.signedEvent({
      event: 'secret.rotated',
      timestamp: Date.now(),
      payload: { secretKey: 'DB_PASSWORD', secretValue: `${PW2}-${i}`, rotation: true },
    });
    assert.equal(res.status, 200);
  }
  await waitFor(async () => (await fileOf(d, 'out/userlist.txt')).includes(`${PW2}-39`), {
    what: 'the last value of the burst',
  });
  await new Promise((r) => setTimeout(r, 600));
  assert.deepEqual(
    await d.reloads(),
    ['db', 'db'],
    'start-up render + exactly one reload for the burst',
  );
  assert.ok(!(await fileOf(d, 'out/userlist.txt')).includes('forged'));
  const metrics = (await d.get('/metrics')).text;
  assert.match(metrics, /reloader_renders_total\{target="db",outcome="committed"\} 2/);
  await stopDaemon(d);
});

test('a deleted key fails the target loudly and keeps its last good file; other targets keep working', async (t) => {
  const d = await startDaemon(t);
  await waitFor(async () => (await d.get('/readyz')).status === 200, { what: 'ready' });
  const res = await d.signedEvent({
    event: 'secret.deleted',
    timestamp: Date.now(),
    payload: { secretKey: 'DB_PASSWORD' },
  });
  assert.equal(res.status, 200);
  const status = await waitFor(
    async () => {
      const s = JSON.parse((await d.get('/status')).text) as {
        targets: Array<{
          name: string;
          lastStatus?: string;
          lastError?: { code: string; message: string };
        }>;
      };
      const db = s.targets.find((x) => x.name === 'db');
      return db?.lastStatus === 'failed' ? db : undefined;
    },
    { what: 'target db to fail' },
  );
  assert.equal(status.lastError?.code, 'RLD_ERR_MISSING_KEY');
  assert.match(status.lastError?.message ?? '', /DB_PASSWORD/);
  assert.equal(await fileOf(d, 'out/userlist.txt'), `"app" "${PW1}"\n`, 'last good file kept');
  assert.match((await d.get('/metrics')).text, /reloader_target_up\{target="db"\} 0/);
  // the token target still follows changes
  await d.signedEvent({
    event: 'secret.updated',
    timestamp: Date.now(),
    payload: { secretKey: 'API_TOKEN', secretValue: `${TOKEN_VALUE}-v2` },
  });
  await waitFor(async () => (await fileOf(d, 'out/token.env')).includes(`${TOKEN_VALUE}-v2`), {
    what: 'the token target to update',
  });
  // putting the key back heals the failed target
  await d.signedEvent({
    event: 'secret.created',
    timestamp: Date.now(),
    payload: { secretKey: 'DB_PASSWORD', secretValue: PW2 },
  });
  await waitFor(async () => (await fileOf(d, 'out/userlist.txt')).includes(PW2), {
    what: 'db to heal',
  });
  await stopDaemon(d);
});

test('no polling: an idle daemon sends no list request; /resync from loopback refetches once', async (t) => {
  const d = await startDaemon(t);
  await waitFor(async () => (await d.get('/readyz')).status === 200, { what: 'ready' });
  const lists = () =>
    d.local.requests.filter((r) => r.route.startsWith('GET /api/v4/secrets')).length;
  const before = lists();
  assert.equal(before, 1, 'one fetch at start');
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(lists(), before, 'no request while idle for 3 s');
  const res = await d.post('/resync', '');
  assert.equal(res.status, 202);
  await waitFor(() => lists() === before + 1, { what: 'one refetch after /resync' });
  await stopDaemon(d);
});

test('Infisical down at start: /readyz 503, files appear once it is back; an event during an outage is applied after', async (t) => {
  const d = await startDaemon(t, { infisicalDownAtStart: true });
  await new Promise((r) => setTimeout(r, 800));
  assert.equal((await d.get('/readyz')).status, 503);
  assert.equal((await d.get('/healthz')).status, 200);
  assert.equal(await fileOf(d, 'out/userlist.txt'), '');
  d.local.faults.clear();
  await waitFor(async () => (await d.get('/readyz')).status === 200, {
    what: 'ready after the outage',
    timeoutMs: 20_000,
  });
  assert.equal(await fileOf(d, 'out/userlist.txt'), `"app" "${PW1}"\n`);
  // outage after start: an event is accepted, the refetch fails, files stay, then recovers
  d.local.faults.add({ route: 'GET /api/v4/secrets', status: 503, times: 3 });
  d.local.setSecret({
    projectId: 'proj-d',
    environment: 'prod',
    path: '/',
    key: 'DB_PASSWORD',
    value: PW2,
  });
  const res = await d.signedEvent({
    event: 'secrets.modified',
    project: {
      workspaceId: 'proj-d',
      projectId: 'proj-d',
      projectName: 'Daemon',
      environment: 'prod',
      secretPath: '/',
    },
    timestamp: Date.now(),
  });
  assert.equal(res.status, 200);
  await waitFor(async () => (await fileOf(d, 'out/userlist.txt')).includes(PW2), {
    what: 'the change applied after the outage',
    timeoutMs: 20_000,
  });
  await stopDaemon(d);
});

test('token lifecycle with a 2 s TTL and 5 s max TTL: renews, logs in again, keeps serving events', async (t) => {
  const d = await startDaemon(t, { ttl: 2, maxTtl: 5 });
  await waitFor(async () => (await d.get('/readyz')).status === 200, { what: 'ready' });
  await new Promise((r) => setTimeout(r, 6500));
  const renews = d.local.requests.filter(
    (r) => r.route.includes('token/renew') && r.status === 200,
  ).length;
  const logins = d.local.requests.filter(
    (r) => r.route.includes('kubernetes-auth/login') && r.status === 200,
  ).length;
  t.diagnostic(`in 6.5 s: ${renews} renewals, ${logins} logins`);
  assert.ok(renews >= 2, `renewed at least twice (saw ${renews})`);
  assert.ok(logins >= 2, `logged in again before the max TTL (saw ${logins})`);
  const refused = d.local.requests.filter(
    (r) => r.route.includes('token/renew') && r.status !== 200,
  ).length;
  assert.equal(refused, 0, 'never asked for a renew the server would refuse');
  await d.signedEvent({
    event: 'secrets.modified',
    project: {
      workspaceId: 'proj-d',
      projectId: 'proj-d',
      projectName: 'Daemon',
      environment: 'prod',
      secretPath: '/',
    },
    timestamp: Date.now(),
  });
  await waitFor(
    () =>
      d.local.requests.filter((r) => r.route.startsWith('GET /api/v4/secrets') && r.status === 200)
        .length >= 2,
    { what: 'a refetch with a live token' },
  );
  const rejected = d.local.requests.filter(
    (r) => r.route.startsWith('GET /api/v4/secrets') && r.status >= 400,
  );
  assert.equal(rejected.length, 0, 'no listing with an expired token');
  await stopDaemon(d);
});

test('SIGHUP: an invalid spec is refused and the daemon keeps running; a valid one is applied', async (t) => {
  const d = await startDaemon(t);
  await waitFor(async () => (await d.get('/readyz')).status === 200, { what: 'ready' });
  const good = await readFile(d.spec, 'utf8');
  await writeFile(d.spec, `${good}\nbogus: true\n`);
  d.proc.child.kill('SIGHUP');
  await waitFor(() => d.proc.output().stderr.includes('new spec is invalid'), {
    what: 'the invalid spec to be refused',
  });
  assert.equal((await d.get('/healthz')).status, 200);
  await writeFile(
    d.spec,
    good
      .replace('"{{secrets.DB_USER}}"', 'user={{secrets.DB_USER}}')
      .replace('tpl/db.hbs', 'tpl/db2.hbs'),
  );
  await writeFile(join(d.dir, 'tpl', 'db2.hbs'), 'user={{secrets.DB_USER}}\n');
  d.proc.child.kill('SIGHUP');
  await waitFor(async () => (await fileOf(d, 'out/userlist.txt')) === 'user=app\n', {
    what: 'the new spec to render',
  });
  await stopDaemon(d);
});
