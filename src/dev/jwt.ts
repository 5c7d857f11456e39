/**
 * HS256 JSON Web Tokens with `node:crypto`, shaped like the `jsonwebtoken` package Infisical
 * uses: same header (`{"alg":"HS256","typ":"JWT"}`), `iat` added after the payload's own fields,
 * `exp = iat + expiresIn`, and the same error *messages* on failure (`jwt expired`,
 * `jwt malformed`, `invalid signature`, ...), because Infisical's error handler turns exactly
 * those messages into its 403 `TokenError` answers (see `errors.ts` in this folder).
 *
 * Only what the local server needs: HMAC-SHA256/384/512 verification, `exp` check, no `nbf`,
 * no audience/issuer options (the Kubernetes checks live in `kube-jwt.ts`).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** A `jsonwebtoken`-style failure; `expired` distinguishes `TokenExpiredError`. */
export class JwtError extends Error {
  readonly expired: boolean;
  constructor(message: string, expired = false) {
    super(message);
    this.name = expired ? 'TokenExpiredError' : 'JsonWebTokenError';
    this.expired = expired;
  }
}

export type JwtPayload = Record<string, unknown>;

const HMAC_ALGS: Record<string, string> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

function hmac(alg: string, key: Buffer, data: string): Buffer {
  return createHmac(alg, key).update(data).digest();
}

/**
 * Sign `payload` with HS256. `iat` is set to the current second; `exp = iat + expiresInS` unless
 * `expiresInS` is 0 or absent (Infisical omits `expiresIn` for a TTL of 0 = no expiry). A
 * negative value gives an already-expired token (tests).
 */
export function signJwt(
  payload: JwtPayload,
  key: Buffer,
  options: { expiresInS?: number; nowMs?: number } = {},
): string {
  const iat = Math.floor((options.nowMs ?? Date.now()) / 1000);
  const body: JwtPayload = { ...payload, iat };
  if (options.expiresInS !== undefined && options.expiresInS !== 0)
    body.exp = iat + options.expiresInS;
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const input = `${head}.${b64url(JSON.stringify(body))}`;
  return `${input}.${hmac('sha256', key, input).toString('base64url')}`;
}

function decodePart(part: string): unknown {
  const text = Buffer.from(part, 'base64url').toString('utf8');
  return JSON.parse(text) as unknown;
}

/**
 * Verify `token` against `key` and return its payload, or throw `JwtError` with the message
 * `jsonwebtoken.verify` would use. `exp` is checked as jsonwebtoken does: expired when
 * `floor(now / 1000) >= exp`.
 */
export function verifyJwt(token: string, key: Buffer, nowMs: number = Date.now()): JwtPayload {
  if (!token) throw new JwtError('jwt must be provided');
  const parts = token.split('.');
  if (parts.length !== 3) throw new JwtError('jwt malformed');
  const [headPart = '', bodyPart = '', sigPart = ''] = parts;
  let header: unknown;
  let payload: unknown;
  try {
    header = decodePart(headPart);
    payload = decodePart(bodyPart);
  } catch {
    throw new JwtError('invalid token');
  }
  if (!isObject(header) || !isObject(payload)) throw new JwtError('invalid token');
  if (sigPart === '') throw new JwtError('jwt signature is required');
  const alg = typeof header.alg === 'string' ? HMAC_ALGS[header.alg] : undefined;
  if (alg === undefined) throw new JwtError('invalid algorithm');
  const expected = hmac(alg, key, `${headPart}.${bodyPart}`);
  const given = Buffer.from(sigPart, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new JwtError('invalid signature');
  }
  if (payload.exp !== undefined) {
    if (typeof payload.exp !== 'number') throw new JwtError('invalid exp value');
    if (Math.floor(nowMs / 1000) >= payload.exp) throw new JwtError('jwt expired', true);
  }
  return payload;
}

/** The payload without any check (for tests and diagnostics; never trust it). */
export function decodeJwtUnsafe(token: string): JwtPayload | undefined {
  const part = token.split('.')[1];
  if (part === undefined) return undefined;
  try {
    const payload = decodePart(part);
    return isObject(payload) ? payload : undefined;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
