/**
 * SecretSubscriber against the local Infisical-compatible server: start (login, one fetch per
 * source, the webhook listener), a burst of changes delivered by signed webhooks gives one call
 * per callback with the latest value, `'*'`, a throwing callback isolated and logged, the
 * guide's environment variables as defaults, a reloader.yaml path (its targets ignored), the
 * event stream as the only channel, and start failures with coded errors that hold no secret.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { signWebhook } from '../../src/events/signature.js';
import { SecretSubscriber, ReloaderError, type SubscriberOptions } from '../../src/index.js';
import {
  oneProjectSeed,
  startInfisical,
  tempDir,
  waitFor,
  assertNoSecrets,
} from '../helpers/harness.js';

const WEBHOOK_SECRET = 'whsec-subscriber-test-41f2';
const DB0 = 'postgres://app:pw-zero-0a1b@db/app';
const SEED = oneProjectSeed({ '/': `{ DATABASE_URL: "${DB0}", API_KEY: api-key-first-9c2d }` });
const P = { projectId: 'p1', environment: 'prod', path: '/' };
const AUTH = { universal: { clientId: 'cid', clientSecret: 'csecret-123456' } };

/** Log lines the subscriber wrote, parsed. */
function logSink(): {
  destination: Writable;
  lines: () => Array<Record<string, unknown>>;
  text: () => string;
} {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return {
    destination,
    text: () => text,
    lines: () =>
      text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

function subscriber(t: TestContext, options: SubscriberOptions): SecretSubscriber {
  const s = new SecretSubscriber(options);
  t.after(() => s.stop());
  return s;
}

type Call = [string, string | undefined, string | undefined];

test('start fetches once, get answers from memory, a burst gives one call per callback with the latest value', async (t) => {
  const local = await startInfisical(t, SEED, { webhookDelayMs: 5 });
  const log = logSink();
  const s = subscriber(t, {
    infisical: { url: local.url, auth: AUTH },
    sources: [P],
    webhook: { listen: '127.0.0.1:0', secret: WEBHOOK_SECRET },
    defaults: { wait: { min: '100ms', max: '1s' } },
    env: {},
    logDestination: log.destination,
  });
  const dbCalls: Call[] = [];
  const allCalls: Call[] = [];
  let throwing = 0;
  s.subscribe('DATABASE_URL', () => {
    throwing += 1;
    throw new Error(`callback broke while holding ${DB0}`);
  });
  s.subscribe('DATABASE_URL', (...args) => {
    dbCalls.push(args);
  });
  s.subscribe('*', async (...args) => {
    await new Promise((r) => setTimeout(r, 5));
    allCalls.push(args);
  });
  assert.equal(s.get('DATABASE_URL'), undefined, 'nothing before start');
  await s.start();
  assert.equal(s.get('DATABASE_URL'), DB0);
  assert.equal(s.get('MISSING'), undefined);
  assert.deepEqual(s.keys(), ['API_KEY', 'DATABASE_URL']);
  assert.equal(dbCalls.length, 0, 'the values at start are not changes');
  const lists = () => local.requests.filter((r) => r.route.startsWith('GET /api/v4/secrets'));
  assert.equal(lists().length, 1, 'one listing at start');

  const url = s.listening.webhook;
  assert.match(url ?? '', /^http:\/\/127\.0\.0\.1:\d+\/infisical\/webhook$/);
  local.addWebhook({ ...P, secretPath: '/', url: url as string, secretKey: WEBHOOK_SECRET });
  const values = [1, 2, 3, 4, 5].map((i) => `postgres://app:pw-burst-${i}-77aa@db/app`);
  for (const value of values) {
    local.setSecret({ ...P, key: 'DATABASE_URL', value });
    await new Promise((r) => setTimeout(r, 15));
  }
  await waitFor(() => dbCalls.length > 0 && allCalls.length > 0, { what: 'the change delivered' });
  await new Promise((r) => setTimeout(r, 400)); // room for a wrong second call
  const latest = values.at(-1);
  assert.deepEqual(
    dbCalls,
    [['DATABASE_URL', latest, DB0]],
    'one call, latest value, start value as old',
  );
  assert.deepEqual(allCalls, [['DATABASE_URL', latest, DB0]], "'*' sees the same single change");
  assert.equal(throwing, 1, 'the throwing callback was called once and did not stop the others');
  assert.equal(s.get('DATABASE_URL'), latest);

  // a delete is a change to undefined
  local.deleteSecret({ ...P, key: 'API_KEY' });
  await waitFor(() => allCalls.length === 2, { what: 'the delete delivered' });
  assert.deepEqual(allCalls[1], ['API_KEY', undefined, 'api-key-first-9c2d']);
  assert.equal(s.get('API_KEY'), undefined);

  const failed = log.lines().find((l) => l['msg'] === 'a subscriber callback failed');
  assert.equal(failed?.['key'], 'DATABASE_URL');
  assert.ok(log.lines().some((l) => l['msg'] === 'subscriber ready'));
  assertNoSecrets(
    [log.text()],
    [DB0, ...values, 'api-key-first-9c2d', 'csecret-123456', WEBHOOK_SECRET],
  );

  // an unsigned delivery is refused like the daemon refuses it
  const forged = await request(url as string, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ event: 'secrets.modified', project: { projectId: 'p1' } }),
  });
  assert.equal(forged.statusCode, 401);
  await forged.body.dump();

  await s.stop();
  await s.stop(); // twice is fine
  await assert.rejects(s.start(), (err: ReloaderError) => err.code === 'RLD_ERR_USAGE');
});

