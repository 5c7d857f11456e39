/**
 * A local Infisical-compatible server for tests, benchmarks and `infisical-reloader dev`. It
 * answers the routes the reloader (and the official SDK) use exactly as Infisical does
 * (docs/infisical-api.md): same paths under `/api`, JSON shapes, error JSON, token rules and webhooks.
 *
 * Request pipeline, in Infisical's order:
 * (1) scripted faults (`faults.ts`), before anything else;
 * (2) the identity hook: an `Authorization: Bearer <jwt>` header, when present, is verified
 *     (403 `TokenError` on a bad or expired JWT) and an identity token's record validated and
 *     counted — on *every* route, login and renew included, as Infisical's `injectIdentity` does;
 * (3) the route (auth check, validation, service);
 * (4) errors mapped to `{reqId, statusCode, message, error}`; unknown failures → 500;
 * (5) `ETag: "<sha1 base64 of the body>"` and `304` on a matching `If-None-Match` (@fastify/etag);
 * (6) every answer recorded in `requests`.
 *
 * Not modelled: rate limiting (Infisical limits only in production mode), trusted IPs, token
 * periods, service tokens / user JWTs / API keys, tags and metadata (filters match nothing),
 * personal secrets, secret writes over HTTP (use `setSecret` & co.).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { parse as parseQueryString } from 'node:querystring';
import Fastify, { type FastifyRequest } from 'fastify';
import { ReloaderError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { errorBody, InfisicalApiError, internalErrorBody } from './api-error.js';
import { applyFault, FaultInjector } from './faults.js';
import { ServiceAccountAuthority, type MintParams } from './kube-jwt.js';
import { registerAuthRoutes } from './routes-auth.js';
import { EventStreamHub, type EventStreams, type StreamEvent } from './routes-events.js';
import { registerSecretRoutes } from './routes-secrets.js';
import type { Seed } from './seed.js';
import type { IdentityState, ServerState } from './state.js';
import { SecretStore } from './store.js';
import { AccessTokenStore, IDENTITY_ACCESS_TOKEN } from './tokens.js';
import { isValidSecretPath, removeTrailingSlash } from './validate.js';
import { WebhookDispatcher, type Delivery } from './webhooks.js';

export interface LocalInfisicalOptions {
  host?: string;
  port?: number;
  seed: Seed;
  /** Seconds; override every identity's seed value (else 7200 / 2592000 / 0). */
  accessTokenTTL?: number;
  accessTokenMaxTTL?: number;
  accessTokenNumUsesLimit?: number;
  /** Delay before a change's webhook job runs (Infisical's BullMQ delay); default 1000 ms. */
  webhookDelayMs?: number;
  /** Event Subscriptions: the licence switch and the ping / re-check intervals (15 s / 60 s). */
  eventStreams?: { licensed?: boolean; pingIntervalMs?: number; recheckIntervalMs?: number };
  /** Serve `/api/v4/secrets*` (default true); false plays an older server that has only v3. */
  v4?: boolean;
  logger?: Logger;
}

export interface RequestRecord {
  method: string;
  /** `'GET /api/v3/secrets/raw'` (route pattern when one matched, else the path). */
  route: string;
  /** 0 when the connection was reset by a fault. */
  status: number;
  atMs: number;
}

export interface LocalInfisical {
  /** Base URL ending in `/api`, e.g. `http://127.0.0.1:43121/api`. */
  url: string;
  close(): Promise<void>;
  setSecret(p: {
    projectId: string;
    environment: string;
    path: string;
    key: string;
    value: string;
  }): void;
  deleteSecret(p: { projectId: string; environment: string; path: string; key: string }): void;
  replaceFolder(p: {
    projectId: string;
    environment: string;
    path: string;
    secrets: Record<string, string>;
  }): void;
  mintServiceAccountToken(p: MintParams): string;
  /** An access token for `identityId` without a login (for `auth: token` in dev). */
  issueAccessToken(p: {
    identityId: string;
    ttl?: number;
    maxTtl?: number;
    numUsesLimit?: number;
  }): string;
  addWebhook(p: {
    projectId: string;
    environment: string;
    secretPath: string;
    url: string;
    secretKey?: string;
    type?: 'general';
  }): { id: string };
  sendTestWebhook(id: string): Promise<void>;
  /** The Event Subscriptions streams: licence switch, permission denial, mute, drop. */
  events: EventStreams;
  faults: FaultInjector;
  readonly requests: ReadonlyArray<RequestRecord>;
  clearRequests(): void;
  readonly deliveries: ReadonlyArray<Delivery>;
  flushWebhooks(timeoutMs?: number): Promise<void>;
}

