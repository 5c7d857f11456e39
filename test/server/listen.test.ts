/**
 * One real socket: `listen()` on 127.0.0.1:0, a signed delivery posted with undici, and the
 * server closed afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { listen } from '../../src/server/build.js';
import { harness, HOOK, modifiedBody, NOW, signed } from './fixtures.js';

test('a listening server answers a signed delivery over HTTP and a GET /healthz', async (t) => {
  const h = harness();
  t.after(() => h.server.close());
  const address = await listen(h.server, { host: '127.0.0.1', port: 0 });
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

  const health = await request(`${address.url}/healthz`, {
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  assert.equal(health.statusCode, 200);
  assert.deepEqual(await health.body.json(), { status: 'ok' });
});

test('listen reports a bind failure as a ReloaderError naming the address', async (t) => {
  const first = harness();
  const second = harness();
  t.after(async () => {
    await first.server.close();
    await second.server.close();
  });
  const { port } = await listen(first.server, { host: '127.0.0.1', port: 0 });
  await assert.rejects(listen(second.server, { host: '127.0.0.1', port }), (err: unknown) => {
    const e = err as { code?: string; message?: string };
    assert.equal(e.code, 'RLD_ERR_LISTEN');
    assert.equal(e.message, `cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
    return true;
  });
});
