/**
 * Hostile webhooks (issue 6 §2), property-based with fast-check: random bodies (bytes, JSON,
 * event look-alikes, deep nesting, sizes around and above the 1 MiB limit, invalid UTF-8),
 * content types, extra headers and signature headers (missing, garbage, duplicated, valid for
 * another body, wrong secret, valid but stale or from the future, valid). The oracle is built
 * from the webhook contract (docs/webhooks.md), independently of the code: over 1 MiB → 413; otherwise no valid fresh signature
 * → 401; a valid one → 200 or (body not a JSON object) 400. Never a 5xx, never onEvent without
 * a valid signature, and the server answers normally afterwards.
 *
 * The first property drives `buildServer(...).inject()` (no socket, fast); the second sends raw
 * HTTP/1.1 over TCP to the same server listening on 127.0.0.1 — duplicated headers, chunked
 * bodies, lying Content-Length — which only Node's real HTTP parser sees.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import fc from 'fast-check';
import { signWebhook } from '../../src/events/signature.js';
import { BODY_LIMIT } from '../../src/server/webhook-routes.js';
import {
  harness,
  HOOK,
  MAX_AGE_MS,
  modifiedBody,
  NOW,
  SECRET,
  signed,
} from '../server/fixtures.js';
import { addCanaries, record, scale, secrecyReport } from './support.js';

/** A secret value carried by some generated value events: must never be logged. */
const VALUE_CANARY = 'canary-fuzz-value-5e1d0c7b';
addCanaries(SECRET, VALUE_CANARY);

type SigKind =
  | 'none'
  | 'empty'
  | 'garbage'
  | 'valid'
  | 'valid-upper'
  | 'valid-spaced'
  | 'valid-comma'
  | 'stale'
  | 'future'
  | 'wrong-secret'
  | 'other-body'
  | 'truncated'
  | 'duplicated';

const SIG_KINDS: SigKind[] = [
  'none',
  'empty',
  'garbage',
  'valid',
  'valid',
  'valid',
  'valid-upper',
  'valid-spaced',
  'valid-comma',
  'stale',
  'future',
  'wrong-secret',
  'other-body',
  'truncated',
  'duplicated',
];

/** Kinds whose header carries a correct HMAC of the body, with the secret, at a fresh `t`. */
const VERIFIABLE = new Set<SigKind>(['valid', 'valid-upper', 'valid-spaced', 'valid-comma']);

/** Visible ASCII plus space and tab: what an HTTP header value may hold. */
const headerText = (maxLength: number) =>
  fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    maxLength,
  });

/** A body's top-level `timestamp` choice relative to the signature's `t`. */
type TsChoice = 'absent' | 'same' | 'other' | 'string';

const eventNames = fc.oneof(
  fc.constantFrom(
    'secrets.modified',
    'secret.created',
    'secret.updated',
    'secret.rotated',
    'secret.deleted',
    'test',
    'secrets.rotation-failed',
  ),
  headerText(30),
);

/** Objects shaped like events, with every field sometimes missing, mistyped or odd. */
const eventLike = fc.record(
  {
    event: fc.oneof(eventNames, fc.jsonValue({ maxDepth: 1 })),
    project: fc.oneof(
      fc.record(
        {
          workspaceId: fc.oneof(fc.constant('proj-1'), fc.string(), fc.integer()),
          projectId: fc.oneof(fc.constant('proj-1'), fc.string(), fc.constant(null)),
          environment: fc.oneof(fc.constant('dev'), fc.string()),
          secretPath: fc.oneof(fc.constantFrom('/', '/a/b', '', '../..', '//'), fc.string()),
        },
        { requiredKeys: [] },
      ),
      fc.jsonValue({ maxDepth: 2 }),
    ),
    payload: fc.oneof(
      fc.record(
        {
          secretKey: fc.oneof(fc.constantFrom('DB_PASSWORD', '', '__proto__'), fc.string()),
          secretValue: fc.oneof(fc.constant(VALUE_CANARY), fc.string(), fc.integer()),
          rotation: fc.oneof(fc.boolean(), fc.string()),
          environment: fc.string(),
          secretPath: fc.string(),
        },
        { requiredKeys: [] },
      ),
      fc.jsonValue({ maxDepth: 2 }),
    ),
  },
  { requiredKeys: [] },
);

