import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InfisicalClient, type InfisicalClientOptions } from '../../src/infisical/client.js';
import { InfisicalHttpError, ReloaderError } from '../../src/errors.js';
import { Scrubber, createLogger, silentLogger } from '../../src/logger.js';
import { openSession } from '../../src/infisical/session.js';
import type { InfisicalSpec } from '../../src/config/types.js';
import type { SourceSpec } from '../../src/config/types.js';
import {
  captureLines,
  infisicalError,
  json,
  scriptedServer,
  type Handler,
} from './scripted-server.js';

const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

const SOURCE: SourceSpec = {
  projectId: 'proj-1',
  environment: 'prod',
  path: '/api',
  recursive: false,
  includeImports: true,
  expandReferences: true,
};

const GRANT = {
  accessToken: 'tok-new-1',
  expiresIn: 7200,
  accessTokenMaxTTL: 2592000,
  tokenType: 'Bearer',
};

/** A client on a scripted server, fast retries, closed at the end of the test. */
async function setup(
  t: import('node:test').TestContext,
  handler: Handler,
  over: Partial<InfisicalClientOptions> = {},
) {
  const srv = await scriptedServer(t, handler);
  const scrubber = new Scrubber();
  const log = captureLines();
  const client = new InfisicalClient({
    baseUrl: srv.url,
    timeoutMs: 2000,
    retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 50 },
    scrubber,
    logger: createLogger({ level: 'debug', destination: log.stream, scrubber }),
    ...over,
  });
  t.after(() => client.close());
  return { srv, client, scrubber, log };
}

function secret(key: string, value: string, extra: Record<string, unknown> = {}) {
  return { secretKey: key, secretValue: value, ...extra };
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<ReloaderError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ReloaderError, `expected a ReloaderError, got ${String(caught)}`);
  assert.equal(caught.code, code, `message: ${caught.message}`);
  return caught;
}

test('loginKubernetes posts {identityId, jwt} without auth header and returns the grant', async (t) => {
  const { srv, client, scrubber } = await setup(t, (_req, res) => json(res, 200, GRANT));
  const before = Date.now();
  const grant = await client.loginKubernetes('id-123', 'jwt-abc.def.ghi');
  assert.deepEqual(
    { ...grant, obtainedAtMs: 0 },
    { accessToken: 'tok-new-1', expiresInS: 7200, maxTtlS: 2592000, obtainedAtMs: 0 },
  );
  assert.ok(
    grant.obtainedAtMs >= before && grant.obtainedAtMs <= Date.now(),
    'obtainedAtMs is the send time',
  );
  assert.equal(srv.seen.length, 1);
  const req = srv.seen[0]!;
  assert.equal(req.method, 'POST');
  assert.equal(req.path, '/api/v1/auth/kubernetes-auth/login');
  assert.deepEqual(req.body, { identityId: 'id-123', jwt: 'jwt-abc.def.ghi' });
  assert.equal(req.headers['authorization'], undefined);
  assert.equal(req.headers['content-type'], 'application/json');
  assert.equal(req.headers['user-agent'], `infisical-reloader/${VERSION}`);
  assert.equal(scrubber.scrub('x tok-new-1 y'), 'x [redacted] y', 'the token is registered');
});

test('loginUniversal posts {clientId, clientSecret}; absent max TTL reads as 0', async (t) => {
  const { srv, client } = await setup(t, (_req, res) =>
    json(res, 200, { accessToken: 'tok-u', expiresIn: '60' }),
  );
  const grant = await client.loginUniversal('cid', 'csecret');
  assert.equal(grant.expiresInS, 60, 'coerced like the server does');
  assert.equal(grant.maxTtlS, 0);
  assert.equal(srv.seen[0]!.path, '/api/v1/auth/universal-auth/login');
  assert.deepEqual(srv.seen[0]!.body, { clientId: 'cid', clientSecret: 'csecret' });
});

test('renew and revoke send the token in the body and no Authorization header', async (t) => {
  const { srv, client } = await setup(t, (req, res) => {
    if (req.path.endsWith('/renew')) json(res, 200, { ...GRANT, accessToken: 'tok-renewed' });
    else json(res, 200, { message: 'Successfully revoked access token' });
  });
  const g = await client.renew('tok-old');
  assert.equal(g.accessToken, 'tok-renewed');
  await client.revoke('tok-renewed');
  assert.deepEqual(
    srv.seen.map((s) => [s.method, s.path, s.body, s.headers['authorization']]),
    [
      ['POST', '/api/v1/auth/token/renew', { accessToken: 'tok-old' }, undefined],
      ['POST', '/api/v1/auth/token/revoke', { accessToken: 'tok-renewed' }, undefined],
    ],
  );
});

