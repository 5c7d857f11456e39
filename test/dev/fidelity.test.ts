/**
 * The local server answers as Infisical does where a client could tell: the key order of every
 * error body (the routes' response schema: reqId, statusCode, message, details?, error), weak
 * ETags, `imports` only when asked, only `include_imports` read, one issue for a body that is not
 * an object, the Kubernetes login error names, and the v4 routes missing on an older server.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, login, startServer, type Answer } from './helpers.js';

const ORDER = ['reqId', 'statusCode', 'message', 'error'];

function keysOf(a: Answer): string[] {
  return Object.keys(a.json);
}

test('error bodies: reqId, statusCode, message, details?, error — 400, 401, 403 TokenError, 403 details, 404, 422, 500', async (t) => {
  const srv = await startServer(t, { eventStreams: { licensed: true } });
  const token = await login(srv);
  const list = '/v4/secrets?projectId=proj-1&environment=dev';
  const answers: [string, Answer][] = [
    ['400', await api(srv, '/v4/secrets?environment=dev', { token })],
    ['401', await api(srv, list)],
    ['403 TokenError', await api(srv, list, { token: 'abc' })],
    [
      '404',
      await api(srv, '/v4/secrets?projectId=proj-1&environment=qa&recursive=true', { token }),
    ],
    ['422', await api(srv, '/v1/auth/universal-auth/login', { body: { clientId: 5 } })],
    [
      '500',
      await api(srv, '/v1/auth/universal-auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: undefined,
      }),
    ],
  ];
  for (const [what, a] of answers) {
    assert.ok(a.status >= 400, `${what}: ${a.status} ${a.text}`);
    assert.deepEqual(keysOf(a), ORDER, `${what}: ${a.text}`);
  }
  assert.equal(answers[2]?.[1].json.error, 'TokenError');
  assert.equal(answers[4]?.[1].json.error, 'ValidationFailure');
});

test('a 403 with details puts details before error', async (t) => {
  const srv = await startServer(t, { eventStreams: { licensed: true } });
  const token = await login(srv, 'cid2', 'csec2');
  srv.events.deny('ident-2');
  const res = await api(srv, '/v1/events/subscribe/project-events', {
    token,
    body: {
      projectId: 'proj-2',
      register: [{ event: 'secret:update', conditions: { environmentSlug: 'dev' } }],
    },
  });
  assert.equal(res.status, 403, res.text);
  assert.deepEqual(keysOf(res), ['reqId', 'statusCode', 'message', 'details', 'error']);
});

test('a body that is not an object is one zod issue, not one per field', async (t) => {
  const srv = await startServer(t);
  for (const body of [[1, 2], 'text', 7]) {
    const res = await api(srv, '/v1/auth/universal-auth/login', { body });
    assert.equal(res.status, 422, res.text);
    const issues = res.json.message as Record<string, unknown>[];
    assert.equal(issues.length, 1, res.text);
    assert.deepEqual(issues[0]?.path, []);
    assert.equal(issues[0]?.expected, 'object');
  }
});

test('ETag: a weak W/ If-None-Match matches too', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  const list = '/v4/secrets?projectId=proj-1&environment=dev';
  const first = await api(srv, list, { token });
  const etag = first.headers.get('etag') ?? '';
  assert.match(etag, /^"/);
  for (const inm of [etag, `W/${etag}`]) {
    const again = await api(srv, list, { token, headers: { 'if-none-match': inm } });
    assert.equal(again.status, 304, `If-None-Match ${inm}`);
    assert.equal(again.text, '');
  }
  const other = await api(srv, list, { token, headers: { 'if-none-match': 'W/"nope"' } });
  assert.equal(other.status, 200);
});

test('imports: left out unless include_imports=true; the camelCase includeImports is ignored', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  for (const path of [
    '/v4/secrets?projectId=proj-1&environment=dev',
    '/v3/secrets/raw?workspaceId=proj-1&environment=dev',
    '/v4/secrets?projectId=proj-1&environment=dev&includeImports=true',
    '/v4/secrets?projectId=proj-1&environment=dev&secretPath=/nope',
  ]) {
    const res = await api(srv, path, { token });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.json), ['secrets'], path);
  }
  const asked = await api(
    srv,
    '/v4/secrets?projectId=proj-1&environment=dev&include_imports=true',
    {
      token,
    },
  );
  assert.deepEqual(Object.keys(asked.json), ['secrets', 'imports']);
  const empty = await api(
    srv,
    '/v4/secrets?projectId=proj-1&environment=dev&secretPath=/nope&include_imports=true',
    { token },
  );
  assert.deepEqual(empty.json, { secrets: [], imports: [] });
});

test('Kubernetes login errors: names, statuses and key order as Infisical throws them', async (t) => {
  const srv = await startServer(t);
  const login = (identityId: string, jwt: string) =>
    api(srv, '/v1/auth/kubernetes-auth/login', { body: { identityId, jwt } });
  const other = await startServer(t);
  const cases: [string, string, number, string][] = [
    [
      'ident-1',
      srv.mintServiceAccountToken({ namespace: 'x', name: 'reloader' }),
      401,
      'UnauthorizedError',
    ],
    [
      'ident-1',
      srv.mintServiceAccountToken({ namespace: 'default', name: 'z' }),
      401,
      'UnauthorizedError',
    ],
    [
      'ident-aud',
      srv.mintServiceAccountToken({ namespace: 'default', name: 'x' }),
      401,
      'UnauthorizedError',
    ],
    [
      'ident-1',
      other.mintServiceAccountToken({ namespace: 'default', name: 'reloader' }),
      401,
      'KubernetesTokenReviewError',
    ],
    [
      'ident-1',
      srv.mintServiceAccountToken({ namespace: 'default', name: 'reloader', subject: 'admin' }),
      400,
      'KubernetesUsernameParseError',
    ],
    [
      'ident-2',
      srv.mintServiceAccountToken({ namespace: 'default', name: 'reloader' }),
      404,
      'NotFound',
    ],
  ];
  for (const [id, jwt, status, name] of cases) {
    const res = await login(id, jwt);
    assert.equal(res.status, status, res.text);
    assert.equal(res.json.error, name, res.text);
    assert.deepEqual(keysOf(res), ORDER, res.text);
  }
});

test('an older server (v4: false) answers 404 on /api/v4/secrets and serves v3', async (t) => {
  const srv = await startServer(t, { v4: false });
  const token = await login(srv);
  const v4 = await api(srv, '/v4/secrets?projectId=proj-1&environment=dev', { token });
  assert.equal(v4.status, 404);
  assert.notEqual(v4.json.error, 'NotFound', "fastify's route 404, not Infisical's NotFound");
  const v3 = await api(srv, '/v3/secrets/raw?workspaceId=proj-1&environment=dev', { token });
  assert.equal(v3.status, 200);
});