/** Well-formed events of both formats, some carrying the canary value. */
const goodEvent = fc.oneof(
  fc.record({
    event: fc.constant('secrets.modified'),
    project: fc.record({
      workspaceId: fc.constant('proj-1'),
      projectId: fc.constant('proj-1'),
      environment: fc.constantFrom('dev', 'prod'),
      secretPath: fc.constantFrom('/', '/app', '/app/db'),
    }),
  }),
  fc.record({
    event: fc.constantFrom('secret.created', 'secret.updated', 'secret.rotated'),
    payload: fc.record({
      secretKey: fc.stringMatching(/^[A-Z][A-Z0-9_]{0,20}$/),
      secretValue: fc.oneof(fc.constant(VALUE_CANARY), fc.string({ minLength: 1 })),
      rotation: fc.boolean(),
    }),
  }),
);

/** Body makers: given the signature's `t`, the exact bytes to send. */
const bodyMaker: fc.Arbitrary<{ kind: string; make: (t: number) => Buffer }> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .uint8Array({ maxLength: 2048 })
      .map((a) => ({ kind: 'bytes', make: () => Buffer.from(a) })),
  },
  {
    weight: 3,
    arbitrary: fc
      .jsonValue({ maxDepth: 6 })
      .map((v) => ({ kind: 'json', make: () => Buffer.from(JSON.stringify(v) ?? 'null') })),
  },
  {
    weight: 6,
    arbitrary: fc
      .tuple(eventLike, fc.constantFrom<TsChoice>('absent', 'same', 'same', 'other', 'string'))
      .map(([ev, ts]) => ({
        kind: `event(${ts})`,
        make: (t: number) => {
          const body: Record<string, unknown> = { ...ev };
          if (ts === 'same') body['timestamp'] = t;
          if (ts === 'other') body['timestamp'] = t + 1;
          if (ts === 'string') body['timestamp'] = String(t);
          return Buffer.from(JSON.stringify(body));
        },
      })),
  },
  {
    weight: 4,
    arbitrary: fc.tuple(goodEvent, fc.boolean()).map(([ev, withTs]) => ({
      kind: 'good-event',
      make: (t: number) => Buffer.from(JSON.stringify(withTs ? { ...ev, timestamp: t } : ev)),
    })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.oneof(
          fc.constantFrom(BODY_LIMIT - 1, BODY_LIMIT, BODY_LIMIT + 1, BODY_LIMIT * 1.05),
          fc.integer({ min: 0, max: Math.floor(BODY_LIMIT * 1.1) }),
        ),
        fc.constantFrom('x', ' ', '{', '"', 'é', '\u0000'),
      )
      .map(([size, fill]) => ({
        kind: `huge(${Math.floor(size)})`,
        make: () => {
          const bytes = Buffer.alloc(Math.floor(size), fill);
          // Often a real event at the front, padded with spaces: valid JSON of that size.
          if (fill === ' ') bytes.write('{"event":"test"}');
          return bytes;
        },
      })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 1, max: 20_000 }), fc.boolean())
      .map(([depth, arrays]) => ({
        kind: `nested(${depth})`,
        make: () =>
          Buffer.from(
            arrays
              ? '['.repeat(depth) + ']'.repeat(depth)
              : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth),
          ),
      })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      { kind: 'empty', make: () => Buffer.alloc(0) },
      { kind: 'bad-utf8', make: () => Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) },
      { kind: 'bom', make: () => Buffer.from('\ufeff{"event":"test"}') },
      { kind: 'utf16', make: () => Buffer.from('{"event":"test"}', 'utf16le') },
    ),
  },
);

const contentType = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/json; charset=utf-16',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=----x',
    'application/cloudevents+json',
    '',
    ';;;',
    '*/*',
  ),
  headerText(60),
);

const extraHeaders = fc.dictionary(
  fc.constantFrom('content-encoding', 'x-forwarded-for', 'x-infisical-event', 'accept', 'origin'),
  headerText(40),
  { maxKeys: 3 },
);