const REQ_ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `req-` + 14 alphanumerics, like Infisical's `genReqId`. */
function reqId(): string {
  const bytes = randomBytes(14);
  return `req-${[...bytes].map((b) => REQ_ID_CHARS[b % REQ_ID_CHARS.length]).join('')}`;
}

/** Path of a request URL without query and trailing slash (fastify ignores trailing slashes). */
function normalizePath(url: string): string {
  const path = url.split('?')[0] ?? '/';
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** Start the server on `host:port` (127.0.0.1, a free port by default) with `seed` loaded. */
export async function startLocalInfisical(opts: LocalInfisicalOptions): Promise<LocalInfisical> {
  const logger = opts.logger ?? silentLogger();
  const store = new SecretStore(opts.seed);
  const identities = new Map<string, IdentityState>();
  for (const seed of opts.seed.identities) {
    identities.set(seed.id, {
      seed,
      clientSecretId: randomUUID(),
      ttl: opts.accessTokenTTL ?? seed.accessTokenTTL ?? 7200,
      maxTtl: opts.accessTokenMaxTTL ?? seed.accessTokenMaxTTL ?? 2592000,
      numUsesLimit: opts.accessTokenNumUsesLimit ?? seed.accessTokenNumUsesLimit ?? 0,
    });
  }
  const webhooks = new WebhookDispatcher({
    delayMs: opts.webhookDelayMs ?? 1000,
    logger,
    context: {
      projectName: (id) => store.projects.get(id)?.name,
      dependents: (id, env, path) => [
        ...store.importersOf(id, env, path),
        ...store.referencersOf(id, env, path),
      ],
    },
  });
  const state: ServerState = {
    store,
    tokens: new AccessTokenStore(),
    serviceAccounts: new ServiceAccountAuthority(),
    identities,
    webhooks,
    logger,
    auth: new WeakMap(),
  };
  const streams = new EventStreamHub(opts.eventStreams);
  const faults = new FaultInjector();
  const requests: RequestRecord[] = [];
  const closing = new AbortController();

  const app = Fastify({
    routerOptions: { ignoreTrailingSlash: true },
    genReqId: reqId,
    forceCloseConnections: true,
  });
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_req, body, done) => done(null, parseQueryString(String(body))),
  );
  const routeOf = (req: FastifyRequest) =>
    `${req.method} ${req.routeOptions.url ?? normalizePath(req.url)}`;

  app.addHook('onRequest', async (req, reply) => {
    const path = normalizePath(req.url);
    const pattern = req.routeOptions.url ?? path;
    const fault = faults.take([`${req.method} ${path}`, `${req.method} ${pattern}`, path, pattern]); // (1)
    const outcome = fault ? await applyFault(req, reply, fault, closing.signal) : false;
    if (outcome === 'reset') {
      requests.push({ method: req.method, route: routeOf(req), status: 0, atMs: Date.now() });
    }
    if (outcome) return reply;
    const header = req.headers.authorization; // (2)
    if (!header) return;
    const token = header.slice(7);
    if (token.startsWith('st.')) return; // service tokens are not supported: no identity
    const payload = state.tokens.verify(token);
    if (payload.authTokenType === IDENTITY_ACCESS_TOKEN) {
      state.auth.set(req, state.tokens.authenticate(payload));
    }
  });

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof InfisicalApiError) {
      return reply.code(err.statusCode).send(errorBody(req.id, err)); // (4)
    }
    logger.debug({ err, route: routeOf(req) }, 'local infisical: internal error');
    return reply.code(500).send(internalErrorBody(req.id));
  });

  app.addHook('onSend', async (req, reply, payload) => {
    if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) return payload; // (5)
    let etag = reply.getHeader('etag');
    if (!etag) {
      etag = `"${createHash('sha1').update(payload).digest('base64')}"`;
      reply.header('etag', etag);
    }
    // @fastify/etag: the tag itself, or either side weak (`W/"…"`).
    const inm = req.headers['if-none-match'];
    if (inm === etag || inm === `W/${String(etag)}` || `W/${inm}` === etag) {
      reply.code(304);
      return '';
    }
    return payload;
  });

  app.addHook('onResponse', async (req, reply) => {
    requests.push({
      method: req.method,
      route: routeOf(req),
      status: reply.statusCode,
      atMs: Date.now(),
    }); // (6)
    logger.debug({ route: routeOf(req), status: reply.statusCode }, 'local infisical: request');
  });

  registerAuthRoutes(app, state);
  registerSecretRoutes(app, state, { v4: opts.v4 ?? true });
  streams.register(app, state);
  await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') {
    throw new ReloaderError('RLD_ERR_INTERNAL', 'local Infisical: no TCP address');
  }
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}/api`;
  logger.info({ url }, 'local infisical: listening');

  const changed = (projectId: string, environment: string, path: string) =>
    webhooks.changed(projectId, environment, path);
  /** The Event Subscriptions side of a change: keys only, and an import mutation per importer. */
  const published = (
    projectId: string,
    environment: string,
    path: string,
    byEvent: Partial<Record<StreamEvent, string[]>>,
  ) => {
    const folder = store.folder(projectId, environment, path);
    for (const [event, keys] of Object.entries(byEvent) as Array<[StreamEvent, string[]]>) {
      if (keys.length === 0) continue;
      streams.publish({
        projectId,
        environment,
        secretPath: path,
        event,
        secrets: keys.map((secretKey) => ({
          secretId: folder?.secrets.get(secretKey)?.id ?? randomUUID(),
          secretKey,
        })),
      });
    }
    for (const dep of store.importersOf(projectId, environment, path)) {
      streams.publish({
        projectId,
        environment: dep.environment,
        secretPath: dep.path,
        event: 'secret:import-mutation',
        secrets: [],
      });
    }
  };
  const keysOf = (projectId: string, environment: string, path: string) =>
    new Map(
      [...(store.folder(projectId, environment, path)?.secrets.values() ?? [])].map((r) => [
        r.key,
        r.value,
      ]),
    );
  /** `/a/b/` → `/a/b`; anything that is not an Infisical folder path is a usage error. */
  const folderPath = (path: string) => {
    const p = removeTrailingSlash(path);
    if (!p.startsWith('/') || !isValidSecretPath(p)) {
      throw new ReloaderError('RLD_ERR_USAGE', `local Infisical: bad folder path ${path}`);
    }
    return p;
  };

  return {
    url,
    events: streams,
    faults,
    get requests() {
      return requests;
    },
    clearRequests: () => void requests.splice(0),
    get deliveries() {
      return webhooks.deliveries;
    },
    async close() {
      closing.abort();
      streams.closeAll();
      await webhooks.close();
      await app.close();
    },
    setSecret({ projectId, environment, path, key, value }) {
      const p = folderPath(path);
      const existed = keysOf(projectId, environment, p).has(key);
      store.set(projectId, environment, p, key, value);
      changed(projectId, environment, p);
      published(projectId, environment, p, {
        [existed ? 'secret:update' : 'secret:create']: [key],
      });
    },
    deleteSecret({ projectId, environment, path, key }) {
      const p = folderPath(path);
      const id = store.folder(projectId, environment, p)?.secrets.get(key)?.id;
      if (store.delete(projectId, environment, p, key)) {
        changed(projectId, environment, p);
        streams.publish({
          projectId,
          environment,
          secretPath: p,
          event: 'secret:delete',
          secrets: [{ secretId: id ?? randomUUID(), secretKey: key }],
        });
      }
    },
    replaceFolder({ projectId, environment, path, secrets }) {
      const p = folderPath(path);
      const before = keysOf(projectId, environment, p);
      if (store.replace(projectId, environment, p, secrets)) {
        changed(projectId, environment, p);
        const created = Object.keys(secrets).filter((k) => !before.has(k));
        const updated = Object.keys(secrets).filter(
          (k) => before.has(k) && before.get(k) !== secrets[k],
        );
        const deleted = [...before.keys()].filter((k) => !(k in secrets));
        for (const key of deleted) {
          streams.publish({
            projectId,
            environment,
            secretPath: p,
            event: 'secret:delete',
            secrets: [{ secretId: randomUUID(), secretKey: key }],
          });
        }
        published(projectId, environment, p, {
          'secret:create': created,
          'secret:update': updated,
        });
      }
    },
    mintServiceAccountToken: (p) => state.serviceAccounts.mint(p),
    issueAccessToken({ identityId, ttl, maxTtl, numUsesLimit }) {
      const identity = identities.get(identityId);
      if (!identity)
        throw new ReloaderError('RLD_ERR_USAGE', `local Infisical: no identity ${identityId}`);
      return state.tokens.issue({
        identityId,
        authMethod: 'token',
        ttl: ttl ?? identity.ttl,
        maxTtl: maxTtl ?? identity.maxTtl,
        numUsesLimit: numUsesLimit ?? identity.numUsesLimit,
      }).accessToken;
    },
    addWebhook({ projectId, environment, secretPath, url: hookUrl, secretKey }) {
      if (!store.env(projectId, environment)) {
        throw new ReloaderError(
          'RLD_ERR_USAGE',
          `local Infisical: no environment ${environment} in project ${projectId}`,
        );
      }
      const hook = webhooks.add({ projectId, environment, secretPath, url: hookUrl, secretKey });
      return { id: hook.id };
    },
    sendTestWebhook: (id) => webhooks.sendTest(id),
    flushWebhooks: (timeoutMs) => webhooks.flush(timeoutMs),
  };
}
