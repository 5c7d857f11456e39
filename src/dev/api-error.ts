/**
 * The local server's HTTP errors, answered exactly as Infisical's `error-handler.ts` does
 * (docs/infisical-api.md): `{reqId, statusCode, message, error}` where `error` is the thrown class's
 * `name`, which Infisical often overrides per call site (`"KubernetesUsernameParseError"`,
 * `"GetSecretByName"`, or even a sentence). The defaults below are Infisical's class defaults
 * (`backend/src/lib/errors/index.ts`): `BadRequest`, `UnauthorizedError`, `ForbiddenError`,
 * `NotFound`, and its default messages.
 *
 * These errors never leave the fake server; they extend `ReloaderError` only so that every
 * error object in the code base has a stable code.
 */
import { ReloaderError } from '../errors.js';
import { JwtError } from './jwt.js';

/** One zod v3 issue, key order as zod builds it (the order shows in the JSON). */
export type ZodIssue = Record<string, unknown>;

export class InfisicalApiError extends ReloaderError {
  readonly statusCode: number;
  readonly errorName: string;
  readonly body: string | ZodIssue[];
  readonly extraDetails: unknown;
  constructor(statusCode: number, errorName: string, body: string | ZodIssue[], extra?: unknown) {
    super('RLD_ERR_INFISICAL_HTTP', typeof body === 'string' ? body : 'ValidationFailure', {
      details: { status: statusCode, infisicalError: errorName },
    });
    this.name = 'InfisicalApiError';
    this.statusCode = statusCode;
    this.errorName = errorName;
    this.body = body;
    this.extraDetails = extra;
  }
}

const DEFAULT_DENIED = 'You are not allowed to access this resource';

/** 400 `BadRequestError`. */
export const badRequest = (message = 'The request is invalid', name = 'BadRequest') =>
  new InfisicalApiError(400, name, message);

/** 401 `UnauthorizedError`. */
export const unauthorized = (message = DEFAULT_DENIED, name = 'UnauthorizedError') =>
  new InfisicalApiError(401, name, message);

/** 403 `ForbiddenRequestError` (its default name is `ForbiddenError`). */
export const forbidden = (message = DEFAULT_DENIED, name = 'ForbiddenError', details?: unknown) =>
  new InfisicalApiError(403, name, message, details);

/** 404 `NotFoundError` (default name `NotFound`). */
export const notFound = (message = 'The requested entity is not found', name = 'NotFound') =>
  new InfisicalApiError(404, name, message);

/** 422: zod failed; `message` is the issue array. */
export const validationFailure = (issues: ZodIssue[]) =>
  new InfisicalApiError(422, 'ValidationFailure', issues);

/** A `jsonwebtoken` failure as Infisical maps it: 403 `TokenError` with friendlier messages. */
export function tokenError(err: JwtError): InfisicalApiError {
  let message = err.message;
  if (message === 'jwt expired') message = 'Your token has expired. Please re-authenticate.';
  else if (message === 'jwt malformed') {
    message =
      'The provided access token is malformed. Please use a valid token or generate a new one and try again.';
  } else if (message === 'invalid algorithm') {
    message =
      'The access token is signed with an invalid algorithm. Please provide a valid token and try again.';
  }
  return new InfisicalApiError(403, 'TokenError', message);
}

/**
 * The JSON body Infisical sends for `err`. The key order is that of the routes' response schema,
 * which serialises every error answer (422 and TokenError included, whatever order the handler
 * built): `reqId, statusCode, message, details?, error` — `details` only on a 403 that has them.
 */
export function errorBody(reqId: string, err: InfisicalApiError): Record<string, unknown> {
  const { statusCode, errorName: error, body: message } = err;
  if (statusCode === 403 && err.extraDetails !== undefined) {
    return { reqId, statusCode, message, details: err.extraDetails, error };
  }
  return { reqId, statusCode, message, error };
}

/** Infisical's answer to anything it does not know (fastify errors included): a bare 500. */
export function internalErrorBody(reqId: string): Record<string, unknown> {
  return { reqId, statusCode: 500, message: 'Something went wrong', error: 'InternalServerError' };
}

/**
 * The body a fault uses when the test gave a status but no body: what Infisical (or, for 502/503,
 * a generic proxy in front of it) would send for that status.
 */
export function defaultFaultBody(reqId: string, status: number, retryAfterS: number): unknown {
  const table: Record<number, [string, string]> = {
    400: ['BadRequest', 'The request is invalid'],
    401: ['UnauthorizedError', DEFAULT_DENIED],
    403: ['ForbiddenError', DEFAULT_DENIED],
    404: ['NotFound', 'The requested entity is not found'],
    429: ['RateLimitExceeded', `Rate limit exceeded. Please try again in ${retryAfterS} seconds`],
    504: ['GatewayTimeoutError', 'Timeout error'],
  };
  const hit = table[status];
  if (hit) return { reqId, statusCode: status, message: hit[1], error: hit[0] };
  if (status >= 500) {
    return {
      reqId,
      statusCode: status,
      message: 'Something went wrong',
      error: 'InternalServerError',
    };
  }
  return undefined;
}