/** The signature header (or headers) for `kind`, and the `t` it names. */
function signatureFor(
  kind: SigKind,
  body: Buffer,
  t: number,
  garbage: string,
): string | string[] | undefined {
  const hmac = (b: Buffer | string, secret = SECRET) => signWebhook(b, secret, t);
  switch (kind) {
    case 'none':
      return undefined;
    case 'empty':
      return '';
    case 'garbage':
      return garbage;
    case 'valid':
      return hmac(body);
    case 'valid-upper':
      return hmac(body).replace(/;(.*)$/, (_m, hex: string) => `;${hex.toUpperCase()}`);
    case 'valid-spaced':
      return `  ${hmac(body).replace(';', ' ; ')}  `;
    case 'valid-comma':
      return hmac(body).replace(';', ',');
    case 'stale':
    case 'future':
      return hmac(body); // `t` was moved out of the window by the caller
    case 'wrong-secret':
      return hmac(body, `${SECRET}x`);
    case 'other-body':
      return hmac(Buffer.concat([body, Buffer.from(' ')]));
    case 'truncated':
      return hmac(body).slice(0, -1);
    case 'duplicated':
      return [hmac(body), hmac(body)];
  }
}

/** The numeric top-level `timestamp` of a UTF-8 JSON object body, if any. */
function bodyTimestamp(body: Buffer): number | undefined {
  const parsed = parseJsonObject(body);
  const ts = parsed?.['timestamp'];
  return typeof ts === 'number' ? ts : undefined;
}

function parseJsonObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

