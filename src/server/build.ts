/**
 * The reloader's one HTTP server: the webhook, `/resync`, `/healthz`, `/readyz`,
 * `/metrics` and `/status`.
 *
 * Built by a factory that does not listen (the fastify habit), so tests drive every route with
 * `inject()` and the daemon decides when to bind. The server knows nothing of the engine: it
 * reaches it only through `ServerDeps` callbacks, and `onEvent` / `onResync` only queue work, so
 * a delivery is answered as soon as it is verified — well inside Infisical's 15 s timeout.
 *
 * Secrecy: fastify's own logger is off (its request lines would carry URLs and remote addresses
 * only, but its error lines carry messages); we log one line per webhook/resync ourselves.
 * Error bodies are fixed words, never an error's message; `/status` passes through the scrubber.
 */
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { fastify, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { ReloaderError } from '../errors.js';
import { scrubber as processScrubber, type Logger, type Scrubber } from '../logger.js';
import type { WebhookSpec } from '../config/types.js';
import type { ChangeEvent } from '../events/parse.js';
import type { Metrics } from './metrics.js';
import { toHttpError } from './http-errors.js';
import { BODY_LIMIT, registerRawBodyRoutes } from './webhook-route.js';

/** What the server needs from the rest of the daemon. All callbacks are synchronous and cheap. */
export interface ServerDeps {
  /** `path`, `maxAgeMs`, `allowUnsigned` are used; `listen` is for the caller of `listen()`. */
  webhook: WebhookSpec;
  /** The resolved webhook secret; undefined only when `webhook.allowUnsigned`. */
  webhookSecret: string | undefined;
  logger: Logger;
  metrics: Metrics;
  /** Called once per verified, parsed, non-replayed `modified`/`value` event; must only queue. */
  onEvent(
    event: ChangeEvent,
    meta: { receivedAtMs: number },
  ): { effect: 'queued' | 'ignored'; reason?: string };
  /** `POST /resync` was accepted; must only queue a full refetch. */
  onResync(): { effect: 'queued' };
  /** The daemon's loop is alive (`/healthz`). */
  health(): boolean;
  /** Every target has rendered successfully at least once (`/readyz`). */
  ready(): boolean;
  /** The `/status` document; secret-free already, scrubbed again here. */
  status(): unknown;
  /** Clock for signature freshness and `receivedAtMs` (tests); default `Date.now`. */
  now?: () => number;
  /** Scrubber for `/status`; default the process-wide one from `logger.ts`. */
  scrubber?: Scrubber;
}

type CompilersFactory = NonNullable<
  NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']
>;

/** `require` as seen from fastify's own directory: its compilers are its dependencies, not ours. */
const fastifyRequire = (): NodeJS.Require =>
  createRequire(createRequire(import.meta.url).resolve('fastify'));

/**
 * fastify's default schema compilers (ajv through @fastify/ajv-compiler, fast-json-stringify),
 * built the first time a route declares a schema instead of when the server is built. Our
 * routes declare none (the webhook body is read raw and checked by hand), and the defaults load
 * ajv's ≈100 modules at `fastify()`: ≈1.3 MiB of heap and ≈2 MiB of RSS that the daemon never
 * uses (bench 5). fastify then counts these as custom compilers, whose one difference is that
 * a `headers` schema is passed as written: spell its property names in lower case.
 */
const LAZY_COMPILERS: CompilersFactory = {
  buildValidator: (externalSchemas, options) => {
    const selector = fastifyRequire()('@fastify/ajv-compiler') as () => NonNullable<
      CompilersFactory['buildValidator']
    >;
    return selector()(externalSchemas, options);
  },
  buildSerializer: (externalSchemas, options) => {
    const selector = fastifyRequire()('@fastify/fast-json-stringify-compiler') as () => NonNullable<
      CompilersFactory['buildSerializer']
    >;
    return selector()(externalSchemas, options);
  },
};

/** Paths the server owns; the webhook path must not take one of them. */
const RESERVED_PATHS = ['/healthz', '/readyz', '/metrics', '/status', '/resync'];

/**
 * Builds (does not start) the server. Throws RLD_ERR_SPEC when the webhook path is not an
 * absolute URL path or collides with a built-in route, and RLD_ERR_INTERNAL when no secret is
 * given while unsigned deliveries are not allowed (the config loader should have refused that).
 * Logs one warning when `allowUnsigned` is on.
 */
export function buildServer(deps: ServerDeps): FastifyInstance {
  const { webhook, logger, metrics } = deps;
  if (!webhook.path.startsWith('/') || RESERVED_PATHS.includes(webhook.path)) {
    throw new ReloaderError(
      'RLD_ERR_SPEC',
      `webhook.path ${JSON.stringify(webhook.path)} is not usable`,
      {
        details: { yamlPath: 'webhook.path' },
      },
    );
  }
  if (!webhook.allowUnsigned && (deps.webhookSecret === undefined || deps.webhookSecret === '')) {
    throw new ReloaderError('RLD_ERR_INTERNAL', 'buildServer: a webhook secret is required');
  }
  if (webhook.allowUnsigned) {
    logger.warn(
      { route: 'webhook', path: webhook.path, signed: deps.webhookSecret !== undefined },
      'webhook.allowUnsigned is on: unsigned deliveries are accepted (local experiments only)',
    );
  }
  const scrub = deps.scrubber ?? processScrubber;

  const server = fastify({
    // No fastify logger at all, hence no request lines (which could show headers) and no
    // error lines with messages; the routes log what they must themselves.
    logger: false,
    trustProxy: false,
    bodyLimit: BODY_LIMIT,
    // A slow client must not hold a socket for Node's default 300 s.
    requestTimeout: 30_000,
    schemaController: { compilersFactory: LAZY_COMPILERS },
  });

  server.setErrorHandler((err, request, reply) => {
    const answer = toHttpError(err);
    if (answer.status >= 500) {
      logger.error({ route: request.routeOptions.url, err }, 'request failed');
    }
    return reply.code(answer.status).send(answer.body);
  });
  server.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'not found' }));

  registerRawBodyRoutes(server, deps);

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
    reply.code(200).send(scrub.scrubDeep(deps.status())),
  );

  return server;
}

/** Where the server ended up listening. */
export interface ListenAddress {
  host: string;
  port: number;
  /** `http://host:port`, IPv6 hosts in brackets. */
  url: string;
}

/**
 * Starts `server` on `listen.host:listen.port` (port 0 picks a free port) and reports the actual
 * address. A bind failure (port in use, address not local) becomes RLD_ERR_LISTEN naming
 * host, port and the system error code, with the original as `cause`.
 */
export async function listen(
  server: FastifyInstance,
  listen: { host: string; port: number },
): Promise<ListenAddress> {
  try {
    await server.listen({ host: listen.host, port: listen.port });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new ReloaderError(
      'RLD_ERR_LISTEN',
      `cannot listen on ${listen.host}:${listen.port}${typeof code === 'string' ? `: ${code}` : ''}`,
      { cause: err, details: { host: listen.host, port: listen.port } },
    );
  }
  const address = server.server.address() as AddressInfo;
  const host = address.address;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return { host, port: address.port, url: `http://${urlHost}:${address.port}` };
}
