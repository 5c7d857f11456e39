/**
 * Real sockets: both listeners on 127.0.0.1:0, a signed delivery posted with undici to the
 * webhook listener, the probes on the admin listener, and each listener serving only its own
 * routes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { listen } from '../../src/server/app.js';
import { harness, HOOK, modifiedBody, NOW, signed } from './fixtures.js';

test('the webhook listener answers a signed delivery, the admin listener the probes, and neither serves the other', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const address = await listen(h.webhook, { host: '127.0.0.1', port: 0 });
  const admin = await listen(h.admin, { host: '127.0.0.1', port: 0 });
  assert.notEqual(admin.port, address.port);
  assert.equal(address.host, '127.0.0.1');
  assert.ok(address.port > 0);
  assert.equal(address.url, `http://127.0.0.1:${address.port}`);

  const body = modifiedBody();
  const res = await request(`${address.url}${HOOK}`, {
    method: 'POST',
    body,
    headers: signed(body),
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(await res.body.json(), { status: 'accepted' });
  assert.equal(h.calls.events.length, 1);
  assert.equal(h.calls.events[0]?.meta.receivedAtMs, NOW);

  const health = await request(`${admin.url}/healthz`, {
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  assert.equal(health.statusCode, 200);
  assert.deepEqual(await health.body.json(), { status: 'ok' });

  // The port a Service exposes to Infisical serves only the webhook path.
  for (const path of ['/healthz', '/readyz', '/metrics', '/status']) {
    const res = await request(`${address.url}${path}`, { headersTimeout: 5000 });
    assert.equal(res.statusCode, 404, `webhook listener ${path}`);
    await res.body.dump();
  }
  const resync = await request(`${address.url}/resync`, { method: 'POST', headersTimeout: 5000 });
  assert.equal(resync.statusCode, 404, 'webhook listener /resync');
  await resync.body.dump();
  const hookOnAdmin = await request(`${admin.url}${HOOK}`, {
    method: 'POST',
    body,
    headers: signed(body),
    headersTimeout: 5000,
  });
  assert.equal(hookOnAdmin.statusCode, 404, 'admin listener has no webhook route');
  await hookOnAdmin.body.dump();
  assert.equal(h.calls.events.length, 1, 'nothing reached the engine through the admin listener');
});

test('listen reports a bind failure as a ReloaderError naming the address', async (t) => {
  const first = harness();
  const second = harness();
  t.after(async () => {
    await first.close();
    await second.close();
  });
  const { port } = await listen(first.webhook, { host: '127.0.0.1', port: 0 });
  await assert.rejects(listen(second.webhook, { host: '127.0.0.1', port }), (err: unknown) => {
    const e = err as { code?: string; message?: string };
    assert.equal(e.code, 'RLD_ERR_LISTEN');
    assert.equal(e.message, `cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
    return true;
  });
});
