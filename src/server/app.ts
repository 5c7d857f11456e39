/**
 * The HTTP app factory shared by the reloader's servers: the webhook listener, the admin
 * listener and the injector. Built by a factory that does not listen (the fastify habit), so
 * tests drive every route with `inject()` and the caller decides when to bind.
 *
 * Secrecy: fastify's own logger is off (its error lines carry messages); each route logs what
 * it must itself. Error bodies are fixed words, never an error's message (`toHttpError`).
 */
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import {
  fastify,
  type FastifyInstance,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import { ReloaderError } from '../errors.js';
import { toHttpError } from '../events/http-errors.js';
import type { Logger } from '../logger.js';
import { errorCode } from '../util/os-error.js';

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

/** Options of {@link buildApp}. */
export interface AppOptions {
  logger: Logger;
  /** Largest request body (413 above it). */
  bodyLimit: number;
  /** TLS: the server answers HTTPS with this key pair (the injector). */
  https?: { key: string | Buffer; cert: string | Buffer; SNICallback?: unknown };
}

/**
 * A fastify app with the reloader's defaults: no fastify logger, no trusted proxy, a request
 * timeout (a slow client must not hold a socket for Node's default 300 s), lazy schema
 * compilers, JSON 404s, and an error handler that maps every error through `toHttpError`
 * (5xx are logged with the route).
 */
export function buildApp(options: AppOptions): FastifyInstance {
  const server = fastify({
    logger: false,
    trustProxy: false,
    bodyLimit: options.bodyLimit,
    requestTimeout: 30_000,
    schemaController: { compilersFactory: LAZY_COMPILERS },
    ...(options.https ? { https: options.https as never } : {}),
  }) as unknown as FastifyInstance;
  server.setErrorHandler((err, request, reply) => {
    const answer = toHttpError(err);
    if (answer.status >= 500) {
      options.logger.error({ route: request.routeOptions.url, err }, 'request failed');
    }
    return reply.code(answer.status).send(answer.body);
  });
  server.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'not found' }));
  return server;
}

/**
 * Makes `scope` (an encapsulated fastify context) hand every body over raw, as a Buffer of at
 * most `bodyLimit` bytes (more → 413), whatever its Content-Type: every parser is removed, one
 * catch-all takes its place, and an `onRequest` hook drops the Content-Type header first —
 * fastify answers 415 to a syntactically odd Content-Type before any handler runs, and routes
 * that check a signature over the raw bytes must see every body.
 */
export function acceptRawBodies(scope: FastifyInstance, bodyLimit: number): void {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) =>
    done(null, body),
  );
  scope.addHook('onRequest', async (request) => {
    delete request.raw.headers['content-type'];
  });
}

/** The raw body `acceptRawBodies` handed over (empty when there was none). */
export function rawBody(request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

/** Where a server ended up listening. */
export interface ListenAddress {
  host: string;
  port: number;
  /** `http(s)://host:port`, IPv6 hosts in brackets. */
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
    const code = errorCode(err);
    throw new ReloaderError(
      'RLD_ERR_LISTEN',
      `cannot listen on ${listen.host}:${listen.port}${code !== undefined ? `: ${code}` : ''}`,
      { cause: err, details: { host: listen.host, port: listen.port } },
    );
  }
  const address = server.server.address() as AddressInfo;
  const host = address.address;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const scheme = server.server instanceof TlsServer ? 'https' : 'http';
  return { host, port: address.port, url: `${scheme}://${urlHost}:${address.port}` };
}
