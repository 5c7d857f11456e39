import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { test } from 'node:test';
import { startReceiver, startServer } from './helpers.js';

const P = { projectId: 'proj-1', environment: 'dev' };

/** Verify `x-infisical-signature: t=<ms>;<hex>` over the raw body, as a receiver must. */
function verify(body: string, header: string | string[] | undefined, key: string): number {
  assert.equal(typeof header, 'string', 'signature header present');
  const m = /^t=(\d+);([0-9a-f]{64})$/.exec(header as string);
  assert.ok(m, `signature format: ${String(header)}`);
  const expected = createHmac('sha256', key).update(body).digest();
  assert.ok(timingSafeEqual(Buffer.from(m[2]!, 'hex'), expected), 'HMAC matches the raw body');
  return Number(m[1]);
}

test('secrets.modified: exact payload, signature over the raw body, headers', async (t) => {
  const srv = await startServer(t);
  const rx = await startReceiver(t);
  srv.addWebhook({ ...P, secretPath: '/', url: rx.url, secretKey: 'whsec' });
  srv.setSecret({ ...P, path: '/', key: 'DB_USER', value: 'new' });
  const [got] = await rx.waitFor(1);
  const ts = verify(got!.body, got!.headers['x-infisical-signature'], 'whsec');
  assert.equal(got!.headers['content-type'], 'application/json');
  assert.equal(
    got!.body,
    JSON.stringify({
      event: 'secrets.modified',
      project: {
        workspaceId: 'proj-1',
        projectId: 'proj-1',
        projectName: 'Payments',
        environment: 'dev',
        secretPath: '/',
      },
      timestamp: ts,
    }),
  );
  assert.ok(!got!.body.includes('new'), 'no secret value in the payload');
  await srv.flushWebhooks();
  assert.equal(srv.deliveries.length, 1);
  assert.equal(srv.deliveries[0]!.status, 200);
});

test('no signature header without a secret key', async (t) => {
  const srv = await startServer(t);
  const rx = await startReceiver(t);
  srv.addWebhook({ ...P, secretPath: '/**', url: rx.url });
  srv.deleteSecret({ ...P, path: '/api', key: 'API_KEY' });
  const [got] = await rx.waitFor(1);
  assert.equal(got!.headers['x-infisical-signature'], undefined);
  assert.equal(JSON.parse(got!.body).project.secretPath, '/api');
});

test('a burst on one folder coalesces into one delivery after the delay', async (t) => {
  const srv = await startServer(t, { webhookDelayMs: 200 });
  const rx = await startReceiver(t);
  srv.addWebhook({ ...P, secretPath: '/', url: rx.url, secretKey: 'k' });
  const started = Date.now();
  for (let i = 0; i < 20; i += 1)
    srv.setSecret({ ...P, path: '/', key: 'DB_USER', value: `v${i}` });
  srv.replaceFolder({
    ...P,
    path: '/',
    secrets: { DB_USER: 'final', DB_PASSWORD: 'pw', DSN: 'x', SHARED_OVERRIDE: 'own' },
  });
  await srv.flushWebhooks();
  assert.equal(rx.received.length, 1, rx.received.map((r) => r.body).join('\n'));
  assert.ok(rx.received[0]!.atMs - started >= 190, 'delivered after the coalescing delay');
  srv.setSecret({ ...P, path: '/', key: 'DB_USER', value: 'later' });
  await srv.flushWebhooks();
  assert.equal(rx.received.length, 2, 'a change after the job ran gets its own delivery');
});