test("the guide's environment variables are the defaults", async (t) => {
  const local = await startInfisical(t, oneProjectSeed({ '/svc': '{ TOKEN: tok-svc-5e6f }' }));
  const s = subscriber(t, {
    infisical: { auth: AUTH },
    webhook: { listen: '127.0.0.1:0' },
    env: {
      INFISICAL_API_URL: local.url,
      INFISICAL_PROJECT_ID: 'p1',
      INFISICAL_ENVIRONMENT: 'prod',
      INFISICAL_SECRET_PATH: '/svc',
      INFISICAL_WEBHOOK_SECRET: WEBHOOK_SECRET,
    },
    logLevel: 'silent',
  });
  await s.start();
  assert.equal(s.get('TOKEN'), 'tok-svc-5e6f');
});

test('a reloader.yaml path: the link to Infisical is read from it, its targets are ignored', async (t) => {
  const local = await startInfisical(t, SEED);
  const dir = await tempDir(t);
  const file = join(dir, 'reloader.yaml');
  await writeFile(
    file,
    `infisical:
  url: \${API_URL}
  auth: { universal: { clientId: cid, clientSecret: csecret-123456 } }
sources: [ { projectId: p1, environment: prod } ]
webhook: { listen: "127.0.0.1:0", allowUnsigned: true }
admin: { listen: "127.0.0.1:0" }
targets:
  - name: never-written
    files: [ { contents: "{{secrets.API_KEY}}", destination: out/never } ]
`,
  );
  const s = subscriber(t, {
    config: file,
    admin: {},
    env: { API_URL: local.url },
    logLevel: 'silent',
  });
  await s.start();
  assert.equal(s.get('API_KEY'), 'api-key-first-9c2d');
  const admin = s.listening.admin as string;
  const ready = await request(`${admin}/readyz`);
  assert.equal(ready.statusCode, 200, 'ready with no target');
  await ready.body.dump();
  const status = (await (await request(`${admin}/status`)).body.json()) as { targets: unknown[] };
  assert.deepEqual(status.targets, []);
  assertNoSecrets([JSON.stringify(status)], [DB0, 'api-key-first-9c2d']);

  // the same file with `webhook: false` alone is a usage error: config or blocks
  const both = new SecretSubscriber({ config: file, webhook: false, env: {}, logLevel: 'silent' });
  await assert.rejects(both.start(), (err: ReloaderError) => err.code === 'RLD_ERR_USAGE');
});

test('the event stream alone (webhook: false) delivers changes', async (t) => {
  const local = await startInfisical(t, SEED, { eventStreams: { licensed: true } });
  const s = subscriber(t, {
    infisical: { url: local.url, auth: AUTH, eventSubscription: { enabled: true } },
    sources: [P],
    webhook: false,
    defaults: { wait: { min: '20ms', max: '200ms' } },
    env: {},
    logLevel: 'silent',
  });
  const calls: Call[] = [];
  s.subscribe('API_KEY', (...args) => {
    calls.push(args);
  });
  await s.start();
  assert.deepEqual(s.listening, {}, 'nothing listens');
  // the stream is open once the local server holds it
  await waitFor(() => local.events.open === 1, {
    what: 'the event stream opened',
  });
  await new Promise((r) => setTimeout(r, 100));
  local.setSecret({ ...P, key: 'API_KEY', value: 'api-key-second-1b2c' });
  await waitFor(() => calls.length === 1, { what: 'the stream change delivered' });
  assert.deepEqual(calls[0], ['API_KEY', 'api-key-second-1b2c', 'api-key-first-9c2d']);
});

