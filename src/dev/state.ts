/**
 * The shared state the route modules of the local server work on: data, token store,
 * service-account authority, identities (with their effective token settings and universal-auth
 * lockout counters) and the webhook dispatcher. Also the two checks every secrets route makes:
 * "is there an identity token on this request" and "is that identity a member of the project".
 */
import type { FastifyRequest } from 'fastify';
import type { Logger } from '../logger.js';
import { forbidden, unauthorized } from './api-error.js';
import type { ServiceAccountAuthority } from './kube-jwt.js';
import type { SeedIdentity } from './seed.js';
import type { ProjectRecord, SecretStore } from './store.js';
import type { AccessTokenRecord, AccessTokenStore } from './tokens.js';
import type { WebhookDispatcher } from './webhooks.js';

export interface IdentityState {
  seed: SeedIdentity;
  /** Id of the one client secret of its universal auth (goes into the JWT as `clientSecretId`). */
  clientSecretId: string;
  ttl: number;
  maxTtl: number;
  numUsesLimit: number;
  /** Universal-auth lockout record (Infisical keeps it in Redis with an expiry). */
  lockout?: { failedAttempts: number; lockedOut: boolean; expiresAtMs: number };
}

export interface ServerState {
  store: SecretStore;
  tokens: AccessTokenStore;
  serviceAccounts: ServiceAccountAuthority;
  identities: Map<string, IdentityState>;
  webhooks: WebhookDispatcher;
  logger: Logger;
  /** The identity token validated by the auth hook for each request (Infisical's `req.auth`). */
  auth: WeakMap<FastifyRequest, AccessTokenRecord>;
}

/** Infisical's `verifyAuth`: no identity on the request → 401 "Token missing". */
export function requireIdentity(state: ServerState, req: FastifyRequest): AccessTokenRecord {
  const record = state.auth.get(req);
  if (!record) throw unauthorized('Token missing');
  return record;
}

/**
 * Infisical's project permission lookup for an identity: an unknown project, or one the
 * identity is not a member of, is the same 403 (the sentence is the error *name*).
 */
export function requireProject(
  state: ServerState,
  record: AccessTokenRecord,
  projectId: string,
): ProjectRecord {
  const project = state.store.projects.get(projectId);
  const identity = state.identities.get(record.identityId);
  const member =
    identity?.seed.projects === undefined || identity.seed.projects.includes(projectId);
  if (!project || !member) {
    throw forbidden(
      undefined,
      `Identity is not a member of the specified project with ID '${projectId}'`,
    );
  }
  return project;
}