test('a login answer without accessToken is RLD_ERR_INFISICAL_RESPONSE', async (t) => {
  const { client } = await setup(t, (_req, res) => json(res, 200, { expiresIn: 5 }));
  await rejectsWith(client.loginUniversal('c', 's3cret'), 'RLD_ERR_INFISICAL_RESPONSE');
});

test('listSecrets sends the exact query and bearer, and returns values and etag', async (t) => {
  const { srv, client, scrubber } = await setup(t, (_req, res) =>
    json(
      res,
      200,
      {
        secrets: [
          // a full Infisical record ...
          secret('DB_PASSWORD', 'pw-1', {
            id: 'x',
            _id: 'x',
            workspace: 'proj-1',
            environment: 'prod',
            version: 3,
            type: 'shared',
            secretComment: '',
            secretReminderNote: null,
            secretReminderRepeatDays: null,
            skipMultilineEncoding: false,
            createdAt: '2026-01-01T00:00:00.000Z',
            updatedAt: '2026-01-02T00:00:00.000Z',
            actor: null,
            isRotatedSecret: false,
            rotationId: null,
            secretPath: '/api',
            secretValueHidden: false,
            secretMetadata: [],
            tags: [{ id: 't', slug: 'db', color: '#fff', name: 'db' }],
          }),
          // ... and a minimal one: every optional field absent
          secret('EMPTY', ''),
        ],
      },
      { etag: '"abc123"' },
    ),
  );
  const listing = await client.listSecrets(SOURCE, 'tok-list');
  assert.deepEqual(
    [...listing.secrets],
    [
      ['DB_PASSWORD', 'pw-1'],
      ['EMPTY', ''],
    ],
  );
  assert.equal(listing.etag, '"abc123"');
  const req = srv.seen[0]!;
  assert.equal(req.method, 'GET');
  assert.equal(req.path, '/api/v4/secrets');
  assert.equal(req.headers['authorization'], 'Bearer tok-list');
  assert.deepEqual(Object.fromEntries(req.query), {
    projectId: 'proj-1',
    environment: 'prod',
    secretPath: '/api',
    recursive: 'false',
    include_imports: 'true',
    expandSecretReferences: 'true',
    viewSecretValue: 'true',
  });
  assert.equal(scrubber.scrub('pw-1'), '[redacted]', 'values are registered in the scrubber');
});

test('listSecrets booleans follow the source (all false)', async (t) => {
  const { srv, client } = await setup(t, (_req, res) => json(res, 200, { secrets: [] }));
  const listing = await client.listSecrets(
    { ...SOURCE, path: '/', includeImports: false, expandReferences: false, recursive: true },
    'tok',
  );
  assert.equal(listing.secrets.size, 0);
  assert.equal(listing.etag, undefined);
  const q = srv.seen[0]!.query;
  assert.deepEqual(
    ['secretPath', 'recursive', 'include_imports', 'includeImports', 'expandSecretReferences'].map(
      (k) => q.get(k),
    ),
    ['/', 'true', 'false', null, 'false'],
  );
});

test('merge: own keys beat imports, the last import beats earlier ones, personal is skipped', async (t) => {
  const { client } = await setup(t, (_req, res) =>
    json(res, 200, {
      secrets: [
        secret('OWN', 'own-value'),
        secret('SHARED_AND_PERSONAL', 'shared-v', { type: 'shared' }),
        secret('SHARED_AND_PERSONAL', 'personal-v', { type: 'personal' }),
        secret('ONLY_PERSONAL', 'p', { type: 'personal' }),
      ],
      imports: [
        {
          secretPath: '/first',
          environment: 'prod',
          folderId: 'f1',
          secrets: [secret('OWN', 'from-first'), secret('IMP', 'first-imp'), secret('A', 'a1')],
        },
        { secretPath: '/second', environment: 'prod', secrets: [secret('IMP', 'second-imp')] },
        { secrets: [] },
      ],
    }),
  );
  const { secrets } = await client.listSecrets(SOURCE, 'tok');
  assert.equal(secrets.get('OWN'), 'own-value');
  assert.equal(secrets.get('IMP'), 'second-imp', 'the last import wins, as Infisical resolves it');
  assert.equal(secrets.get('A'), 'a1');
  assert.equal(secrets.get('SHARED_AND_PERSONAL'), 'shared-v');
  assert.equal(secrets.has('ONLY_PERSONAL'), false);
  assert.equal(secrets.size, 4);
});

