import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { decodeJwtUnsafe } from '../../src/dev/jwt.js';
import { api, errorOf, login, msUntilExpired, startServer } from './helpers.js';

const LIST = '/v3/secrets/raw?workspaceId=proj-1&environment=dev';

test('universal-auth login answers Infisical shape; token is an identity JWT', async (t) => {
  const srv = await startServer(t);
  const res = await api(srv, '/v1/auth/universal-auth/login/', {
    body: { clientId: ' cid ', clientSecret: 'csec' },
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(Object.keys(res.json), [
    'accessToken',
    'expiresIn',
    'accessTokenMaxTTL',
    'tokenType',
  ]);
  assert.equal(res.json.expiresIn, 7200);
  assert.equal(res.json.accessTokenMaxTTL, 2592000);
  assert.equal(res.json.tokenType, 'Bearer');
  const payload = decodeJwtUnsafe(res.json.accessToken as string)!;
  assert.deepEqual(Object.keys(payload), [
    'identityId',
    'clientSecretId',
    'identityAccessTokenId',
    'authTokenType',
    'iat',
    'exp',
  ]);
  assert.equal(payload.identityId, 'ident-1');
  assert.equal(payload.authTokenType, 'identityAccessToken');
  assert.equal((payload.exp as number) - (payload.iat as number), 7200);
  assert.match(res.headers.get('etag') ?? '', /^"[A-Za-z0-9+/]{27}="$/);
});

test('universal-auth failures: 401 Invalid credentials, lockout, 422 issues', async (t) => {
  const srv = await startServer(t);
  const wrong = await api(srv, '/v1/auth/universal-auth/login', {
    body: { clientId: 'cid', clientSecret: 'nope' },
  });
  assert.deepEqual(errorOf(wrong), {
    statusCode: 401,
    message: 'Invalid credentials',
    error: 'UnauthorizedError',
  });
  const unknown = await api(srv, '/v1/auth/universal-auth/login', {
    body: { clientId: 'x', clientSecret: 'y' },
  });
  assert.equal(unknown.json.message, 'Invalid credentials');
  await api(srv, '/v1/auth/universal-auth/login', {
    body: { clientId: 'cid', clientSecret: 'nope' },
  });
  await api(srv, '/v1/auth/universal-auth/login', {
    body: { clientId: 'cid', clientSecret: 'nope' },
  });
  const locked = await api(srv, '/v1/auth/universal-auth/login', {
    body: { clientId: 'cid', clientSecret: 'csec' },
  });
  assert.deepEqual(errorOf(locked), {
    statusCode: 401,
    message: 'This identity auth method is temporarily locked, please try again later',
    error: 'UnauthorizedError',
  });
  for (let i = 0; i < 4; i += 1) {
    await api(srv, '/v1/auth/universal-auth/login', {
      body: { clientId: 'cid2', clientSecret: 'bad' },
    });
  }
  assert.equal(
    (
      await api(srv, '/v1/auth/universal-auth/login', {
        body: { clientId: 'cid2', clientSecret: 'csec2' },
      })
    ).status,
    200,
    'lockout: false in the seed',
  );
  const invalid = await api(srv, '/v1/auth/universal-auth/login', { body: { clientId: 5 } });
  assert.deepEqual(errorOf(invalid), {
    statusCode: 422,
    error: 'ValidationFailure',
    message: [
      {
        code: 'invalid_type',
        expected: 'string',
        received: 'number',
        path: ['clientId'],
        message: 'Expected string, received number',
      },
      {
        code: 'invalid_type',
        expected: 'string',
        received: 'undefined',
        path: ['clientSecret'],
        message: 'Required',
      },
    ],
  });
  const noBody = await api(srv, '/v1/auth/universal-auth/login', { method: 'POST' });
  assert.deepEqual((noBody.json.message as unknown[])[0], {
    code: 'invalid_type',
    expected: 'object',
    received: 'undefined',
    path: [],
    message: 'Required',
  });
});

test('bearer problems: missing 401, malformed/bad signature/expired 403 TokenError', async (t) => {
  const srv = await startServer(t, { accessTokenTTL: 1 });
  assert.deepEqual(errorOf(await api(srv, LIST)), {
    statusCode: 401,
    message: 'Token missing',
    error: 'UnauthorizedError',
  });
  assert.deepEqual(errorOf(await api(srv, LIST, { token: 'abc' })), {
    statusCode: 403,
    error: 'TokenError',
    message:
      'The provided access token is malformed. Please use a valid token or generate a new one and try again.',
  });
  const token = await login(srv);
  const tampered = `${token.slice(0, -2)}${token.endsWith('A') ? 'BB' : 'AA'}`;
  assert.equal((await api(srv, LIST, { token: tampered })).json.message, 'invalid signature');
  await sleep(msUntilExpired(token));
  assert.deepEqual(errorOf(await api(srv, LIST, { token })), {
    statusCode: 403,
    error: 'TokenError',
    message: 'Your token has expired. Please re-authenticate.',
  });
  const renew = await api(srv, '/v1/auth/token/renew', { body: { accessToken: token } });
  assert.equal(renew.status, 403, 'renewing an expired JWT is a TokenError too');
});

test('renew: new JWT, same record; old JWT keeps working; refused once a TTL no longer fits', async (t) => {
  const srv = await startServer(t, { accessTokenTTL: 3, accessTokenMaxTTL: 4 });
  const first = await login(srv);
  const renew = await api(srv, '/v1/auth/token/renew', { body: { accessToken: first } });
  assert.equal(renew.status, 200, renew.text);
  assert.deepEqual(Object.keys(renew.json), [
    'accessToken',
    'expiresIn',
    'accessTokenMaxTTL',
    'tokenType',
  ]);
  assert.equal(renew.json.expiresIn, 3);
  assert.equal(renew.json.accessTokenMaxTTL, 4);
  const second = renew.json.accessToken as string;
  assert.equal(
    decodeJwtUnsafe(second)?.identityAccessTokenId,
    decodeJwtUnsafe(first)?.identityAccessTokenId,
  );
  assert.equal(
    (await api(srv, LIST, { token: first })).status,
    200,
    'old JWT still valid until its exp',
  );
  assert.equal((await api(srv, LIST, { token: second })).status, 200);
  await sleep(1200); // login + 1.2 s: now + 3 s > login + 4 s
  const refused = await api(srv, '/v1/auth/token/renew', { body: { accessToken: second } });
  assert.deepEqual(errorOf(refused), {
    statusCode: 401,
    message: 'Failed to renew MI access token past its Max TTL expiration',
    error: 'UnauthorizedError',
  });
  assert.deepEqual(errorOf(await api(srv, LIST, { token: second })), {
    statusCode: 401,
    message: 'No identity access token found',
    error: 'UnauthorizedError',
  });
});

test('max TTL passed with a never-expiring token', async (t) => {
  const srv = await startServer(t, { accessTokenTTL: 0, accessTokenMaxTTL: 1 });
  const token = await login(srv);
  assert.equal(decodeJwtUnsafe(token)?.exp, undefined);
  await sleep(1100);
  const res = await api(srv, '/v1/auth/token/renew', { body: { accessToken: token } });
  assert.equal(res.json.message, 'Failed to renew MI access token due to Max TTL expiration');
});

test('uses limit counts every authenticated request (renew with a bearer header too)', async (t) => {
  const srv = await startServer(t, { accessTokenNumUsesLimit: 2 });
  const token = await login(srv);
  assert.equal((await api(srv, LIST, { token })).status, 200);
  assert.equal((await api(srv, LIST, { token })).status, 200);
  const third = await api(srv, LIST, { token });
  assert.deepEqual(errorOf(third), {
    statusCode: 401,
    message: 'Unable to renew because access token number of uses limit reached',
    error: 'UnauthorizedError',
  });
  assert.equal((await api(srv, LIST, { token })).json.message, 'No identity access token found');
});

test('revoke', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  const res = await api(srv, '/v1/auth/token/revoke', { body: { accessToken: token } });
  assert.deepEqual(res.json, { message: 'Successfully revoked access token' });
  assert.equal((await api(srv, LIST, { token })).json.message, 'No identity access token found');
  const again = await api(srv, '/v1/auth/token/revoke', { body: { accessToken: token } });
  assert.deepEqual(errorOf(again), {
    statusCode: 401,
    message: 'No identity access token found',
    error: 'UnauthorizedError',
  });
});

test('kubernetes login: service-account JWT checks in Infisical order', async (t) => {
  const srv = await startServer(t, { accessTokenTTL: 600 });
  const k8s = (identityId: string, jwt: string) =>
    api(srv, '/v1/auth/kubernetes-auth/login', { body: { identityId, jwt } });
  const ok = await k8s(
    'ident-1',
    srv.mintServiceAccountToken({ namespace: 'default', name: 'reloader' }),
  );
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.expiresIn, 600);
  assert.equal((await api(srv, LIST, { token: ok.json.accessToken as string })).status, 200);
  assert.equal(
    (await k8s('ident-1', srv.mintServiceAccountToken({ namespace: 'team-blue', name: 'web-1' })))
      .status,
    200,
    'globs',
  );

  const cases: [string, string, Record<string, unknown>][] = [
    [
      'ident-1',
      srv.mintServiceAccountToken({ namespace: 'default', name: 'reloader', expiresInS: -5 }),
      {
        statusCode: 401,
        message: 'Kubernetes token not authenticated',
        error: 'KubernetesTokenReviewError',
      },
    ],
    [
      'ident-1',
      'not-a-jwt',
      {
        statusCode: 401,
        message: 'Kubernetes token not authenticated',
        error: 'KubernetesTokenReviewError',
      },
    ],
    [
      'ident-1',
      srv.mintServiceAccountToken({ namespace: 'kube-system', name: 'reloader' }),
      {
        statusCode: 401,
        message: 'Access denied: K8s namespace not allowed.',
        error: 'UnauthorizedError',
      },
    ],
    [
      'ident-1',
      srv.mintServiceAccountToken({ namespace: 'default', name: 'other' }),
      {
        statusCode: 401,
        message: 'Access denied: K8s name not allowed.',
        error: 'UnauthorizedError',
      },
    ],
    [
      'ident-1',
      srv.mintServiceAccountToken({ namespace: 'default', name: 'reloader', subject: 'admin' }),
      {
        statusCode: 400,
        message:
          'Invalid Kubernetes service account username format: "admin". Expected format: system:serviceaccount:<namespace>:<name>',
        error: 'KubernetesUsernameParseError',
      },
    ],
    [
      'ident-2',
      srv.mintServiceAccountToken({ namespace: 'default', name: 'reloader' }),
      {
        statusCode: 404,
        message:
          'Kubernetes auth method not found for identity, did you configure Kubernetes auth?',
        error: 'NotFound',
      },
    ],
    [
      'ident-aud',
      srv.mintServiceAccountToken({ namespace: 'default', name: 'x' }),
      {
        statusCode: 401,
        message: 'Access denied: K8s audience not allowed.',
        error: 'UnauthorizedError',
      },
    ],
  ];
  for (const [id, jwt, expected] of cases) {
    const res = await k8s(id, jwt);
    assert.equal(res.status, expected.statusCode, `${JSON.stringify(expected)} got ${res.text}`);
    assert.deepEqual(errorOf(res), expected);
  }
  const other = await startServer(t);
  const foreign = other.mintServiceAccountToken({ namespace: 'default', name: 'reloader' });
  assert.equal(
    (await k8s('ident-1', foreign)).json.error,
    'KubernetesTokenReviewError',
    'signed by another server',
  );
  assert.equal(
    (
      await k8s(
        'ident-aud',
        srv.mintServiceAccountToken({ namespace: 'a', name: 'b', audience: 'infisical' }),
      )
    ).status,
    200,
  );
});
