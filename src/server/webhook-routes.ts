/**
 * The webhook listener's one route: `POST <webhook.path>`. It is the port a Service or an
 * Ingress exposes to Infisical, so it serves nothing else (the probes, metrics, status and
 * resync are on the admin listener).
 *
 * Body handling: the raw bytes, whatever the Content-Type (`acceptRawBodies`; 1 MiB, more →
 * 413), so the signature is checked before anything else and "any content type, as long as the
 * body is JSON" holds.
 *
 * Everything about the delivery — verify, parse, replay, dispatch, metric, log line — is the
 * intake's; this route only maps its answer to HTTP and, once the answer is sent, hands a
 * delivery marked for relay to the peers (the relay never delays the answer).
 */
import type { FastifyInstance } from 'fastify';
import { toHttpError } from '../events/http-errors.js';
import { RELAY_HEADER, type EventIntake } from '../events/intake.js';
import { SIGNATURE_HEADER } from '../events/signature.js';
import { ReloaderError } from '../errors.js';
import type { Logger } from '../logger.js';
import { acceptRawBodies, buildApp, rawBody } from './app.js';

/** Largest accepted body (413 above 1 MiB). */
export const BODY_LIMIT = 1_048_576;

/** Paths the admin listener owns; the webhook path must not take one of them. */
export const RESERVED_PATHS = ['/healthz', '/readyz', '/metrics', '/status', '/resync'];

export interface WebhookRouteDeps {
  path: string;
  intake: EventIntake;
  logger: Logger;
  /** Forward a verified delivery to the peers (after the answer is sent). */
  relay?: (body: Buffer, signature: string) => void;
}

/** Registers `POST <path>` in its own encapsulated context (its body handling stays there). */
export function registerWebhookRoute(server: FastifyInstance, deps: WebhookRouteDeps): void {
  const { path, intake, logger } = deps;
  server.register(async (scope) => {
    acceptRawBodies(scope, BODY_LIMIT);
    scope.setErrorHandler((err, request, reply) => {
      const { status, body } = toHttpError(err);
      if (status >= 500) {
        logger.error({ route: 'webhook', status, remote: request.ip, err }, 'request failed');
      } else {
        intake.rejected(status === 413 ? 413 : 400, body.error, request.ip);
      }
      return reply.code(status).send(body);
    });
    // An async handler that returns the reply: fastify then knows the answer was sent, and a
    // throw (from the engine's dispatch, say) reaches the error handler above.
    scope.post(path, { bodyLimit: BODY_LIMIT }, async (request, reply) => {
      const relayed = request.headers[RELAY_HEADER];
      const answer = intake.ingest({
        body: rawBody(request),
        signature: request.headers[SIGNATURE_HEADER],
        relayedBy: relayed === undefined ? undefined : String(relayed).slice(0, 253),
        remote: request.ip,
      });
      const sent = reply.code(answer.status).send(answer.body);
      // The answer is in the socket's hands now; the forward's own I/O starts on a later tick,
      // so the relay never delays it, and it starts before the local pass gets the event loop.
      const relay = answer.relay;
      if (relay !== undefined && deps.relay !== undefined) {
        deps.relay(rawBody(request), relay.signature);
      }
      return sent;
    });
  });
}

/**
 * The webhook listener's app: `POST <path>` and nothing else. Throws RLD_ERR_SPEC when the path
 * is not an absolute URL path or is one of the admin listener's (a webhook on `/metrics` would
 * be confusing, and a Service routing by path could send probes to it).
 */
export function buildWebhookServer(deps: WebhookRouteDeps): FastifyInstance {
  if (!deps.path.startsWith('/') || RESERVED_PATHS.includes(deps.path)) {
    throw new ReloaderError(
      'RLD_ERR_SPEC',
      `webhook.path ${JSON.stringify(deps.path)} is not usable`,
      { details: { yamlPath: 'webhook.path' } },
    );
  }
  const server = buildApp({ logger: deps.logger, bodyLimit: BODY_LIMIT });
  registerWebhookRoute(server, deps);
  return server;
}