test('recursive: the shallower folder wins a key collision, then code-point order; logged by key', async (t) => {
  const { client, log } = await setup(t, (_req, res) =>
    json(res, 200, {
      secrets: [
        secret('K', 'deep', { secretPath: '/api/a/b' }),
        secret('K', 'root', { secretPath: '/api' }),
        secret('K', 'mid', { secretPath: '/api/a' }),
        secret('T', 'from-b', { secretPath: '/api/b' }),
        secret('T', 'from-a', { secretPath: '/api/a' }),
        secret('U', 'u-no-path'),
        secret('U', 'u-sub', { secretPath: '/api/x' }),
      ],
    }),
  );
  const { secrets } = await client.listSecrets({ ...SOURCE, recursive: true }, 'tok');
  assert.equal(secrets.get('K'), 'root');
  assert.equal(secrets.get('T'), 'from-a');
  assert.equal(
    secrets.get('U'),
    'u-no-path',
    'a secret without secretPath is in the source folder',
  );
  const warns = log.lines.filter((l) => l.includes('two folders'));
  assert.equal(warns.length, 4);
  for (const v of ['deep', 'root', 'mid', 'from-a', 'from-b']) {
    assert.ok(!log.lines.some((l) => l.includes(`"${v}"`)), `value ${v} not logged`);
  }
});

test('listSecrets rejects unreadable bodies with RLD_ERR_INFISICAL_RESPONSE, without retrying', async (t) => {
  const bodies: [unknown, RegExp][] = [
    [{ notSecrets: [] }, /no "secrets" array/],
    [{ secrets: {} }, /no "secrets" array/],
    [{ secrets: [{ secretValue: 'v' }] }, /secrets\[0\] has no string secretKey/],
    [{ secrets: [{ secretKey: 'K', secretValue: 5 }] }, /secret "K" .* no string secretValue/],
    [
      { secrets: [secret('H', '<hidden-by-infisical>', { secretValueHidden: true })] },
      /"H" is hidden/,
    ],
    [{ secrets: [], imports: [{ secretPath: '/x' }] }, /imports\[0\] has no "secrets"/],
    [{ secrets: [], imports: 'nope' }, /"imports" is not an array/],
  ];
  let i = 0;
  const { srv, client } = await setup(t, (_req, res) => json(res, 200, bodies[i++]![0]));
  for (const [, pattern] of bodies) {
    const err = await rejectsWith(client.listSecrets(SOURCE, 'tok'), 'RLD_ERR_INFISICAL_RESPONSE');
    assert.match(err.message, pattern);
  }
  assert.equal(srv.seen.length, bodies.length, 'one request per call: no retry');
});

test('a 200 that is not JSON is RLD_ERR_INFISICAL_RESPONSE', async (t) => {
  const { client } = await setup(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<html>proxy</html>');
  });
  await rejectsWith(client.listSecrets(SOURCE, 'tok'), 'RLD_ERR_INFISICAL_RESPONSE');
});

test('a body sent in many small chunks is decoded whole: multi-byte characters split across chunks survive', async (t) => {
  const value = 'pässwörd-€-😀-'.repeat(40);
  const body = Buffer.from(JSON.stringify({ secrets: [secret('U', value), secret('A', 'plain')] }));
  const { client } = await setup(t, async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    // 7-byte pieces: every multi-byte character above is cut somewhere
    for (let i = 0; i < body.length; i += 7) {
      res.write(body.subarray(i, i + 7));
      if (i % 700 === 0) await new Promise((r) => setImmediate(r));
    }
    res.end();
  });
  const listing = await client.listSecrets(SOURCE, 'tok');
  assert.equal(listing.secrets.get('U'), value);
  assert.equal(listing.secrets.get('A'), 'plain');
});

