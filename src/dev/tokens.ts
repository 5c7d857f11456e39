/**
 * Machine-identity access tokens, reproducing `identity-access-token-service.ts` (docs/infisical-api.md):
 *
 * - a token is an HS256 JWT `{identityId, clientSecretId?, identityAccessTokenId,
 *   authTokenType: "identityAccessToken", iat, exp?}` signed with a per-server random key, plus a
 *   server-side record (TTL, max TTL, uses limit, createdAt, lastRenewedAt);
 * - every authenticated call validates the record: uses limit (`uses > 0 && uses >= limit` →
 *   delete, 401), TTL from lastRenewedAt-or-createdAt (→ delete, 401), then counts one use;
 * - renew re-checks uses and TTL (without counting a use), refuses past max TTL counted from the
 *   original login, moves lastRenewedAt and signs a *new* JWT for the same record; old JWT
 *   strings keep working until their own `exp`;
 * - every failure deletes the record, as Infisical does.
 *
 * Access-token periods (`accessTokenPeriod`) and trusted IPs are not modelled.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { badRequest, tokenError, unauthorized } from './api-error.js';
import { JwtError, signJwt, verifyJwt, type JwtPayload } from './jwt.js';

/** `AuthTokenType.IDENTITY_ACCESS_TOKEN`: the `authTokenType` claim of machine-identity tokens. */
export const IDENTITY_ACCESS_TOKEN = 'identityAccessToken';

export interface AccessTokenRecord {
  id: string;
  identityId: string;
  authMethod: 'universal-auth' | 'kubernetes-auth' | 'token';
  clientSecretId?: string;
  /** Seconds; 0 = no expiry. */
  ttl: number;
  /** Seconds; 0 = no maximum. */
  maxTtl: number;
  numUsesLimit: number;
  numUses: number;
  createdAtMs: number;
  lastRenewedAtMs?: number;
}

export interface IssueParams {
  identityId: string;
  authMethod: AccessTokenRecord['authMethod'];
  clientSecretId?: string;
  ttl: number;
  maxTtl: number;
  numUsesLimit: number;
}

/** The record store and the JWT key. `now` is injectable for tests of TTL arithmetic. */
export class AccessTokenStore {
  private readonly key: Buffer;
  private readonly records = new Map<string, AccessTokenRecord>();
  private readonly now: () => number;

  constructor(options: { key?: Buffer; now?: () => number } = {}) {
    this.key = options.key ?? randomBytes(32);
    this.now = options.now ?? Date.now;
  }

  /** Create a record and its first JWT (login). */
  issue(params: IssueParams): { accessToken: string; record: AccessTokenRecord } {
    const record: AccessTokenRecord = {
      id: randomUUID(),
      ...params,
      numUses: 0,
      createdAtMs: this.now(),
    };
    this.records.set(record.id, record);
    return { accessToken: this.sign(record), record };
  }

  /** Number of live records (tests). */
  get size(): number {
    return this.records.size;
  }

  /** Verify a JWT signed by this server; jsonwebtoken failures become 403 `TokenError`. */
  verify(token: string): JwtPayload {
    try {
      return verifyJwt(token, this.key, this.now());
    } catch (err) {
      if (err instanceof JwtError) throw tokenError(err);
      throw err;
    }
  }

  /**
   * The `injectIdentity` + `fnValidateIdentityAccessToken` path for a verified identity JWT:
   * find the live record, check it, count one use.
   */
  authenticate(payload: JwtPayload): AccessTokenRecord {
    const record = this.find(payload);
    this.checkUsesAndTtl(record);
    record.numUses += 1;
    return record;
  }

  /** `POST /v1/auth/token/renew`. */
  renew(token: string): { accessToken: string; record: AccessTokenRecord } {
    const payload = this.verify(token);
    if (payload.authTokenType !== IDENTITY_ACCESS_TOKEN) {
      throw badRequest('Only identity access tokens can be renewed');
    }
    const record = this.find(payload);
    this.checkUsesAndTtl(record);
    const now = this.now();
    if (record.maxTtl > 0) {
      const maxEnd = record.createdAtMs + record.maxTtl * 1000;
      if (now > maxEnd) {
        this.records.delete(record.id);
        throw unauthorized('Failed to renew MI access token due to Max TTL expiration');
      }
      if (now + record.ttl * 1000 > maxEnd) {
        this.records.delete(record.id);
        throw unauthorized('Failed to renew MI access token past its Max TTL expiration');
      }
    }
    record.lastRenewedAtMs = now;
    return { accessToken: this.sign(record, payload), record };
  }

  /** `POST /v1/auth/token/revoke`. */
  revoke(token: string): void {
    const payload = this.verify(token);
    if (payload.authTokenType !== IDENTITY_ACCESS_TOKEN) {
      throw unauthorized('Only identity access tokens can be revoked');
    }
    const record = this.find(payload);
    this.records.delete(record.id);
  }

  /** Drop every record of one identity (used when a test wants a clean slate). */
  revokeAll(identityId?: string): void {
    for (const [id, r] of this.records) {
      if (identityId === undefined || r.identityId === identityId) this.records.delete(id);
    }
  }

  private find(payload: JwtPayload): AccessTokenRecord {
    const id = payload.identityAccessTokenId;
    const record = typeof id === 'string' ? this.records.get(id) : undefined;
    if (!record) throw unauthorized('No identity access token found');
    return record;
  }

  /** `validateAccessTokenExp` (its messages say "renew" even on ordinary API calls). */
  private checkUsesAndTtl(record: AccessTokenRecord): void {
    const { numUses, numUsesLimit } = record;
    if (numUsesLimit > 0 && numUses > 0 && numUses >= numUsesLimit) {
      this.records.delete(record.id);
      throw unauthorized('Unable to renew because access token number of uses limit reached');
    }
    if (record.ttl > 0) {
      const from = record.lastRenewedAtMs ?? record.createdAtMs;
      if (this.now() > from + record.ttl * 1000) {
        this.records.delete(record.id);
        throw unauthorized('Failed to renew MI access token due to TTL expiration');
      }
    }
  }

  private sign(record: AccessTokenRecord, previous?: JwtPayload): string {
    const payload: JwtPayload = {
      identityId: previous?.identityId ?? record.identityId,
      clientSecretId: previous?.clientSecretId ?? record.clientSecretId,
      identityAccessTokenId: record.id,
      authTokenType: IDENTITY_ACCESS_TOKEN,
    };
    if (payload.clientSecretId === undefined) delete payload.clientSecretId;
    return signJwt(payload, this.key, { expiresInS: record.ttl, nowMs: this.now() });
  }
}