test('start fails with a coded error that holds no secret, and leaves nothing running', async (t) => {
  const local = await startInfisical(t, SEED);
  const base = {
    sources: [P],
    webhook: { listen: '127.0.0.1:0', secret: WEBHOOK_SECRET },
    env: {},
    logLevel: 'silent' as const,
  };
  const wrong = 'csecret-wrong-value-8d9e';
  const badLogin = new SecretSubscriber({
    ...base,
    infisical: { url: local.url, auth: { universal: { clientId: 'cid', clientSecret: wrong } } },
  });
  await assert.rejects(badLogin.start(), (err: ReloaderError) => {
    assert.ok(err instanceof ReloaderError);
    assert.equal(err.code, 'RLD_ERR_AUTH');
    assertNoSecrets([err.message, JSON.stringify(err)], [wrong, WEBHOOK_SECRET]);
    return true;
  });
  assert.deepEqual(badLogin.listening, {}, 'nothing listens after a failed start');

  const noProject = new SecretSubscriber({
    ...base,
    infisical: { url: local.url, auth: AUTH },
    sources: [{ ...P, projectId: 'nope' }],
  });
  await assert.rejects(noProject.start(), (err: ReloaderError) => {
    assert.match(err.code, /^RLD_ERR_(INFISICAL_HTTP|AUTH)$/);
    assert.match(err.message, /nope\/prod\//);
    return true;
  });

  const noSecret = new SecretSubscriber({
    ...base,
    infisical: { url: local.url, auth: AUTH },
    webhook: { listen: '127.0.0.1:0' },
  });
  await assert.rejects(noSecret.start(), (err: ReloaderError) => {
    assert.equal(err.code, 'RLD_ERR_SPEC');
    assert.match(err.message, /signing secret/);
    return true;
  });

  const noProjectId = new SecretSubscriber({ env: {}, logLevel: 'silent' });
  await assert.rejects(noProjectId.start(), (err: ReloaderError) => {
    assert.equal(err.code, 'RLD_ERR_SPEC');
    assert.match(err.message, /INFISICAL_PROJECT_ID|identity/);
    return true;
  });
  assert.throws(() => noProjectId.subscribe('', () => {}), /key name/);
});

test('stop() during start(): start rejects, nothing keeps running', async (t) => {
  const local = await startInfisical(t, SEED);
  local.faults.add({ route: 'GET /api/v4/secrets', delayMs: 500 });
  const s = new SecretSubscriber({
    infisical: { url: local.url, auth: AUTH },
    sources: [P],
    webhook: { listen: '127.0.0.1:0', secret: WEBHOOK_SECRET },
    env: {},
    logLevel: 'silent',
  });
  const starting = s.start();
  await new Promise((r) => setTimeout(r, 20));
  await s.stop();
  await assert.rejects(starting, (err: ReloaderError) => err.code === 'RLD_ERR_USAGE');
  assert.deepEqual(s.listening, {});
});

test('payloadValues: apply — a burst of value events on one key gives one call with the last value', async (t) => {
  const local = await startInfisical(t, SEED);
  const s = subscriber(t, {
    infisical: { url: local.url, auth: AUTH },
    sources: [P],
    webhook: { listen: '127.0.0.1:0', secret: WEBHOOK_SECRET, payloadValues: 'apply' },
    defaults: { wait: { min: '150ms', max: '2s' } },
    env: {},
    logLevel: 'silent',
  });
  const calls: Call[] = [];
  s.subscribe('DATABASE_URL', (...args) => {
    calls.push(args);
  });
  await s.start();
  const send = async (value: string): Promise<number> => {
    const timestamp = Date.now();
    const body = JSON.stringify({
      event: 'secret.rotated',
      timestamp,
      project: { projectId: 'p1', environment: 'prod', secretPath: '/' },
      payload: { secretKey: 'DATABASE_URL', secretValue: value, rotation: true },
    });
    const res = await request(s.listening.webhook as string, {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/json',
        'x-infisical-signature': signWebhook(body, WEBHOOK_SECRET, timestamp),
      },
    });
    await res.body.dump();
    return res.statusCode;
  };
  const values = [1, 2, 3, 4, 5].map((i) => `postgres://app:pw-apply-${i}-3c4d@db/app`);
  for (const value of values) assert.equal(await send(value), 200);
  assert.equal(s.get('DATABASE_URL'), values.at(-1), 'get sees each applied value at once');
  assert.equal(calls.length, 0, 'the callbacks wait for the burst to end');
  await waitFor(() => calls.length > 0, { what: 'the burst delivered' });
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(calls, [['DATABASE_URL', values.at(-1), DB0]]);

  // a change that is undone within one burst gives no call
  await send('postgres://app:pw-flip-9e9e@db/app');
  await send(values.at(-1) as string);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(calls.length, 1, 'changed and changed back: no call');
});