test('glob matching: / only matches /, /** everything, /api/* one level, env must match', async (t) => {
  const srv = await startServer(t);
  const rx = {
    root: await startReceiver(t),
    all: await startReceiver(t),
    api: await startReceiver(t),
    prod: await startReceiver(t),
  };
  srv.addWebhook({ ...P, secretPath: '/', url: rx.root.url });
  srv.addWebhook({ ...P, secretPath: '/**', url: rx.all.url });
  srv.addWebhook({ ...P, secretPath: '/api/*', url: rx.api.url });
  srv.addWebhook({ projectId: 'proj-1', environment: 'prod', secretPath: '/**', url: rx.prod.url });
  srv.setSecret({ ...P, path: '/api', key: 'X', value: '1' });
  srv.setSecret({ ...P, path: '/api/billing', key: 'X', value: '1' });
  srv.setSecret({ ...P, path: '/', key: 'X', value: '1' });
  await srv.flushWebhooks();
  const paths = (r: { received: { body: string }[] }) =>
    r.received.map((x) => JSON.parse(x.body).project.secretPath as string).sort();
  assert.deepEqual(paths(rx.root), ['/'], '/ does not fire for /api');
  assert.deepEqual(paths(rx.all), ['/', '/api', '/api/billing']);
  assert.deepEqual(paths(rx.api), ['/api/billing']);
  assert.deepEqual(paths(rx.prod), []);
});

test('a failed delivery is recorded and not retried', async (t) => {
  const srv = await startServer(t);
  const rx = await startReceiver(t, () => 500);
  srv.addWebhook({ ...P, secretPath: '/', url: rx.url });
  srv.setSecret({ ...P, path: '/', key: 'DB_USER', value: 'x' });
  await srv.flushWebhooks();
  await new Promise((resolve) => setTimeout(resolve, 300)); // longer than the 50 ms job delay
  assert.equal(rx.received.length, 1, 'exactly one attempt');
  assert.deepEqual(
    { status: srv.deliveries[0]!.status, error: srv.deliveries[0]!.error },
    { status: 500, error: 'Request failed with status code 500' },
  );
  srv.addWebhook({ ...P, secretPath: '/api', url: 'http://127.0.0.1:1/unreachable' });
  srv.setSecret({ ...P, path: '/api', key: 'X', value: 'y' });
  await srv.flushWebhooks();
  const refused = srv.deliveries.find((d) => d.url.endsWith('/unreachable'));
  assert.match(refused?.error ?? 'none', /ECONNREFUSED/);
  assert.equal(refused?.status, undefined);
});

test('redirects are not followed', async (t) => {
  const srv = await startServer(t);
  const target = await startReceiver(t);
  const redirector = await startReceiver(t, () => 307);
  srv.addWebhook({ ...P, secretPath: '/', url: redirector.url });
  srv.setSecret({ ...P, path: '/', key: 'A', value: 'b' });
  await srv.flushWebhooks();
  assert.equal(target.received.length, 0);
  assert.equal(srv.deliveries[0]!.status, 307);
  assert.ok(srv.deliveries[0]!.error, '3xx is a failure');
});

test('changes fan out to importing folders (Infisical integration sync)', async (t) => {
  const srv = await startServer(t);
  const rx = await startReceiver(t);
  srv.addWebhook({ ...P, secretPath: '/**', url: rx.url });
  srv.setSecret({ ...P, path: '/common', key: 'COMMON', value: 'c2' });
  await srv.flushWebhooks();
  const paths = rx.received.map((r) => JSON.parse(r.body).project.secretPath as string);
  assert.deepEqual(
    paths,
    ['/common', '/shared', '/'],
    '/shared imports /common, / imports /shared',
  );
  rx.received.length = 0;
  srv.setSecret({ ...P, path: '/api', key: 'API_KEY', value: 'k9' });
  await srv.flushWebhooks();
  assert.deepEqual(
    rx.received.map((r) => JSON.parse(r.body).project.secretPath as string),
    ['/api', '/'],
    '/ holds ${dev.api.API_KEY}',
  );
});

test('sendTestWebhook sends the test event with the hook path', async (t) => {
  const srv = await startServer(t);
  const rx = await startReceiver(t);
  const { id } = srv.addWebhook({ ...P, secretPath: '/api/**', url: rx.url, secretKey: 's' });
  await srv.sendTestWebhook(id);
  const [got] = await rx.waitFor(1);
  verify(got!.body, got!.headers['x-infisical-signature'], 's');
  const body = JSON.parse(got!.body);
  assert.equal(body.event, 'test');
  assert.equal(body.project.secretPath, '/api/**');
  assert.deepEqual(Object.keys(body), ['event', 'project', 'timestamp']);
  await assert.rejects(srv.sendTestWebhook('nope'), /no webhook nope/);
});
