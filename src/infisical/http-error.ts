/**
 * Turns an error answer from Infisical into a catalogue error (docs/infisical-api.md).
 *
 * Infisical answers `{reqId, statusCode, message, error}`; `message` is an array of zod issues
 * for a 422. The code depends on the route:
 *
 * | route            | status                                          | code                     |
 * |------------------|-------------------------------------------------|--------------------------|
 * | any              | 429, 5xx                                        | `RLD_ERR_INFISICAL_HTTP` |
 * | login            | other 4xx                                       | `RLD_ERR_AUTH`           |
 * | renew, authed    | 401; 403 with `TokenError`/`UnauthorizedError`  | `RLD_ERR_TOKEN`          |
 * | renew, authed    | other 4xx                                       | `RLD_ERR_INFISICAL_HTTP` |
 *
 * 429 and 5xx are never a refusal of the credential, even on a login route. Infisical's
 * message goes into ours, but only after every credential sent with the request and every
 * value known to the scrubber has been censored, and capped at 500 characters.
 */
import { InfisicalHttpError } from '../errors.js';
import type { Scrubber } from '../secrets/scrubber.js';
import { parseRetryAfter } from './retry.js';

/** What kind of route a call is: decides the error code. */
export type RouteKind = 'login' | 'renew' | 'revoke' | 'authed';

/** Infisical's JSON error `message`: a string, or (422) an array of zod issues joined to text. */
export function errorMessageOf(message: unknown): string | undefined {
  if (typeof message === 'string') return message;
  if (!Array.isArray(message)) return undefined;
  const parts = message.map((issue) => {
    if (typeof issue === 'string') return issue;
    if (issue && typeof issue === 'object') {
      const i = issue as { message?: unknown; path?: unknown };
      const text = typeof i.message === 'string' ? i.message : 'invalid';
      const path = Array.isArray(i.path) && i.path.length > 0 ? `${i.path.join('.')}: ` : '';
      return `${path}${text}`;
    }
    return String(issue);
  });
  return parts.join('; ');
}

/** The catalogue code for an error status on a route (table in the module comment). */
export function codeFor(
  kind: RouteKind,
  status: number,
  errorName: string | undefined,
): 'RLD_ERR_AUTH' | 'RLD_ERR_TOKEN' | 'RLD_ERR_INFISICAL_HTTP' {
  if (status === 429 || status >= 500 || status < 400) return 'RLD_ERR_INFISICAL_HTTP';
  if (kind === 'login') return 'RLD_ERR_AUTH';
  const tokenish = errorName === 'TokenError' || errorName === 'UnauthorizedError';
  if (status === 401 || (status === 403 && tokenish)) return 'RLD_ERR_TOKEN';
  return 'RLD_ERR_INFISICAL_HTTP';
}

/** Everything about one error answer that the client needs. */
export interface ErrorAnswer {
  kind: RouteKind;
  /** e.g. `POST /v1/auth/token/renew` */
  route: string;
  status: number;
  body: string;
  retryAfterHeader: string | string[] | undefined;
  /** Credentials sent with the request. */
  sensitive: readonly string[];
  scrubber: Scrubber;
  nowMs: number;
}

/**
 * Builds the error and, for 429/503, the server's wait in ms: the `retry-after` header
 * (seconds or HTTP date), else the "Please try again in N seconds" of Infisical's rate limiter.
 */
export function readErrorAnswer(a: ErrorAnswer): {
  err: InfisicalHttpError;
  retryAfterMs: number | undefined;
} {
  let errorName: string | undefined;
  let message: string | undefined;
  try {
    const parsed = JSON.parse(a.body) as { error?: unknown; message?: unknown } | null;
    if (typeof parsed?.error === 'string') errorName = parsed.error;
    message = errorMessageOf(parsed?.message);
  } catch {
    // not JSON (a proxy's HTML page): keep the status only
  }
  if (message !== undefined) {
    // Same floor as the Scrubber: censoring "abc" everywhere would hide more than it protects.
    for (const s of a.sensitive) {
      if (s.length >= 4) message = message.split(s).join('[redacted]');
    }
    message = a.scrubber.scrub(message);
    if (message.length > 500) message = `${message.slice(0, 500)}…`;
  }
  const err = new InfisicalHttpError(codeFor(a.kind, a.status, errorName), {
    status: a.status,
    route: a.route,
    infisicalError: errorName,
    infisicalMessage: message,
  });
  let retryAfterMs: number | undefined;
  if (a.status === 429 || a.status === 503) {
    const h = a.retryAfterHeader;
    retryAfterMs = parseRetryAfter(Array.isArray(h) ? h[0] : h, a.nowMs);
    const m =
      retryAfterMs === undefined ? /try again in (\d+) seconds?/i.exec(message ?? '') : null;
    if (m?.[1] !== undefined) retryAfterMs = Number(m[1]) * 1000;
  }
  return { err, retryAfterMs };
}