test('hostile webhook deliveries through inject(): never 5xx, never an unsigned effect, exact 400/401/413', async (t) => {
  const runs = scale(1000, 10_000);
  const h = harness();
  t.after(() => h.close());
  const statuses = new Map<number, number>();
  const byKind = new Map<string, number>();
  let accepted = 0;
  let cases = 0;
  await fc.assert(
    fc.asyncProperty(
      bodyMaker,
      fc.constantFrom(...SIG_KINDS),
      fc.integer({ min: -MAX_AGE_MS, max: MAX_AGE_MS }),
      fc.integer({ min: 1, max: 10 * MAX_AGE_MS }),
      headerText(120),
      contentType,
      extraHeaders,
      async (maker, sig, skew, outside, garbage, type, extra) => {
        cases += 1;
        let ts = NOW + skew;
        if (sig === 'stale') ts = NOW - MAX_AGE_MS - outside;
        if (sig === 'future') ts = NOW + MAX_AGE_MS + outside;
        const body = maker.make(ts);
        const header = signatureFor(sig, body, ts, garbage);
        const headers: Record<string, string | string[]> = { ...extra };
        if (type !== undefined) headers['content-type'] = type;
        if (header !== undefined) headers['x-infisical-signature'] = header;
        const before = h.calls.events.length;
        const res = await h.webhook.inject({ method: 'POST', url: HOOK, payload: body, headers });
        const after = h.calls.events.length;
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        byKind.set(
          maker.kind.replace(/\(.*/, ''),
          (byKind.get(maker.kind.replace(/\(.*/, '')) ?? 0) + 1,
        );
        record(res.body);
        const what = `${maker.kind}, ${body.length} bytes, signature ${sig}: ${res.statusCode} ${res.body.slice(0, 200)}`;

        assert.ok(res.statusCode < 500, `never a 5xx (${what})`);
        assert.ok(after - before <= 1, `at most one event per delivery (${what})`);
        if (body.length > BODY_LIMIT) {
          assert.equal(res.statusCode, 413, what);
          assert.equal(after, before, `no effect (${what})`);
          return;
        }
        const signedTs = bodyTimestamp(body);
        const verifiable = VERIFIABLE.has(sig) && (signedTs === undefined || signedTs === ts);
        if (!verifiable) {
          assert.equal(res.statusCode, 401, what);
          assert.equal(
            after,
            before,
            `onEvent is never called without a valid signature (${what})`,
          );
          return;
        }
        if (parseJsonObject(body) === undefined) {
          assert.equal(res.statusCode, 400, what);
          assert.equal(after, before, what);
          return;
        }
        assert.ok([200, 400].includes(res.statusCode), what);
        if (after > before) accepted += 1;
      },
    ),
    { numRuns: runs },
  );
  // Still healthy, still serving: a fresh, valid event is accepted.
  const health = await h.admin.inject({ method: 'GET', url: '/healthz' });
  assert.equal(health.statusCode, 200);
  const body = modifiedBody(NOW + 7);
  const ok = await h.webhook.inject({
    method: 'POST',
    url: HOOK,
    payload: body,
    headers: signed(body, NOW + 7),
  });
  assert.equal(ok.statusCode, 200, ok.body);
  const metrics = await h.metrics.text();
  record(metrics, ...h.logs);
  t.diagnostic(
    `webhook fuzz (inject): ${cases} cases; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; ` +
      `bodies ${JSON.stringify(Object.fromEntries(byKind))}; ${accepted} reached onEvent, all validly signed`,
  );
  assert.equal(cases, runs);
});

/** One raw HTTP exchange; resolves with the status code (0: closed without an answer). */
function rawExchange(
  port: number,
  chunks: Buffer[],
  halfClose: boolean,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within 10 s; got ${JSON.stringify(data.slice(0, 200))}`));
    }, 10_000);
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      // One answer is all we want: stop at the end of its headers (+ a short body).
      if (/\r\n\r\n/.test(data)) socket.end();
    });
    socket.on('error', () => undefined); // reset by the server: judged by what was received
    socket.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      resolve({ status: m ? Number(m[1]) : 0, text: data });
    });
    socket.on('connect', () => {
      for (const c of chunks) socket.write(c);
      if (halfClose) socket.end();
    });
  });
}

test('hostile raw HTTP/1.1 on a real socket: duplicated headers, chunked and lying framing never give a 5xx or an unsigned effect', async (t) => {
  const runs = scale(150, 1500);
  const h = harness();
  t.after(() => h.close());
  await h.webhook.listen({ host: '127.0.0.1', port: 0 });
  const address = h.webhook.server.address();
  assert.ok(address !== null && typeof address === 'object');
  const port = address.port;
  const statuses = new Map<number, number>();
  let cases = 0;
  await fc.assert(
    fc.asyncProperty(
      bodyMaker,
      fc.constantFrom('valid', 'duplicated', 'two-different', 'none', 'garbage'),
      fc.constantFrom('length', 'chunked', 'chunked-bad', 'length-short', 'length-long'),
      headerText(80),
      async (maker, sig, framing, garbage) => {
        cases += 1;
        const ts = NOW;
        const body = maker.make(ts);
        const good = signWebhook(body, SECRET, ts);
        const sigLines =
          sig === 'valid'
            ? [good]
            : sig === 'duplicated'
              ? [good, good]
              : sig === 'two-different'
                ? [good, signWebhook(body, 'other', ts)]
                : sig === 'garbage'
                  ? [garbage]
                  : [];
        const lines = [`POST ${HOOK} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
        for (const s of sigLines) lines.push(`X-Infisical-Signature: ${s}`);
        const chunks: Buffer[] = [];
        let halfClose = false;
        if (framing === 'length' || framing === 'length-short' || framing === 'length-long') {
          const declared =
            framing === 'length'
              ? body.length
              : framing === 'length-short'
                ? Math.max(0, body.length - 1)
                : body.length + 10;
          lines.push(`Content-Length: ${declared}`);
          chunks.push(Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), body);
          halfClose = framing === 'length-long'; // the promised bytes never come
        } else {
          lines.push('Transfer-Encoding: chunked');
          chunks.push(Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'));
          for (let i = 0; i < body.length; i += 65_536) {
            const part = body.subarray(i, i + 65_536);
            const size = framing === 'chunked-bad' && i === 0 ? 'zz' : part.length.toString(16);
            chunks.push(Buffer.from(`${size}\r\n`), part, Buffer.from('\r\n'));
          }
          chunks.push(Buffer.from('0\r\n\r\n'));
        }
        const before = h.calls.events.length;
        const res = await rawExchange(port, chunks, halfClose);
        const after = h.calls.events.length;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        record(res.text.slice(0, 4096));
        const what = `${maker.kind}, ${body.length} bytes, ${sig}, ${framing}: ${res.text.slice(0, 120)}`;
        assert.ok(res.status < 500, `never a 5xx (${what})`);
        if (sig !== 'valid') assert.equal(after, before, `no unsigned effect (${what})`);
        if (framing === 'length' && body.length > BODY_LIMIT) assert.equal(res.status, 413, what);
        if (framing === 'chunked' && body.length > BODY_LIMIT) assert.equal(res.status, 413, what);
        if (sig !== 'valid' && framing === 'length' && body.length <= BODY_LIMIT) {
          assert.equal(res.status, 401, what);
        }
      },
    ),
    { numRuns: runs },
  );
  const health = await h.admin.inject({ method: 'GET', url: '/healthz' });
  assert.equal(health.statusCode, 200);
  record(...h.logs);
  t.diagnostic(
    `webhook fuzz (raw socket): ${cases} cases; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))} (0 = closed without an answer)`,
  );
});

test('secrecy: no canary in any answer, log line or metric of this file', (t) => {
  secrecyReport(t, 'webhook-fuzz');
});
