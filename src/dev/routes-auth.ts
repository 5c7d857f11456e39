/**
 * `/api/v1/auth/*` of the local server: universal-auth and Kubernetes-auth login, token renew
 * and revoke (docs/infisical-api.md). Bodies are validated like Infisical's zod schemas; answers
 * are `{accessToken, expiresIn, accessTokenMaxTTL, tokenType: "Bearer"}` in that key order.
 *
 * Universal auth compares the client secret in constant time and keeps Infisical's lockout
 * (default 3 failures within 30 s → locked 300 s; a seed can turn it off).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { unauthorized } from './api-error.js';
import type { IdentityState, ServerState } from './state.js';
import type { AccessTokenRecord } from './tokens.js';
import { Validator } from './validate.js';

function loginAnswer(accessToken: string, record: AccessTokenRecord) {
  return {
    accessToken,
    expiresIn: record.ttl,
    accessTokenMaxTTL: record.maxTtl,
    tokenType: 'Bearer',
  };
}

function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** The lockout step of Infisical's universal-auth login; throws when locked or wrong. */
function checkClientSecret(identity: IdentityState, clientSecret: string, nowMs: number): void {
  const universal = identity.seed.universal;
  if (!universal) throw unauthorized('Invalid credentials');
  if (identity.lockout && identity.lockout.expiresAtMs <= nowMs) identity.lockout = undefined;
  if (identity.lockout?.lockedOut) {
    throw unauthorized('This identity auth method is temporarily locked, please try again later');
  }
  if (!sameSecret(clientSecret, universal.clientSecret)) {
    const policy = universal.lockout;
    if (policy) {
      const lock = identity.lockout ?? { failedAttempts: 0, lockedOut: false, expiresAtMs: 0 };
      lock.failedAttempts += 1;
      lock.lockedOut = lock.failedAttempts >= policy.threshold;
      lock.expiresAtMs = nowMs + 1000 * (lock.lockedOut ? policy.durationS : policy.counterResetS);
      identity.lockout = lock;
    }
    throw unauthorized('Invalid credentials');
  }
  identity.lockout = undefined;
}

/** Register the four auth routes under `/api/v1/auth`. */
export function registerAuthRoutes(app: FastifyInstance, state: ServerState): void {
  app.post('/api/v1/auth/universal-auth/login', async (req) => {
    const v = new Validator(req.body, 'body');
    const clientId = v.string('clientId');
    const clientSecret = v.string('clientSecret');
    v.string('subOrganizationName', true);
    v.done();
    const identity = [...state.identities.values()].find(
      (x) => x.seed.universal?.clientId === clientId,
    );
    if (!identity) throw unauthorized('Invalid credentials');
    checkClientSecret(identity, clientSecret, Date.now());
    const { accessToken, record } = state.tokens.issue({
      identityId: identity.seed.id,
      authMethod: 'universal-auth',
      clientSecretId: identity.clientSecretId,
      ttl: identity.ttl,
      maxTtl: identity.maxTtl,
      numUsesLimit: identity.numUsesLimit,
    });
    state.logger.debug({ identityId: identity.seed.id }, 'local infisical: universal-auth login');
    return loginAnswer(accessToken, record);
  });

  app.post('/api/v1/auth/kubernetes-auth/login', async (req) => {
    const v = new Validator(req.body, 'body');
    const identityId = v.string('identityId');
    const jwt = v.string('jwt');
    v.string('subOrganizationName', true);
    v.done();
    const identity = state.identities.get(identityId);
    const sa = state.serviceAccounts.authorize(identity?.seed.kubernetes, jwt);
    if (!identity) throw unauthorized('Identity not found'); // unreachable: no config → 404 above
    const { accessToken, record } = state.tokens.issue({
      identityId,
      authMethod: 'kubernetes-auth',
      ttl: identity.ttl,
      maxTtl: identity.maxTtl,
      numUsesLimit: identity.numUsesLimit,
    });
    state.logger.debug({ identityId, ...sa }, 'local infisical: kubernetes-auth login');
    return loginAnswer(accessToken, record);
  });

  app.post('/api/v1/auth/token/renew', async (req) => {
    const v = new Validator(req.body, 'body');
    const token = v.string('accessToken');
    v.done();
    const { accessToken, record } = state.tokens.renew(token);
    return loginAnswer(accessToken, record);
  });

  app.post('/api/v1/auth/token/revoke', async (req) => {
    const v = new Validator(req.body, 'body');
    const token = v.string('accessToken');
    v.done();
    state.tokens.revoke(token);
    return { message: 'Successfully revoked access token' };
  });
}