test('a body over maxBodyBytes is RLD_ERR_INFISICAL_RESPONSE, even when it arrives in pieces', async (t) => {
  const body = JSON.stringify({ secrets: [secret('BIG', 'x'.repeat(4096))] });
  const { client } = await setup(
    t,
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      for (let i = 0; i < body.length; i += 512) res.write(body.slice(i, i + 512));
      res.end();
    },
    { maxBodyBytes: 2048 },
  );
  const err = await rejectsWith(client.listSecrets(SOURCE, 'tok'), 'RLD_ERR_INFISICAL_RESPONSE');
  assert.match(err.message, /larger than 2048 bytes/);
});

test('the default transport keeps one connection alive across calls, and does not follow redirects', async (t) => {
  const ports: number[] = [];
  const { srv, client } = await setup(t, (req, res, raw) => {
    ports.push(raw.socket.remotePort ?? -1);
    if (req.path.endsWith('/revoke')) {
      res.writeHead(302, { location: '/elsewhere' });
      res.end();
    } else json(res, 200, GRANT);
  });
  await client.loginUniversal('c', 's');
  await client.renew('tok-1');
  assert.equal(ports.length, 2);
  assert.equal(ports[0], ports[1], 'the second call reuses the first connection');
  await assert.rejects(client.revoke('tok-1'));
  assert.equal(srv.seen.length, 3, 'the redirect is answered, not followed');
});

test('error mapping: 404 on login is RLD_ERR_AUTH and is not retried', async (t) => {
  const msg = 'Kubernetes auth method not found for identity, did you configure Kubernetes auth?';
  const { srv, client } = await setup(t, (_req, res) =>
    infisicalError(res, 404, 'NotFoundError', msg),
  );
  const err = await rejectsWith(client.loginKubernetes('id', 'jwt-x'), 'RLD_ERR_AUTH');
  assert.ok(err instanceof InfisicalHttpError, 'an InfisicalHttpError');
  assert.equal(err.status, 404);
  assert.equal(err.infisicalError, 'NotFoundError');
  assert.ok(err.message.includes(msg), err.message);
  assert.equal(srv.seen.length, 1);
});

test('error mapping: 401 on renew past max TTL is RLD_ERR_TOKEN', async (t) => {
  const msg = 'Failed to renew MI access token past its Max TTL expiration';
  const { srv, client } = await setup(t, (_req, res) =>
    infisicalError(res, 401, 'UnauthorizedError', msg),
  );
  const err = await rejectsWith(client.renew('tok-expired-renew'), 'RLD_ERR_TOKEN');
  assert.ok(err.message.includes(msg), err.message);
  assert.equal((err as InfisicalHttpError).status, 401);
  assert.equal(srv.seen.length, 1);
});

test('error mapping on listing: 403 TokenError and 401 are RLD_ERR_TOKEN, 403 PermissionDenied is HTTP', async (t) => {
  const answers: [number, string, string][] = [
    [403, 'TokenError', 'Your token has expired. Please re-authenticate.'],
    [401, 'UnauthorizedError', 'No identity access token found'],
    [403, 'PermissionDenied', 'You are not allowed to readValue on secrets'],
    [404, 'NotFound', 'Folder not found'],
  ];
  let i = 0;
  const { srv, client } = await setup(t, (_req, res) => {
    const [s, e, m] = answers[i++]!;
    infisicalError(res, s, e, m);
  });
  await rejectsWith(client.listSecrets(SOURCE, 'tok'), 'RLD_ERR_TOKEN');
  await rejectsWith(client.listSecrets(SOURCE, 'tok'), 'RLD_ERR_TOKEN');
  const denied = await rejectsWith(client.listSecrets(SOURCE, 'tok'), 'RLD_ERR_INFISICAL_HTTP');
  assert.equal((denied as InfisicalHttpError).infisicalError, 'PermissionDenied');
  await rejectsWith(client.listSecrets(SOURCE, 'tok'), 'RLD_ERR_INFISICAL_HTTP');
  assert.equal(srv.seen.length, 4, 'no 4xx was retried');
});

