/**
 * Maps anything a route or fastify itself throws to an HTTP status and a small JSON body.
 *
 * Contract: a client's bad input is never a 5xx, and a response body never carries an error's
 * message or stack — fastify's own messages quote headers and lengths, JSON.parse quotes the
 * body (which may hold a secret value), and our catalogue messages are for logs. Bodies are
 * fixed words plus, for a malformed event, the machine-readable `reason` and `field` names that
 * `events/parse.ts` puts in `details`.
 */
import { hasCode } from '../errors.js';

/** What to answer for one error. */
export interface HttpErrorAnswer {
  status: number;
  body: { error: string; reason?: string; field?: string };
}

const GENERIC: Readonly<Record<number, string>> = {
  400: 'bad request',
  401: 'unauthorized',
  404: 'not found',
  405: 'method not allowed',
  408: 'request timeout',
  413: 'payload too large',
  414: 'uri too long',
  415: 'unsupported media type',
  431: 'request header fields too large',
};

function generic(status: number): HttpErrorAnswer {
  return { status, body: { error: GENERIC[status] ?? 'request rejected' } };
}

/** A string property of an unknown value, or undefined. */
function prop(err: unknown, name: string): unknown {
  return err !== null && typeof err === 'object'
    ? (err as Record<string, unknown>)[name]
    : undefined;
}

/**
 * The answer for `err`, in this order:
 * (1) RLD_ERR_WEBHOOK (from the event parser) → its `details.status` (400 by default) with
 *     `{error: 'malformed event', reason, field}`;
 * (2) fastify's body errors: FST_ERR_CTP_BODY_TOO_LARGE → 413, FST_ERR_CTP_INVALID_MEDIA_TYPE
 *     → 415, any other FST_ERR_CTP_* (bad Content-Length, empty JSON, aborted body) → 400;
 * (3) a SyntaxError (a JSON parse that escaped) → 400;
 * (4) any error carrying a 4xx `statusCode` (fastify's URL/header/timeout errors) → that status;
 * (5) everything else → 500 `{error: 'internal error'}`.
 */
export function toHttpError(err: unknown): HttpErrorAnswer {
  // (1)
  if (hasCode(err, 'RLD_ERR_WEBHOOK')) {
    const status = err.details['status'];
    const reason = err.details['reason'];
    const field = err.details['field'];
    return {
      status: typeof status === 'number' && status >= 400 && status < 500 ? status : 400,
      body: {
        error: 'malformed event',
        ...(typeof reason === 'string' ? { reason } : {}),
        ...(typeof field === 'string' ? { field } : {}),
      },
    };
  }
  // (2)
  const code = prop(err, 'code');
  if (typeof code === 'string' && code.startsWith('FST_ERR_CTP_')) {
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return generic(413);
    if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return generic(415);
    return generic(400);
  }
  // (3)
  if (err instanceof SyntaxError) return generic(400);
  // (4)
  const statusCode = prop(err, 'statusCode');
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return generic(statusCode);
  }
  // (5)
  return { status: 500, body: { error: 'internal error' } };
}
