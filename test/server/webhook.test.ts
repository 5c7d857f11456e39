/**
 * POST <webhook.path> through `inject()`: signature first, then parse, then replay, then
 * dispatch; every rejection is a 4xx JSON body without internals, and onEvent is called only
 * for verified, parsed, fresh `modified`/`value` events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  harness,
  HOOK,
  MAX_AGE_MS,
  modifiedBody,
  NOW,
  sample,
  SECRET,
  signed,
  valueBody,
} from './fixtures.js';
import { BODY_LIMIT } from '../../src/server/webhook-routes.js';

test('a signed secrets.modified event is accepted and handed to onEvent once', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const body = modifiedBody();
  const res = await h.webhook.inject({
    method: 'POST',
    url: HOOK,
    payload: body,
    headers: signed(body),
  });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'accepted' });
  assert.equal(h.calls.events.length, 1);
  assert.deepEqual(h.calls.events[0], {
    event: {
      kind: 'modified',
      projectId: 'proj-1',
      environment: 'dev',
      secretPath: '/',
      timestampMs: NOW,
    },
    meta: { receivedAtMs: NOW },
  });
  const line = JSON.parse(h.logs.at(-1) ?? '{}') as Record<string, unknown>;
  assert.equal(line['outcome'], 'accepted');
  assert.equal(line['environment'], 'dev');
});

test('signature failures answer 401 with the reason and never reach onEvent', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const body = modifiedBody();
  const stale = modifiedBody(NOW - MAX_AGE_MS - 1);
  const future = modifiedBody(NOW + MAX_AGE_MS + 1);
  const cases: [string, string | Buffer, Record<string, string>, string][] = [
    ['no header', body, { 'content-type': 'application/json' }, 'missing'],
    ['garbage header', body, { 'x-infisical-signature': 'sha256=abc' }, 'malformed'],
    ['wrong secret', body, signed(body, NOW, 'another-secret'), 'mismatch'],
    ['signed other body', body, signed(modifiedBody(NOW, '/other')), 'mismatch'],
    ['header t differs from body timestamp', body, signed(body, NOW + 1), 'mismatch'],
    ['stale', stale, signed(stale, NOW - MAX_AGE_MS - 1), 'stale'],
    ['future', future, signed(future, NOW + MAX_AGE_MS + 1), 'stale'],
    ['empty body, no header, no content-type', '', {}, 'missing'],
  ];
  for (const [name, payload, headers, reason] of cases) {
    const res = await h.webhook.inject({ method: 'POST', url: HOOK, payload, headers });
    assert.equal(res.statusCode, 401, name);
    assert.deepEqual(res.json(), { error: 'invalid signature', reason }, name);
  }
  assert.equal(h.calls.events.length, 0);
  const text = await h.metrics.text();
  const series = 'reloader_webhook_events_total{type="invalid",outcome="rejected_401"}';
  assert.equal(sample(text, series), cases.length);
});

test('a validly signed body that is not a good event answers 400 without internals', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const cases: [string, string | Buffer, string][] = [
    ['bad JSON', '{"event": "secrets.modified", oops}', 'invalid-json'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'invalid-utf8'],
    ['array', '[1,2]', 'not-object'],
    ['no event', '{"project":{}}', 'missing-field'],
    ['empty body', '', 'empty-body'],
    ['modified without project', '{"event":"secrets.modified"}', 'missing-field'],
  ];
  for (const [name, payload, reason] of cases) {
    const res = await h.webhook.inject({
      method: 'POST',
      url: HOOK,
      payload,
      headers: signed(payload),
    });
    assert.equal(res.statusCode, 400, name);
    const json = res.json() as Record<string, unknown>;
    assert.equal(json['error'], 'malformed event', name);
    assert.equal(json['reason'], reason, name);
    assert.doesNotMatch(res.body, /Unexpected|position|SyntaxError|at .*\.js/, name);
  }
  assert.equal(h.calls.events.length, 0);
  const text = await h.metrics.text();
  assert.equal(
    sample(text, 'reloader_webhook_events_total{type="invalid",outcome="rejected_400"}'),
    cases.length,
  );
});

test('a body over 1 MiB answers 413 JSON; exactly 1 MiB is accepted', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const base = modifiedBody();
  const exact = Buffer.alloc(BODY_LIMIT, 0x20);
  exact.write(base, 0, 'utf8');
  assert.equal(exact.length, 1_048_576);
  const ok = await h.webhook.inject({
    method: 'POST',
    url: HOOK,
    payload: exact,
    headers: signed(exact),
  });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.equal(h.calls.events.length, 1);

  const over = Buffer.alloc(BODY_LIMIT + 1, 0x20);
  over.write(base, 0, 'utf8');
  for (const headers of [signed(over), {}]) {
    const res = await h.webhook.inject({ method: 'POST', url: HOOK, payload: over, headers });
    assert.equal(res.statusCode, 413);
    assert.deepEqual(res.json(), { error: 'payload too large' });
  }
  assert.equal(h.calls.events.length, 1);
  const text = await h.metrics.text();
  assert.equal(
    sample(text, 'reloader_webhook_events_total{type="invalid",outcome="rejected_413"}'),
    2,
  );
});

test('a replayed delivery is answered 200 ignored and has no effect', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const body = modifiedBody();
  const headers = signed(body);
  const first = await h.deliver(body, headers);
  h.clock.now += 1000;
  const again = await h.deliver(body, headers);
  assert.deepEqual(first.json(), { status: 'accepted' });
  assert.equal(again.statusCode, 200);
  assert.deepEqual(again.json(), { status: 'ignored', reason: 'replay' });
  assert.equal(h.calls.events.length, 1);
  const text = await h.metrics.text();
  assert.equal(sample(text, 'reloader_webhook_events_total{type="modified",outcome="replay"}'), 1);
});

test('a value event reaches onEvent, but its value never reaches a log line, /status or /metrics', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const canary = 'CANARY-v4lue-8d1f2e';
  const body = valueBody('DB_PASSWORD', canary);
  const res = await h.webhook.inject({
    method: 'POST',
    url: HOOK,
    payload: body,
    headers: signed(body),
  });
  assert.deepEqual(res.json(), { status: 'accepted' });
  const got = h.calls.events[0]?.event;
  assert.deepEqual(got, {
    kind: 'value',
    action: 'updated',
    key: 'DB_PASSWORD',
    value: canary,
    rotation: true,
  });

  // The same value inside bodies that fail: bad JSON, a missing key, a bad signature.
  const broken = [
    `{"event":"secret.updated","payload":{"secretValue":"${canary}"`,
    JSON.stringify({ event: 'secret.updated', payload: { secretValue: canary } }),
  ];
  for (const b of broken) {
    const r = await h.webhook.inject({ method: 'POST', url: HOOK, payload: b, headers: signed(b) });
    assert.equal(r.statusCode, 400);
    assert.ok(!r.body.includes(canary), r.body);
  }
  const unsigned = await h.webhook.inject({ method: 'POST', url: HOOK, payload: body });
  assert.equal(unsigned.statusCode, 401);

  const status = await h.admin.inject({ method: 'GET', url: '/status' });
  const metrics = await h.admin.inject({ method: 'GET', url: '/metrics' });
  assert.ok(h.logs.length >= 4, `expected a line per delivery, got ${h.logs.length}`);
  const logged = h.logs.join('');
  assert.ok(logged.includes('DB_PASSWORD'), 'the key name is logged');
  const places: [string, string][] = [
    ['logs', logged],
    ['/status', status.body],
    ['/metrics', metrics.body],
  ];
  for (const [where, text] of places) {
    assert.ok(!text.includes(canary), `canary found in ${where}`);
    assert.ok(!text.includes(SECRET), `webhook secret found in ${where}`);
    assert.ok(!text.includes('x-infisical-signature'), `signature header found in ${where}`);
  }
});

test('test events answer ok and are logged; other events are ignored with a reason', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const testBody = JSON.stringify({
    event: 'test',
    project: { projectId: 'proj-1', environment: 'dev' },
    timestamp: NOW,
  });
  const res = await h.webhook.inject({
    method: 'POST',
    url: HOOK,
    payload: testBody,
    headers: signed(testBody),
  });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ok', event: 'test' });
  assert.match(h.logs.at(-1) ?? '', /"kind":"test"/);

  for (const event of ['secrets.rotation-failed', 'something.new']) {
    const b = JSON.stringify({ event, project: { projectId: 'proj-1' }, timestamp: NOW });
    const r = await h.webhook.inject({ method: 'POST', url: HOOK, payload: b, headers: signed(b) });
    assert.equal(r.statusCode, 200);
    const json = r.json() as Record<string, unknown>;
    assert.equal(json['status'], 'ignored');
    assert.equal(typeof json['reason'], 'string');
  }
  assert.equal(h.calls.events.length, 0);
  const text = await h.metrics.text();
  assert.equal(sample(text, 'reloader_webhook_events_total{type="test",outcome="accepted"}'), 1);
  assert.equal(sample(text, 'reloader_webhook_events_total{type="ignored",outcome="ignored"}'), 2);
});

test('onEvent may decline an event: 200 ignored with its reason', async (t) => {
  const h = harness();
  t.after(() => h.close());
  h.state.effect = 'ignored';
  const body = modifiedBody(NOW, '/elsewhere');
  const res = await h.webhook.inject({
    method: 'POST',
    url: HOOK,
    payload: body,
    headers: signed(body),
  });
  assert.deepEqual(res.json(), { status: 'ignored', reason: 'no source matches' });
  assert.equal(h.calls.events.length, 1);
});

test('any Content-Type (or none, or a malformed one) is read as JSON', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const types = [
    undefined,
    'application/json',
    'application/json; charset=utf-8',
    'text/plain',
    'application/x-www-form-urlencoded',
    ';;;',
  ];
  for (const [i, type] of types.entries()) {
    const body = modifiedBody(NOW + i);
    const headers = signed(body, NOW + i);
    delete headers['content-type'];
    if (type !== undefined) headers['content-type'] = type;
    const res = await h.deliver(body, headers);
    assert.equal(res.statusCode, 200, `${String(type)}: ${res.body}`);
  }
  assert.equal(h.calls.events.length, types.length);
});

test('an exception in onEvent is a 500 with a generic body', async (t) => {
  const h = harness({ onEventThrows: true });
  t.after(() => h.close());
  const body = modifiedBody();
  const res = await h.webhook.inject({
    method: 'POST',
    url: HOOK,
    payload: body,
    headers: signed(body),
  });
  assert.equal(res.statusCode, 500);
  assert.deepEqual(res.json(), { error: 'internal error' });
});

test('other methods on the webhook path answer 404 JSON', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const res = await h.webhook.inject({ method: 'GET', url: HOOK });
  assert.equal(res.statusCode, 404);
  assert.deepEqual(res.json(), { error: 'not found' });
});

test('allowUnsigned accepts unsigned deliveries, warns once at build, still checks a given signature', async (t) => {
  const h = harness({ webhook: { allowUnsigned: true } });
  t.after(() => h.close());
  assert.equal(h.logs.length, 1);
  assert.match(h.logs[0] ?? '', /"level":"warn".*allowUnsigned/);
  const body = valueBody('API_KEY', 'v-123456');
  const res = await h.webhook.inject({ method: 'POST', url: HOOK, payload: body });
  assert.deepEqual(res.json(), { status: 'accepted' });
  const bad = await h.webhook.inject({
    method: 'POST',
    url: HOOK,
    payload: body,
    headers: signed(body, NOW, 'wrong'),
  });
  assert.equal(bad.statusCode, 401);
  assert.equal(h.calls.events.length, 1);
  assert.equal(h.logs.filter((l) => l.includes('allowUnsigned')).length, 1);

  const noSecret = harness({ webhook: { allowUnsigned: true }, secret: null });
  t.after(() => noSecret.close());
  const any = await noSecret.webhook.inject({
    method: 'POST',
    url: HOOK,
    payload: body,
    headers: signed(body, NOW, 'whatever'),
  });
  assert.deepEqual(any.json(), { status: 'accepted' });
});

test('a webhook path that shadows an admin route is refused; without a secret every delivery is 401', async (t) => {
  assert.throws(() => harness({ webhook: { path: '/metrics' } }), { code: 'RLD_ERR_SPEC' });
  assert.throws(() => harness({ webhook: { path: 'hook' } }), { code: 'RLD_ERR_SPEC' });
  // A secretFile that is not there yet (a Secret mounted optional): deliveries are refused,
  // nothing reaches the engine, and nothing crashes.
  const h = harness({ secret: null });
  t.after(() => h.close());
  const body = modifiedBody();
  const res = await h.webhook.inject({
    method: 'POST',
    url: HOOK,
    payload: body,
    headers: signed(body),
  });
  assert.equal(res.statusCode, 401);
  assert.deepEqual(res.json(), { error: 'invalid signature', reason: 'no-secret' });
  assert.equal(h.calls.events.length, 0);
});

test('payloadValues apply needs the signed body timestamp: without it 401, with it accepted; refetch needs none', async (t) => {
  const h = harness({ webhook: { payloadValues: 'apply' } });
  t.after(() => h.close());
  const bare = valueBody('API_KEY', 'v-123456');
  const refused = await h.deliver(bare, signed(bare));
  assert.equal(refused.statusCode, 401);
  assert.equal((refused.json() as { reason: string }).reason, 'unsigned-timestamp');
  assert.equal(h.calls.events.length, 0, 'nothing applied');

  const stamped = JSON.stringify({
    event: 'secret.updated',
    payload: { secretKey: 'API_KEY', secretValue: 'v-123456' },
    timestamp: NOW,
  });
  const ok = await h.deliver(stamped, signed(stamped));
  assert.deepEqual(ok.json(), { status: 'accepted' });
  assert.equal(h.calls.events.length, 1);
  // A captured stamped body replayed under a fresh t: the signed timestamp no longer matches.
  h.clock.now += 60_000;
  const replayed = await h.deliver(stamped, signed(stamped, NOW + 60_000));
  assert.equal(replayed.statusCode, 401);
  assert.equal(h.calls.events.length, 1);

  const r = harness({ webhook: { payloadValues: 'refetch' } });
  t.after(() => r.close());
  const res = await r.deliver(bare, signed(bare));
  assert.deepEqual(res.json(), { status: 'accepted' }, 'a notification needs no body timestamp');
});

test('a verified direct delivery is marked for relay after the answer; a relayed or replayed one never is', async (t) => {
  const h = harness();
  t.after(() => h.close());
  const body = modifiedBody();
  const headers = signed(body);
  const res = await h.deliver(body, headers);
  assert.equal(res.statusCode, 200);
  assert.equal(h.calls.relayed.length, 1);
  assert.equal(h.calls.relayed[0]?.body.toString(), body, 'the same raw body');
  assert.equal(
    h.calls.relayed[0]?.signature,
    headers['x-infisical-signature'],
    'the same signature',
  );

  await h.deliver(body, headers);
  assert.equal(h.calls.relayed.length, 1, 'a replay is not relayed');

  const other = modifiedBody(NOW + 1, '/other');
  const relayed = await h.deliver(other, {
    ...signed(other, NOW + 1),
    'x-infisical-reloader-relay': 'pod-a',
  });
  assert.deepEqual(relayed.json(), { status: 'accepted' });
  assert.equal(h.calls.events.length, 2, 'a relayed delivery is handled locally');
  assert.equal(h.calls.relayed.length, 1, 'and never relayed again');

  const forged = modifiedBody(NOW + 2, '/forged');
  const bad = await h.deliver(forged, {
    ...signed(forged, NOW + 2, 'not-the-secret'),
    'x-infisical-reloader-relay': 'pod-a',
  });
  assert.equal(bad.statusCode, 401, 'the relay header grants nothing');
  assert.equal(h.calls.events.length, 2);
});

test('a rotated webhook secret: the new one verifies at once, the old one only for maxAge', async (t) => {
  const h = harness();
  t.after(() => h.close());
  h.secrets.set('whsec-rotated-2222');
  const fresh = modifiedBody(NOW, '/new');
  const a = await h.deliver(fresh, signed(fresh, NOW, 'whsec-rotated-2222'));
  assert.equal(a.statusCode, 200, 'new secret');
  const old = modifiedBody(NOW, '/old');
  const b = await h.deliver(old, signed(old));
  assert.equal(b.statusCode, 200, 'old secret still verifies right after the rotation');
  h.clock.now += MAX_AGE_MS + 1;
  const late = modifiedBody(h.clock.now, '/late');
  const c = await h.deliver(late, signed(late, h.clock.now));
  assert.equal(c.statusCode, 401, 'old secret refused after maxAge');
  assert.equal(
    h.scrubber.scrub('x whsec-test-5f0c9a71d2e84b36 y'),
    'x whsec-test-5f0c9a71d2e84b36 y',
    'the old secret is forgotten by the scrubber',
  );
  assert.equal(h.scrubber.scrub('x whsec-rotated-2222 y'), 'x [redacted] y');
});