test('error mapping: a 422 with an array of zod issues becomes one joined message', async (t) => {
  const issues = [
    {
      code: 'invalid_type',
      expected: 'string',
      received: 'undefined',
      path: ['identityId'],
      message: 'Required',
    },
    { code: 'too_small', path: ['jwt'], message: 'String must contain at least 1 character(s)' },
  ];
  const { client } = await setup(t, (req, res) => {
    infisicalError(res, 422, 'ValidationFailure', issues);
    void req;
  });
  const login = await rejectsWith(client.loginKubernetes('', ''), 'RLD_ERR_AUTH');
  assert.match(
    login.message,
    /422 ValidationFailure: identityId: Required; jwt: String must contain at least 1 character\(s\)$/,
  );
  const list = await rejectsWith(client.listSecrets(SOURCE, 'tok'), 'RLD_ERR_INFISICAL_HTTP');
  assert.match(list.message, /identityId: Required; jwt:/);
});

test('500 is retried, then the success is returned', async (t) => {
  let n = 0;
  const { srv, client } = await setup(t, (_req, res) => {
    if (++n <= 2) infisicalError(res, 500, 'InternalServerError', 'Something went wrong');
    else json(res, 200, GRANT);
  });
  const g = await client.renew('tok');
  assert.equal(g.accessToken, 'tok-new-1');
  assert.equal(srv.seen.length, 3);
});

test('500 forever: RLD_ERR_INFISICAL_HTTP after exactly `attempts` tries', async (t) => {
  const { srv, client } = await setup(t, (_req, res) =>
    infisicalError(res, 503, 'ServiceUnavailable', 'down'),
  );
  const err = await rejectsWith(client.loginUniversal('c', 'secret-xyz'), 'RLD_ERR_INFISICAL_HTTP');
  assert.equal((err as InfisicalHttpError).status, 503);
  assert.equal(srv.seen.length, 4);
});

test('429 with retry-after is honoured (measured) before the retry succeeds', async (t) => {
  const { srv, client } = await setup(t, (_req, res) => {
    if (srv.seen.length === 1) {
      infisicalError(
        res,
        429,
        'RateLimitError',
        'Rate limit exceeded. Please try again in 1 seconds',
        {
          'retry-after': '1',
        },
      );
    } else json(res, 200, { secrets: [secret('A', 'b')] });
  });
  const listing = await client.listSecrets(SOURCE, 'tok');
  assert.equal(listing.secrets.get('A'), 'b');
  assert.equal(srv.seen.length, 2);
  const gap = srv.seen[1]!.atMs - srv.seen[0]!.atMs;
  assert.ok(
    gap >= 950 && gap < 2500,
    `waited ${gap} ms for retry-after: 1 (backoff alone is ≤ 50 ms)`,
  );
});

test('429 whose retry-after exceeds the cap is thrown without waiting', async (t) => {
  const { srv, client } = await setup(
    t,
    (_req, res) =>
      infisicalError(res, 429, 'RateLimitError', 'slow down', { 'retry-after': '120' }),
    { retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 5000 } },
  );
  const started = Date.now();
  await rejectsWith(client.listSecrets(SOURCE, 'tok'), 'RLD_ERR_INFISICAL_HTTP');
  assert.equal(srv.seen.length, 1);
  assert.ok(Date.now() - started < 1000, 'did not wait for the retry-after');
});

test('a connection reset is retried', async (t) => {
  const { srv, client } = await setup(t, (_req, res, raw) => {
    if (srv.seen.length === 1) raw.socket.destroy();
    else json(res, 200, GRANT);
  });
  const g = await client.loginKubernetes('id', 'jwt');
  assert.equal(g.accessToken, 'tok-new-1');
  assert.equal(srv.seen.length, 2);
});

test('resets on every attempt end in RLD_ERR_INFISICAL_NETWORK with the cause kept', async (t) => {
  const { srv, client } = await setup(t, (_req, _res, raw) => {
    raw.socket.destroy();
  });
  const err = await rejectsWith(client.renew('tok-reset'), 'RLD_ERR_INFISICAL_NETWORK');
  assert.ok(err.cause instanceof Error, 'undici error kept as cause');
  assert.match(
    err.message,
    /POST \/v1\/auth\/token\/renew at http:\/\/127\.0\.0\.1:\d+\/api: connection failed/,
  );
  assert.equal(srv.seen.length, 4);
});

