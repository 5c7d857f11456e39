/**
 * The two routes that read a raw body: `POST <webhook.path>` and `POST /resync`,
 * registered as one encapsulated fastify plugin so that their body handling does not
 * leak into the other routes.
 *
 * Body handling: every content-type parser is removed and one catch-all parser hands the raw
 * bytes over as a Buffer (limit 1 MiB; more → 413). An `onRequest` hook drops the request's
 * Content-Type header first, because fastify answers 415 to a syntactically odd Content-Type
 * before any handler runs; without the header every body reaches the catch-all, the signature
 * is checked before anything else, and "any content type, as long as the body is JSON" holds.
 *
 * Secrecy: one log line per delivery with the outcome and names only (kind, key, project,
 * environment, path). The event's value, the body and the signature header are never logged.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasCode } from '../errors.js';
import type { ChangeEvent } from '../events/parse.js';
import { parseBody, parseEvent } from '../events/parse.js';
import { ReplayCache, SIGNATURE_HEADER, verifyWebhook } from '../events/signature.js';
import type { WebhookEventType, WebhookOutcome } from './metrics.js';
import { toHttpError } from './http-errors.js';
import type { ServerDeps } from './build.js';

/** Largest accepted body (413 above 1 MiB). */
export const BODY_LIMIT = 1_048_576;

/** Which raw-body route a request is on, for the plugin's error handler. */
type RouteKind = 'webhook' | 'resync';

/** Result of checking a delivery's signature; `verified` is absent when unsigned was allowed. */
type AuthResult =
  | { ok: true; verified?: { timestampMs: number; signature: string } }
  | { ok: false; reason: 'missing' | 'malformed' | 'mismatch' | 'stale' };

/** True for 127.0.0.0/8, ::1 and IPv4-mapped 127.x (what a local `curl` or a sidecar uses). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.toLowerCase();
  return a === '::1' || /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** Names-only summary of an event for the log line (never `value`). */
function describe(event: ChangeEvent): Record<string, unknown> {
  switch (event.kind) {
    case 'modified':
      return {
        projectId: event.projectId,
        environment: event.environment,
        secretPath: event.secretPath,
      };
    case 'value':
      return {
        action: event.action,
        key: event.key,
        environment: event.environment,
        secretPath: event.secretPath,
        rotation: event.rotation,
      };
    case 'test':
      return { projectId: event.projectId, environment: event.environment };
    case 'ignored':
      return { event: event.event, reason: event.reason };
  }
}

