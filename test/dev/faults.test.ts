import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, errorOf, login, startServer } from './helpers.js';

const LIST = '/v3/secrets/raw?workspaceId=proj-1&environment=dev';

test('status faults fire `times` times, before auth, with Infisical-like bodies', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  srv.faults.add({ route: 'GET /api/v3/secrets/raw', times: 2, status: 500 });
  const a = await api(srv, LIST); // no token: the fault still comes first
  assert.deepEqual(errorOf(a), {
    statusCode: 500,
    error: 'InternalServerError',
    message: 'Something went wrong',
  });
  assert.equal((await api(srv, LIST, { token })).status, 500);
  assert.equal((await api(srv, LIST, { token })).status, 200, 'used up after 2');
  assert.equal(srv.faults.pending, 0);
});

test('429 with retry-after, custom body and headers, route patterns and *', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  srv.faults.add({
    route: 'GET /api/v4/secrets/:secretName',
    status: 429,
    headers: { 'retry-after': '7' },
  });
  const limited = await api(srv, '/v4/secrets/DB_USER?projectId=proj-1&environment=dev', { token });
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get('retry-after'), '7');
  assert.deepEqual(errorOf(limited), {
    statusCode: 429,
    message: 'Rate limit exceeded. Please try again in 7 seconds',
    error: 'RateLimitExceeded',
  });
  srv.faults.add({ status: 502, body: 'bad gateway', headers: { 'x-proxy': 'yes' } });
  const proxy = await api(srv, LIST, { token });
  assert.equal(proxy.status, 502);
  assert.equal(proxy.text, 'bad gateway');
  assert.equal(proxy.headers.get('x-proxy'), 'yes');
  srv.faults.add({ route: '*', status: 503, body: { custom: true } });
  assert.deepEqual((await api(srv, '/v1/auth/universal-auth/login', { body: {} })).json, {
    custom: true,
  });
  srv.faults.add({ route: 'POST /api/v1/auth/token/renew', status: 401, times: Infinity });
  srv.faults.clear();
  assert.equal((await api(srv, LIST, { token })).status, 200);
});

test('delay-only faults slow the request and let it through', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  srv.faults.add({ route: '/api/v3/secrets/raw', delayMs: 300 });
  const started = Date.now();
  const res = await api(srv, LIST, { token });
  assert.equal(res.status, 200);
  assert.ok(Date.now() - started >= 290, `took ${Date.now() - started} ms`);
});

test('reset destroys the connection', async (t) => {
  const srv = await startServer(t);
  srv.faults.add({ route: 'POST /api/v1/auth/universal-auth/login', reset: true });
  await assert.rejects(
    fetch(`${srv.url}/v1/auth/universal-auth/login`, { method: 'POST' }),
    (err: Error) => err instanceof TypeError && /fetch failed/.test(err.message),
  );
  assert.equal(srv.requests.at(-1)?.status, 0);
  assert.equal(
    (
      await api(srv, '/v1/auth/universal-auth/login', {
        body: { clientId: 'cid', clientSecret: 'csec' },
      })
    ).status,
    200,
  );
});