test('a refused connection is RLD_ERR_INFISICAL_NETWORK naming the errno and the base URL', async (t) => {
  const srv = await scriptedServer(t, (_req, res) => json(res, 200, {}));
  const probe = createHttpsServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  void srv;
  const client = new InfisicalClient({
    baseUrl: `http://127.0.0.1:${port}/api`,
    timeoutMs: 1000,
    retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 5 },
    scrubber: new Scrubber(),
  });
  t.after(() => client.close());
  const err = await rejectsWith(client.loginUniversal('c', 's'), 'RLD_ERR_INFISICAL_NETWORK');
  assert.match(err.message, /ECONNREFUSED/);
  assert.ok(err.message.includes(`at http://127.0.0.1:${port}/api:`), err.message);
  assert.equal(err.details?.['baseUrl'], `http://127.0.0.1:${port}/api`);
});

test('a slow answer is RLD_ERR_INFISICAL_TIMEOUT after timeoutMs, per attempt', async (t) => {
  const { srv, client } = await setup(
    t,
    () => {
      /* never answers */
    },
    { timeoutMs: 150, retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 5 } },
  );
  const started = Date.now();
  const err = await rejectsWith(client.listSecrets(SOURCE, 'tok'), 'RLD_ERR_INFISICAL_TIMEOUT');
  const took = Date.now() - started;
  assert.equal(srv.seen.length, 2, 'timeouts are retried');
  assert.ok(took >= 290 && took < 1500, `took ${took} ms`);
  assert.match(err.message, /at http:\/\/127\.0\.0\.1:\d+\/api: no answer within 150 ms/);
});

test('a body that stalls after the headers also times out', async (t) => {
  const { client } = await setup(
    t,
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"secrets":[');
    },
    { timeoutMs: 150, retry: { attempts: 1, baseDelayMs: 5, maxDelayMs: 5 } },
  );
  await rejectsWith(client.listSecrets(SOURCE, 'tok'), 'RLD_ERR_INFISICAL_TIMEOUT');
});

test('close() aborts an in-flight request and its retries', async (t) => {
  const { srv, client } = await setup(t, () => {
    /* never answers */
  });
  const p = client.listSecrets(SOURCE, 'tok');
  while (srv.seen.length === 0) await new Promise((r) => setTimeout(r, 5));
  const outcome = rejectsWith(p, 'RLD_ERR_INFISICAL_NETWORK'); // handler attached before close()
  await client.close();
  const err = await outcome;
  assert.match(err.message, /client closed/);
  assert.equal(srv.seen.length, 1);
});

test('canaries: no credential or value reaches an error message, details or a log line', async (t) => {
  const JWT = 'CANARY-JWT-eyJhbGciOiJSUzI1NiIs';
  const CLIENT_SECRET = 'CANARY-CLIENT-SECRET-9f8e7d';
  const TOKEN = 'CANARY-ACCESS-TOKEN-a1b2c3';
  const NEW_TOKEN = 'CANARY-NEW-TOKEN-d4e5f6';
  const VALUE = 'CANARY-SECRET-VALUE-0x77';
  const canaries = [JWT, CLIENT_SECRET, TOKEN, NEW_TOKEN, VALUE];
  const srvCalls = { renew: 0, list: 0 };
  // A hostile/buggy server echoes whatever it received into its error messages.
  const { client, log } = await setup(t, (req, res) => {
    if (req.path.endsWith('/renew') && srvCalls.renew++ === 0) {
      json(res, 200, { accessToken: NEW_TOKEN, expiresIn: 10, accessTokenMaxTTL: 20 });
      return;
    }
    if (req.path.endsWith('/v4/secrets') && srvCalls.list++ === 0) {
      json(res, 200, { secrets: [secret('K', VALUE)] });
      return;
    }
    const echo = `${req.raw} ${String(req.headers['authorization'])} ${NEW_TOKEN} ${VALUE}`;
    const status = req.path.endsWith('/v4/secrets') ? 403 : 401;
    infisicalError(res, status, 'TokenError', [{ path: ['jwt'], message: `bad: ${echo}` }]);
  });
  await client.renew(TOKEN);
  await client.listSecrets(SOURCE, TOKEN);
  const errors: unknown[] = [];
  for (const call of [
    () => client.loginKubernetes('id', JWT),
    () => client.loginUniversal('cid', CLIENT_SECRET),
    () => client.renew(TOKEN),
    () => client.listSecrets(SOURCE, TOKEN),
  ]) {
    try {
      await call();
      assert.fail('expected a rejection');
    } catch (err) {
      errors.push(err);
    }
  }
  assert.equal(errors.length, 4);
  for (const err of errors) {
    assert.ok(err instanceof ReloaderError, String(err));
    assert.match(err.message, /\[redacted\]/, 'the echo was there and got censored');
    const text = `${err.message} ${JSON.stringify(err.toJSON())} ${String(err.stack)}`;
    for (const c of canaries) assert.ok(!text.includes(c), `canary ${c} leaked into: ${text}`);
  }
  assert.ok(log.lines.length > 0, 'debug lines were written');
  for (const line of log.lines) {
    for (const c of canaries) assert.ok(!line.includes(c), `canary ${c} leaked into log: ${line}`);
  }
});

