/**
 * The admin listener: `/healthz`, `/readyz`, `/metrics`, `/status` and `POST /resync`, for the
 * kubelet and Prometheus. It is never exposed through a Service that Infisical reaches.
 *
 * `/resync` is accepted from loopback without a signature (a `kubectl exec … curl` or a sidecar),
 * otherwise only with a valid `x-infisical-signature` over the (possibly empty) body; a replayed
 * signature does nothing. `/status` passes through the runtime's scrubber.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EventIntake } from '../events/intake.js';
import { SIGNATURE_HEADER } from '../events/signature.js';
import type { Logger } from '../logger.js';
import type { Scrubber } from '../secrets/scrubber.js';
import { acceptRawBodies, buildApp, rawBody } from './app.js';
import type { Metrics } from './metrics.js';
import { BODY_LIMIT } from './webhook-routes.js';

/** What the admin routes need from the engine. All callbacks are synchronous and cheap. */
export interface AdminDeps {
  logger: Logger;
  metrics: Metrics;
  scrubber: Scrubber;
  /** Verifies a non-loopback `/resync`. */
  intake: Pick<EventIntake, 'authenticateResync'>;
  /** The daemon's loop is alive (`/healthz`). */
  health(): boolean;
  /** Ready to serve: see the README (`/readyz`). */
  ready(): boolean;
  /** The `/status` document; secret-free already, scrubbed again here. */
  status(): unknown;
  /** `POST /resync` was accepted; must only queue a full refetch. */
  onResync(): void;
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped 127.x (what a local `curl` or a sidecar uses). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.toLowerCase();
  return a === '::1' || /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** Registers the admin routes on `server`. */
export function registerAdminRoutes(server: FastifyInstance, deps: AdminDeps): void {
  const { logger, metrics } = deps;
  server.get('/healthz', async (_request, reply) =>
    deps.health()
      ? reply.code(200).send({ status: 'ok' })
      : reply.code(503).send({ status: 'unhealthy' }),
  );
  server.get('/readyz', async (_request, reply) => {
    const ready = deps.ready();
    return reply.code(ready ? 200 : 503).send({ ready });
  });
  server.get('/metrics', async (_request, reply) => {
    metrics.ready(deps.ready());
    const text = await metrics.text();
    return reply.code(200).header('content-type', metrics.contentType).send(text);
  });
  server.get('/status', async (_request, reply) =>
    reply.code(200).send(deps.scrubber.scrubDeep(deps.status())),
  );

  server.register(async (scope) => {
    acceptRawBodies(scope, BODY_LIMIT);
    scope.post('/resync', { bodyLimit: BODY_LIMIT }, async (request, reply) =>
      handleResync(request, reply),
    );
  });

  function handleResync(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const remote = request.ip;
    const local = isLoopback(remote);
    if (!local) {
      const auth = deps.intake.authenticateResync(
        rawBody(request),
        request.headers[SIGNATURE_HEADER],
      );
      if (auth === 'replay') {
        logger.warn({ route: 'resync', status: 200, reason: 'replay', remote }, 'resync ignored');
        return reply.code(200).send({ status: 'ignored', reason: 'replay' });
      }
      if (!auth.ok) {
        logger.warn(
          { route: 'resync', status: 401, reason: auth.reason, remote },
          'resync rejected',
        );
        return reply.code(401).send({ error: 'invalid signature', reason: auth.reason });
      }
    }
    deps.onResync();
    logger.info({ route: 'resync', status: 202, remote, loopback: local }, 'resync queued');
    return reply.code(202).send({ status: 'accepted' });
  }
}

/** The admin listener's app. */
export function buildAdminServer(deps: AdminDeps): FastifyInstance {
  const server = buildApp({ logger: deps.logger, bodyLimit: BODY_LIMIT });
  registerAdminRoutes(server, deps);
  return server;
}
