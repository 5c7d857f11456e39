/**
 * The official Node SDK (@infisical/sdk 5) against the local server: if the SDK can log in,
 * renew, list (with imports) and read single secrets, our routes, query handling and JSON are
 * what a real Infisical serves to it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InfisicalSDK } from '@infisical/sdk';
import { decodeJwtUnsafe } from '../../src/dev/jwt.js';
import { startServer } from './helpers.js';

function origin(url: string): string {
  return url.replace(/\/api$/, '');
}

test('SDK: universal-auth login, renew, listSecrets, listSecretsWithImports, getSecret', async (t) => {
  const srv = await startServer(t, { accessTokenTTL: 60 });
  const sdk = new InfisicalSDK({ siteUrl: origin(srv.url) });
  await sdk.auth().universalAuth.login({ clientId: 'cid', clientSecret: 'csec' });
  const first = sdk.auth().getAccessToken();
  assert.equal(decodeJwtUnsafe(first ?? '')?.identityId, 'ident-1');

  const listed = await sdk
    .secrets()
    .listSecrets({ projectId: 'proj-1', environment: 'dev', secretPath: '/' });
  const byKey = Object.fromEntries(listed.secrets.map((s) => [s.secretKey, s.secretValue]));
  assert.deepEqual(byKey, {
    DB_USER: 'app',
    DB_PASSWORD: 'pw',
    DSN: 'postgres://app:pw@db/k1', // the SDK asks for expandSecretReferences=true by default
    SHARED_OVERRIDE: 'own',
  });

  const merged = await sdk
    .secrets()
    .listSecretsWithImports({ projectId: 'proj-1', environment: 'dev', secretPath: '/' });
  const mergedByKey = Object.fromEntries(merged.map((s) => [s.secretKey, s.secretValue]));
  assert.equal(mergedByKey.SHARED_OVERRIDE, 'own', 'own keys win over imported ones');
  assert.equal(mergedByKey.REDIS_URL, 'redis://r');
  assert.equal(mergedByKey.COMMON, 'c1');

  const sub = await sdk
    .secrets()
    .listSecrets({ projectId: 'proj-1', environment: 'dev', secretPath: '/api', recursive: true });
  assert.deepEqual(sub.secrets.map((s) => s.secretKey).sort(), ['API_KEY', 'BILLING']);

  await sdk.auth().universalAuth.renew();
  const second = sdk.auth().getAccessToken();
  // Same record; the JWT string only differs when the second (iat) changed, as with jsonwebtoken.
  assert.equal(
    decodeJwtUnsafe(second ?? '')?.identityAccessTokenId,
    decodeJwtUnsafe(first ?? '')?.identityAccessTokenId,
  );

  const one = await sdk.secrets().getSecret({
    projectId: 'proj-1',
    environment: 'dev',
    secretPath: '/api',
    secretName: 'API_KEY',
  });
  assert.equal(one.secretValue, 'k1');
  assert.equal(one.secretKey, 'API_KEY');

  srv.setSecret({
    projectId: 'proj-1',
    environment: 'dev',
    path: '/api',
    key: 'API_KEY',
    value: 'rotated',
  });
  const after = await sdk
    .secrets()
    .listSecrets({ projectId: 'proj-1', environment: 'dev', secretPath: '/api' });
  assert.equal(after.secrets[0]?.secretValue, 'rotated');
  assert.ok(srv.requests.some((r) => r.route === 'GET /api/v3/secrets/raw' && r.status === 200));
  assert.ok(
    srv.requests.some((r) => r.route === 'POST /api/v1/auth/token/renew' && r.status === 200),
  );
});

test('SDK error mapping sees Infisical messages and status codes', async (t) => {
  const srv = await startServer(t);
  const sdk = new InfisicalSDK({ siteUrl: origin(srv.url) });
  await assert.rejects(
    sdk.auth().universalAuth.login({ clientId: 'cid', clientSecret: 'wrong' }),
    (err: Error) => {
      assert.equal(err.name, 'InfisicalSDKRequestError');
      assert.match(err.message, /\[StatusCode=401\] Invalid credentials$/);
      return true;
    },
  );
  await sdk.auth().universalAuth.login({ clientId: 'cid', clientSecret: 'csec' });
  await assert.rejects(
    sdk.secrets().listSecrets({ projectId: 'nope', environment: 'dev' }),
    (err: Error) => {
      assert.match(err.message, /\[StatusCode=403\] You are not allowed to access this resource$/);
      return true;
    },
  );
});