test('caFile: TLS to a server with a private CA works only with that CA', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rld-ca-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
  } catch {
    t.skip('openssl is not available');
    return;
  }
  const server = createHttpsServer(
    { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
    (_req, res) => json(res, 200, GRANT),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const baseUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
  const retry = { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 };

  const infisical = (caFile?: string): InfisicalSpec => ({
    url: baseUrl,
    auth: { kind: 'token', token: 'static-token-123' },
    renewAt: 0.8,
    timeoutMs: 2000,
    ...(caFile !== undefined ? { caFile } : {}),
    eventSubscription: {
      enabled: false,
      heartbeatTimeoutMs: 45_000,
      reconnectMinMs: 1000,
      reconnectMaxMs: 60_000,
    },
  });
  const deps = { logger: silentLogger(), scrubber: new Scrubber() };
  const trusted = await openSession(infisical(join(dir, 'cert.pem')), deps);
  t.after(() => trusted.close());
  assert.equal((await trusted.client.renew('tok')).accessToken, 'tok-new-1');

  const untrusted = new InfisicalClient({
    baseUrl,
    timeoutMs: 2000,
    retry,
    scrubber: new Scrubber(),
  });
  t.after(() => untrusted.close());
  await rejectsWith(untrusted.renew('tok'), 'RLD_ERR_INFISICAL_NETWORK');

  // An unreadable caFile is one coded error from openSession (no I/O in any constructor).
  await assert.rejects(
    openSession(infisical(join(dir, 'missing.pem')), deps),
    (err: unknown) =>
      err instanceof ReloaderError &&
      err.code === 'RLD_ERR_INFISICAL_NETWORK' &&
      /missing\.pem \(ENOENT\)/.test(err.message),
  );
});

test('listSecrets against the local server: v4 on a current one; on an older one (no v4) one 404, then v3 for good', async (t) => {
  const { startInfisical, oneProjectSeed } = await import('../helpers/harness.js');
  for (const v4 of [true, false]) {
    const local = await startInfisical(t, oneProjectSeed({ '/': '{ A: one, B: two }' }), { v4 });
    const token = local.issueAccessToken({ identityId: 'i1' });
    const client = new InfisicalClient({
      baseUrl: local.url,
      timeoutMs: 2000,
      logger: silentLogger(),
      scrubber: new Scrubber(),
    });
    t.after(() => client.close());
    const source = { ...SOURCE, projectId: 'p1', path: '/' };
    for (let i = 0; i < 2; i++) {
      const listing = await client.listSecrets(source, token);
      assert.deepEqual(Object.fromEntries(listing.secrets), { A: 'one', B: 'two' });
    }
    const routes = local.requests.map((r) => `${r.route.split('?')[0]} ${r.status}`);
    assert.deepEqual(
      routes,
      v4
        ? ['GET /api/v4/secrets 200', 'GET /api/v4/secrets 200']
        : ['GET /api/v4/secrets 404', 'GET /api/v3/secrets/raw 200', 'GET /api/v3/secrets/raw 200'],
    );
  }
});

test("listSecrets: Infisical's own 404 NotFound on v4 (a missing project) is the error, no fallback", async (t) => {
  const { srv, client } = await setup(t, (_req, res) =>
    infisicalError(res, 404, 'NotFound', 'Project with ID proj-1 not found'),
  );
  await assert.rejects(client.listSecrets(SOURCE, 'tok'), (err: unknown) => {
    assert.ok(err instanceof InfisicalHttpError);
    assert.match(err.message, /v4\/secrets answered 404 NotFound/);
    return true;
  });
  assert.deepEqual(
    srv.seen.map((r) => r.path),
    ['/api/v4/secrets'],
  );
});