function rawBody(request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

/**
 * Registers the webhook and resync routes on `server`, in their own encapsulated context.
 * `deps.webhookSecret` must be set unless `deps.webhook.allowUnsigned` (checked by buildServer).
 */
export function registerRawBodyRoutes(server: FastifyInstance, deps: ServerDeps): void {
  const now = deps.now ?? Date.now;
  const { logger, metrics } = deps;
  const { path, maxAgeMs, allowUnsigned } = deps.webhook;
  const webhookReplays = new ReplayCache({ maxAgeMs });
  const resyncReplays = new ReplayCache({ maxAgeMs });

  /**
   * Signature check shared by both routes. In allowUnsigned mode a delivery without a header
   * (or any delivery when no secret is known) passes unverified; a delivery that does carry a
   * header while a secret is known is still verified — a wrong secret should show, not hide.
   */
  function authenticate(request: FastifyRequest, nowMs: number): AuthResult {
    const header = request.headers[SIGNATURE_HEADER];
    const secret = deps.webhookSecret;
    if (allowUnsigned && (header === undefined || secret === undefined)) return { ok: true };
    const result = verifyWebhook(rawBody(request), header, secret ?? '', { nowMs, maxAgeMs });
    if (!result.ok) return result;
    return { ok: true, verified: { timestampMs: result.timestampMs, signature: result.signature } };
  }

  server.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: BODY_LIMIT },
      (_req, body, done) => done(null, body),
    );
    scope.addHook('onRequest', async (request) => {
      delete request.raw.headers['content-type'];
    });

    scope.setErrorHandler((err, request, reply) => {
      const { status, body } = toHttpError(err);
      const kind = (request.routeOptions.config as { kind?: RouteKind }).kind;
      if (status >= 500) {
        logger.error({ route: kind, status, remote: request.ip, err }, 'request failed');
        return reply.code(status).send(body);
      }
      if (kind === 'webhook') {
        const outcome: WebhookOutcome = status === 413 ? 'rejected_413' : 'rejected_400';
        return answer(
          reply,
          status,
          body,
          { type: 'invalid', outcome },
          { reason: body.error, remote: request.ip },
        );
      }
      logger.warn(
        { route: kind, status, reason: body.error, remote: request.ip },
        `${kind ?? 'request'} rejected`,
      );
      return reply.code(status).send(body);
    });

    // async handlers that return the reply: fastify then knows the answer was sent, and a
    // throw (from onEvent, say) reaches the error handler above.
    scope.post(path, { bodyLimit: BODY_LIMIT, config: { kind: 'webhook' } }, async (req, reply) =>
      handleWebhook(req, reply),
    );
    scope.post(
      '/resync',
      { bodyLimit: BODY_LIMIT, config: { kind: 'resync' } },
      async (req, reply) => handleResync(req, reply),
    );
  });

  /** One answer + one metric + one log line. */
  function answer(
    reply: FastifyReply,
    status: number,
    body: Record<string, unknown>,
    count: { type: WebhookEventType; outcome: WebhookOutcome },
    fields: Record<string, unknown>,
  ): FastifyReply {
    metrics.webhookEvent(count.type, count.outcome);
    const level = status >= 400 ? 'warn' : 'info';
    logger[level](
      { route: 'webhook', status, type: count.type, outcome: count.outcome, ...fields },
      'webhook',
    );
    return reply.code(status).send(body);
  }

  /**
   * (1) signature (unless allowed unsigned) → 401; (2) parse → 400; (3) replay → 200 ignored;
   * (4) by kind: test → 200 ok, ignored → 200 ignored, else onEvent (which only queues) → 200.
   */
  function handleWebhook(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const receivedAtMs = now();
    const remote = request.ip;
    // (1)
    const auth = authenticate(request, receivedAtMs);
    if (!auth.ok) {
      return answer(
        reply,
        401,
        { error: 'invalid signature', reason: auth.reason },
        { type: 'invalid', outcome: 'rejected_401' },
        { reason: auth.reason, remote },
      );
    }
    // (2)
    let event: ChangeEvent;
    try {
      event = parseEvent(parseBody(rawBody(request)));
    } catch (err) {
      if (!hasCode(err, 'RLD_ERR_WEBHOOK')) throw err;
      const { status, body } = toHttpError(err);
      const count = { type: 'invalid', outcome: 'rejected_400' } as const;
      return answer(reply, status, body, count, { reason: body.reason, field: body.field, remote });
    }
    const type: WebhookEventType = event.kind;
    const summary = { kind: event.kind, ...describe(event), remote };
    // (3)
    const v = auth.verified;
    if (
      v !== undefined &&
      webhookReplays.checkAndRemember(v.signature, v.timestampMs, receivedAtMs)
    ) {
      const body = { status: 'ignored', reason: 'replay' };
      return answer(reply, 200, body, { type, outcome: 'replay' }, summary);
    }
    // (4)
    if (event.kind === 'test') {
      return answer(
        reply,
        200,
        { status: 'ok', event: 'test' },
        { type, outcome: 'accepted' },
        summary,
      );
    }
    if (event.kind === 'ignored') {
      const body = { status: 'ignored', reason: event.reason };
      return answer(reply, 200, body, { type, outcome: 'ignored' }, summary);
    }
    const result = deps.onEvent(event, { receivedAtMs });
    if (result.effect === 'ignored') {
      const reason = result.reason ?? 'no source or target matches';
      return answer(
        reply,
        200,
        { status: 'ignored', reason },
        { type, outcome: 'ignored' },
        {
          ...summary,
          effect: reason,
        },
      );
    }
    return answer(reply, 200, { status: 'accepted' }, { type, outcome: 'accepted' }, summary);
  }

  /** Loopback: no signature needed. Elsewhere: the webhook's signature rules, then replay check. */
  function handleResync(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const nowMs = now();
    const remote = request.ip;
    const local = isLoopback(remote);
    if (!local) {
      const auth = authenticate(request, nowMs);
      if (!auth.ok) {
        logger.warn(
          { route: 'resync', status: 401, reason: auth.reason, remote },
          'resync rejected',
        );
        return reply.code(401).send({ error: 'invalid signature', reason: auth.reason });
      }
      const v = auth.verified;
      if (v !== undefined && resyncReplays.checkAndRemember(v.signature, v.timestampMs, nowMs)) {
        logger.warn({ route: 'resync', status: 200, reason: 'replay', remote }, 'resync ignored');
        return reply.code(200).send({ status: 'ignored', reason: 'replay' });
      }
    }
    deps.onResync();
    logger.info({ route: 'resync', status: 202, remote, loopback: local }, 'resync queued');
    return reply.code(202).send({ status: 'accepted' });
  }
}
