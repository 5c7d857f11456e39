/**
 * /healthz, /readyz, /metrics, /status, /resync and the 404 / error mapping, through `inject()`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, HOOK, modifiedBody, NOW, sample, signed } from './fixtures.js';
import { isLoopback } from '../../src/server/admin-routes.js';
import { toHttpError } from '../../src/events/http-errors.js';
import { ReloaderError } from '../../src/errors.js';

test('/healthz and /readyz follow the deps and flip both ways', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const get = async (url: string) => h.admin.inject({ method: 'GET', url });

  let res = await get('/healthz');
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ok' });
  h.state.healthy = false;
  res = await get('/healthz');
  assert.equal(res.statusCode, 503);
  assert.deepEqual(res.json(), { status: 'unhealthy' });

  res = await get('/readyz');
  assert.equal(res.statusCode, 503);
  assert.deepEqual(res.json(), { ready: false });
  h.state.ready = true;
  res = await get('/readyz');
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { ready: true });
  h.state.ready = false;
  res = await get('/readyz');
  assert.equal(res.statusCode, 503);
});

test('/metrics serves Prometheus text with the webhook counters and the ready gauge', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const body = modifiedBody();
  await h.webhook.inject({ method: 'POST', url: HOOK, payload: body, headers: signed(body) });
  await h.webhook.inject({ method: 'POST', url: HOOK, payload: body });
  h.metrics.render('web', 'committed');
  h.state.ready = true;
  const res = await h.admin.inject({ method: 'GET', url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  assert.equal(
    sample(res.body, 'reloader_webhook_events_total{type="modified",outcome="accepted"}'),
    1,
  );
  assert.equal(
    sample(res.body, 'reloader_webhook_events_total{type="invalid",outcome="rejected_401"}'),
    1,
  );
  assert.equal(sample(res.body, 'reloader_renders_total{target="web",outcome="committed"}'), 1);
  assert.equal(sample(res.body, 'reloader_ready'), 1);
});

test('/status returns the deps document, passed through the scrubber', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const leaked = 'leaked-token-value-77';
  h.scrubber.add(leaked);
  h.state.status = {
    targets: { web: { lastError: `reload said ${leaked}`, files: { a: 'sha256:ab' } } },
  };
  const res = await h.admin.inject({ method: 'GET', url: '/status' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), {
    targets: { web: { lastError: 'reload said [redacted]', files: { a: 'sha256:ab' } } },
  });
});

test('unknown routes answer 404 JSON; a throwing status() answers a generic 500', async (t) => {
  const h = harness();
  t.after(() => h.close());
  for (const [method, url] of [
    ['GET', '/nope'],
    ['POST', '/nope'],
    ['DELETE', '/status'],
  ] as const) {
    const res = await h.admin.inject({
      method,
      url,
      payload: method === 'POST' ? '{}' : undefined,
    });
    assert.equal(res.statusCode, 404, `${method} ${url}`);
    assert.deepEqual(res.json(), { error: 'not found' });
  }
  h.deps.status = () => {
    throw new Error('status broke: internal-detail-99');
  };
  const res = await h.admin.inject({ method: 'GET', url: '/status' });
  assert.equal(res.statusCode, 500);
  assert.deepEqual(res.json(), { error: 'internal error' });
});

test('/resync from loopback needs no signature', async (t) => {
  const h = harness();
  t.after(() => h.close());
  for (const remoteAddress of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1']) {
    const res = await h.admin.inject({ method: 'POST', url: '/resync', remoteAddress });
    assert.equal(res.statusCode, 202, remoteAddress);
    assert.deepEqual(res.json(), { status: 'accepted' });
  }
  assert.equal(h.calls.resyncs, 4);
});

test('/resync from elsewhere needs a valid signature over the (possibly empty) body', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const remoteAddress = '10.1.2.3';
  const post = (payload: string, headers: Record<string, string> = {}) =>
    h.admin.inject({ method: 'POST', url: '/resync', remoteAddress, payload, headers });

  let res = await post('');
  assert.equal(res.statusCode, 401);
  assert.deepEqual(res.json(), { error: 'invalid signature', reason: 'missing' });
  res = await post('', signed('', NOW, 'wrong-secret'));
  assert.equal(res.statusCode, 401);
  res = await post('', signed('x'));
  assert.equal(res.statusCode, 401, 'signature over another body');
  for (const address of ['::ffff:10.0.0.1', '128.0.0.1', '::2']) {
    const r = await h.admin.inject({ method: 'POST', url: '/resync', remoteAddress: address });
    assert.equal(r.statusCode, 401, address);
  }
  assert.equal(h.calls.resyncs, 0);

  res = await post('', signed(''));
  assert.equal(res.statusCode, 202);
  const stamped = JSON.stringify({ timestamp: NOW + 5 });
  res = await post(stamped, signed(stamped, NOW + 5));
  assert.equal(res.statusCode, 202);
  assert.equal(h.calls.resyncs, 2);

  res = await post(stamped, signed(stamped, NOW + 5));
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ignored', reason: 'replay' });
  assert.equal(h.calls.resyncs, 2);
  assert.ok(h.logs.every((l) => !l.includes('x-infisical-signature')));
});

test('isLoopback accepts 127/8, ::1 and mapped 127.x only', () => {
  for (const a of ['127.0.0.1', '127.255.255.254', '::1', '::FFFF:127.0.0.1'])
    assert.ok(isLoopback(a), a);
  for (const a of [
    undefined,
    '',
    '10.0.0.1',
    '::ffff:10.0.0.1',
    '1127.0.0.1',
    '127.0.0.1.evil',
    '::2',
    '0.0.0.0',
  ]) {
    assert.ok(!isLoopback(a), String(a));
  }
});

test('toHttpError maps body and parse errors to 4xx and anything else to a generic 500', () => {
  const fst = (code: string, statusCode?: number) =>
    Object.assign(new Error(`raw ${code}`), { code, statusCode });
  assert.deepEqual(toHttpError(fst('FST_ERR_CTP_BODY_TOO_LARGE', 413)), {
    status: 413,
    body: { error: 'payload too large' },
  });
  assert.equal(toHttpError(fst('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415)).status, 415);
  assert.equal(toHttpError(fst('FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400)).status, 400);
  assert.equal(toHttpError(fst('FST_ERR_CTP_EMPTY_JSON_BODY')).status, 400);
  assert.equal(toHttpError(new SyntaxError('Unexpected token s in JSON')).status, 400);
  assert.equal(toHttpError(fst('FST_ERR_BAD_URL', 400)).status, 400);
  const parse = new ReloaderError('RLD_ERR_WEBHOOK', 'x', {
    details: { status: 400, reason: 'invalid-json' },
  });
  assert.deepEqual(toHttpError(parse), {
    status: 400,
    body: { error: 'malformed event', reason: 'invalid-json' },
  });
  for (const err of [new Error('secret stuff'), fst('FST_ERR_WHATEVER', 503), 'a string', null]) {
    assert.deepEqual(toHttpError(err), { status: 500, body: { error: 'internal error' } });
  }
});

test('schema compilers are built on first need: a route with a body schema and a response schema still validates and serializes', async (t) => {
  const h = harness();
  t.after(() => h.close());
  h.admin.post(
    '/schema-probe',
    {
      schema: {
        body: {
          type: 'object',
          required: ['n'],
          properties: { n: { type: 'integer' } },
        },
        response: {
          200: { type: 'object', properties: { doubled: { type: 'integer' } } },
        },
      },
    },
    async (request) => ({ doubled: (request.body as { n: number }).n * 2, extra: 'dropped' }),
  );
  let res = await h.admin.inject({ method: 'POST', url: '/schema-probe', payload: { n: 21 } });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { doubled: 42 }, 'the response schema drops unknown fields');
  res = await h.admin.inject({ method: 'POST', url: '/schema-probe', payload: { n: 'x' } });
  assert.equal(res.statusCode, 400, 'the body schema is enforced');
});
