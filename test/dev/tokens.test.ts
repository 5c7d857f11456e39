import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { InfisicalApiError } from '../../src/dev/api-error.js';
import { decodeJwtUnsafe, JwtError, signJwt, verifyJwt } from '../../src/dev/jwt.js';
import { AccessTokenStore } from '../../src/dev/tokens.js';

const KEY = Buffer.from('k'.repeat(32));

test('signJwt produces a standard HS256 JWT (header, iat, exp, signature)', () => {
  const token = signJwt({ a: 1 }, KEY, { expiresInS: 60, nowMs: 1_000_500 });
  const [h, p, s] = token.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(h!, 'base64url').toString()), {
    alg: 'HS256',
    typ: 'JWT',
  });
  assert.deepEqual(JSON.parse(Buffer.from(p!, 'base64url').toString()), {
    a: 1,
    iat: 1000,
    exp: 1060,
  });
  assert.equal(s, createHmac('sha256', KEY).update(`${h}.${p}`).digest('base64url'));
  assert.equal(
    decodeJwtUnsafe(signJwt({ b: 2 }, KEY, { nowMs: 0 }))?.exp,
    undefined,
    'TTL 0 = no exp',
  );
});

test('verifyJwt fails with jsonwebtoken messages', () => {
  const token = signJwt({ a: 1 }, KEY, { expiresInS: 10, nowMs: 100_000 });
  const msg = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof JwtError);
      return err.message;
    }
    return 'no error';
  };
  assert.equal(
    msg(() => verifyJwt('', KEY)),
    'jwt must be provided',
  );
  assert.equal(
    msg(() => verifyJwt('abc', KEY)),
    'jwt malformed',
  );
  assert.equal(
    msg(() => verifyJwt('a.b.c', KEY)),
    'invalid token',
  );
  assert.equal(
    msg(() => verifyJwt(token, Buffer.from('other'), 100_000)),
    'invalid signature',
  );
  assert.equal(
    msg(() => verifyJwt(token, KEY, 110_000)),
    'jwt expired',
    'expired when now >= exp',
  );
  assert.deepEqual(verifyJwt(token, KEY, 109_999), { a: 1, iat: 100, exp: 110 });
  const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${token.split('.')[1]}.x`;
  assert.equal(
    msg(() => verifyJwt(none, KEY)),
    'invalid algorithm',
  );
});

function apiError(fn: () => unknown): { status: number; name: string; message: unknown } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InfisicalApiError, String(err));
    return { status: err.statusCode, name: err.errorName, message: err.body };
  }
  assert.fail('no error');
}

function clockedStore() {
  const clock = { now: 1_700_000_000_000 };
  return { clock, store: new AccessTokenStore({ now: () => clock.now }) };
}

test('renew: new JWT for the same record, TTL from the renewal, max TTL from the login', () => {
  const { clock, store } = clockedStore();
  const { accessToken, record } = store.issue({
    identityId: 'i',
    authMethod: 'universal-auth',
    ttl: 100,
    maxTtl: 250,
    numUsesLimit: 0,
  });
  clock.now += 60_000;
  const renewed = store.renew(accessToken);
  assert.notEqual(renewed.accessToken, accessToken);
  assert.equal(decodeJwtUnsafe(renewed.accessToken)?.identityAccessTokenId, record.id);
  assert.equal(decodeJwtUnsafe(renewed.accessToken)?.exp, Math.floor(clock.now / 1000) + 100);
  assert.equal(record.lastRenewedAtMs, clock.now);
  clock.now += 90_000; // old JWT expired (exp = login + 100 s), new one still valid
  assert.deepEqual(
    apiError(() => store.verify(accessToken)),
    {
      status: 403,
      name: 'TokenError',
      message: 'Your token has expired. Please re-authenticate.',
    },
  );
  store.authenticate(store.verify(renewed.accessToken));
  // login + 150 s: renewing would end at login + 250 s = exactly the max → still allowed
  const again = store.renew(renewed.accessToken);
  clock.now += 1_000; // login + 151 s: a full TTL no longer fits under the max
  assert.deepEqual(
    apiError(() => store.renew(again.accessToken)),
    {
      status: 401,
      name: 'UnauthorizedError',
      message: 'Failed to renew MI access token past its Max TTL expiration',
    },
  );
  assert.equal(store.size, 0, 'a failed renew deletes the record');
});

test('renew after the max TTL (TTL 0 tokens never expire)', () => {
  const { clock, store } = clockedStore();
  const { accessToken } = store.issue({
    identityId: 'i',
    authMethod: 'token',
    ttl: 0,
    maxTtl: 10,
    numUsesLimit: 0,
  });
  clock.now += 11_000;
  assert.equal(
    apiError(() => store.renew(accessToken)).message,
    'Failed to renew MI access token due to Max TTL expiration',
  );
});

test('record TTL is checked on use even while the JWT is still valid', () => {
  const { store } = clockedStore();
  const { accessToken, record } = store.issue({
    identityId: 'i',
    authMethod: 'token',
    ttl: 100,
    maxTtl: 0,
    numUsesLimit: 0,
  });
  record.createdAtMs -= 101_000;
  assert.deepEqual(
    apiError(() => store.authenticate(store.verify(accessToken))),
    {
      status: 401,
      name: 'UnauthorizedError',
      message: 'Failed to renew MI access token due to TTL expiration',
    },
  );
  assert.equal(
    apiError(() => store.authenticate(store.verify(accessToken))).message,
    'No identity access token found',
  );
});

test('uses limit: counted per call, renew checks but does not count', () => {
  const { store } = clockedStore();
  const { accessToken } = store.issue({
    identityId: 'i',
    authMethod: 'token',
    ttl: 0,
    maxTtl: 0,
    numUsesLimit: 2,
  });
  const payload = store.verify(accessToken);
  store.authenticate(payload);
  store.renew(accessToken);
  store.authenticate(payload);
  const limit = 'Unable to renew because access token number of uses limit reached';
  assert.deepEqual(
    apiError(() => store.renew(accessToken)),
    { status: 401, name: 'UnauthorizedError', message: limit },
  );
  assert.equal(
    apiError(() => store.authenticate(payload)).message,
    'No identity access token found',
  );
});

test('revoke and non-identity tokens', () => {
  const { store } = clockedStore();
  const { accessToken } = store.issue({
    identityId: 'i',
    authMethod: 'token',
    ttl: 0,
    maxTtl: 0,
    numUsesLimit: 0,
  });
  store.revoke(accessToken);
  assert.equal(apiError(() => store.renew(accessToken)).message, 'No identity access token found');
  assert.equal(apiError(() => store.revoke(accessToken)).status, 401);
});

test('only identity access tokens can be renewed or revoked', () => {
  const store = new AccessTokenStore({ key: KEY });
  const userJwt = signJwt({ authTokenType: 'accessToken', userId: 'u' }, KEY, { expiresInS: 60 });
  assert.deepEqual(
    apiError(() => store.renew(userJwt)),
    {
      status: 400,
      name: 'BadRequest',
      message: 'Only identity access tokens can be renewed',
    },
  );
  assert.deepEqual(
    apiError(() => store.revoke(userJwt)),
    {
      status: 401,
      name: 'UnauthorizedError',
      message: 'Only identity access tokens can be revoked',
    },
  );
});
