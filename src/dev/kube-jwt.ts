/**
 * Kubernetes service-account tokens for the local server. A real Infisical sends the pod's JWT to
 * the cluster's TokenReview API; here the server *is* the issuer: it mints projected-token-shaped
 * JWTs (`mint`) signed with its own HS256 key and reviews them itself (`review`), then applies
 * Infisical's checks in Infisical's order (Infisical's `identity-kubernetes-auth-service.ts`; docs/infisical-api.md):
 *
 * 1. no Kubernetes config for the identity → 404;
 * 2. review failed (bad signature, malformed, expired) → 401 `KubernetesTokenReviewError`
 *    "Kubernetes token not authenticated";
 * 3. username (`sub`) not `system:serviceaccount:<ns>:<name>` → 400 `KubernetesUsernameParseError`;
 * 4. `allowedNamespaces` / `allowedNames`: comma list, each entry exact or a picomatch glob → 401;
 * 5. `allowedAudience` must be one of the token's audiences → 401.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import picomatch from 'picomatch';
import { badRequest, notFound, unauthorized } from './api-error.js';
import { signJwt, verifyJwt } from './jwt.js';

/** The audience real clusters put in projected tokens by default. */
export const DEFAULT_SA_AUDIENCE = 'https://kubernetes.default.svc.cluster.local';

export interface MintParams {
  namespace: string;
  name: string;
  /** Lifetime in seconds; default 3600 (a projected token's usual `expirationSeconds`). */
  expiresInS?: number;
  audience?: string;
  /** Override `sub` (tests of the username check). */
  subject?: string;
}

export interface KubernetesAuthConfig {
  allowedNamespaces: string;
  allowedNames: string;
  allowedAudience: string;
}

/** What a TokenReview answers: who the token belongs to, or why it is not authenticated. */
export type TokenReviewStatus =
  | { authenticated: true; user: { username: string; uid: string }; audiences: string[] }
  | { authenticated: false };

/** Mints and reviews service-account JWTs with a key only this server holds. */
export class ServiceAccountAuthority {
  private readonly key: Buffer;
  private readonly now: () => number;

  constructor(options: { key?: Buffer; now?: () => number } = {}) {
    this.key = options.key ?? randomBytes(32);
    this.now = options.now ?? Date.now;
  }

  /** A JWT shaped like a projected service-account token (`kubernetes.io` claims included). */
  mint(params: MintParams): string {
    const nowS = Math.floor(this.now() / 1000);
    const payload = {
      aud: [params.audience ?? DEFAULT_SA_AUDIENCE],
      iss: 'https://kubernetes.default.svc.cluster.local',
      jti: randomUUID(),
      'kubernetes.io': {
        namespace: params.namespace,
        serviceaccount: { name: params.name, uid: randomUUID() },
      },
      nbf: nowS,
      sub: params.subject ?? `system:serviceaccount:${params.namespace}:${params.name}`,
    };
    return signJwt(payload, this.key, { expiresInS: params.expiresInS ?? 3600, nowMs: this.now() });
  }

  /** The TokenReview the API server would return for `jwt`. */
  review(jwt: string): TokenReviewStatus {
    try {
      const payload = verifyJwt(jwt, this.key, this.now());
      const aud = payload.aud;
      const audiences = Array.isArray(aud) ? aud.map(String) : typeof aud === 'string' ? [aud] : [];
      const username = typeof payload.sub === 'string' ? payload.sub : '';
      return { authenticated: true, user: { username, uid: randomUUID() }, audiences };
    } catch {
      return { authenticated: false };
    }
  }

  /**
   * Infisical's Kubernetes login checks for `identityId` with config `config` (undefined when
   * the identity has no Kubernetes auth). Returns the service account on success.
   */
  authorize(
    config: KubernetesAuthConfig | undefined,
    jwt: string,
  ): { namespace: string; name: string } {
    if (!config) {
      throw notFound(
        'Kubernetes auth method not found for identity, did you configure Kubernetes auth?',
      );
    }
    const status = this.review(jwt);
    if (!status.authenticated) {
      throw unauthorized('Kubernetes token not authenticated', 'KubernetesTokenReviewError');
    }
    const { namespace, name } = extractK8sUsername(status.user.username);
    if (config.allowedNamespaces && !allowedBy(config.allowedNamespaces, namespace)) {
      throw unauthorized('Access denied: K8s namespace not allowed.');
    }
    if (config.allowedNames && !allowedBy(config.allowedNames, name)) {
      throw unauthorized('Access denied: K8s name not allowed.');
    }
    if (config.allowedAudience && !status.audiences.includes(config.allowedAudience)) {
      throw unauthorized('Access denied: K8s audience not allowed.');
    }
    return { namespace, name };
  }
}

/** `extractK8sUsername` from `identity-kubernetes-auth-fns.ts`, message included. */
export function extractK8sUsername(username: string): { namespace: string; name: string } {
  const parts = username.split(':');
  if (parts.length === 4 && parts[0] === 'system' && parts[1] === 'serviceaccount') {
    return { namespace: parts[2] ?? '', name: parts[3] ?? '' };
  }
  throw badRequest(
    `Invalid Kubernetes service account username format: "${username}". Expected format: system:serviceaccount:<namespace>:<name>`,
    'KubernetesUsernameParseError',
  );
}

/** A comma list of exact values or picomatch globs (default options), as Infisical checks it. */
export function allowedBy(list: string, value: string): boolean {
  return list
    .split(',')
    .map((entry) => entry.trim())
    .some((entry) => entry === value || picomatch.isMatch(value, entry));
}
