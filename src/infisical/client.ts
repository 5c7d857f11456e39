/**
 * The Infisical HTTP client: the five calls the reloader needs, with per-request
 * timeouts, bounded retries and typed errors (docs/infisical-api.md).
 *
 * Requests go through a `Transport` (transport.ts): a constructor field, so tests and the
 * library can put another one in; the client itself does no I/O when it is built.
 *
 * Contract:
 * - Every attempt has its own deadline of `timeoutMs` (headers and body) →
 *   `RLD_ERR_INFISICAL_TIMEOUT`; a connection/TLS failure → `RLD_ERR_INFISICAL_NETWORK` with the
 *   transport's error as `cause`; an error status → `InfisicalHttpError` (codes: http-error.ts); a body we
 *   cannot read → `RLD_ERR_INFISICAL_RESPONSE`.
 * - Network errors, timeouts, 5xx and 429 are retried (retry-after honoured, see retry.ts);
 *   other 4xx and unreadable bodies never are.
 * - Secrecy: every access token and secret value received is added to the runtime's `scrubber`;
 *   credentials sent (JWT, client secret, token) are scrubbed out of Infisical's error message
 *   before it becomes ours; logs carry route, status, duration and attempt only.
 */
import { InfisicalHttpError, ReloaderError, hasCode } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import type { Scrubber } from '../secrets/scrubber.js';
import { errorCode } from '../util/os-error.js';
import { packageVersion } from '../util/version.js';
import type { SourceSpec } from '../config/types.js';
import { parseSecretListing, type SecretListing } from './listing.js';
import { readErrorAnswer, type RouteKind } from './http-error.js';
import { withRetry } from './retry.js';
import { createTransport, type Transport, type TransportResponse } from './transport.js';

export type { SecretListing } from './listing.js';

/** An access token as granted by a login or a renew. TTLs in seconds; 0 = none. */
export interface TokenGrant {
  accessToken: string;
  expiresInS: number;
  maxTtlS: number;
  /** Client clock when the successful attempt was sent (conservative start of the TTL). */
  obtainedAtMs: number;
}

/** Retry policy of every call (see retry.ts for the delay rules). */
export interface ClientRetryOptions {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A retry-after above this is not waited for: the error is thrown. Default 60 s. */
  maxRetryAfterMs?: number;
}

/** Construction options of {@link InfisicalClient}; only `baseUrl` and `timeoutMs` are required. */
export interface InfisicalClientOptions {
  /** API base URL ending in `/api` (a trailing slash is tolerated). */
  baseUrl: string;
  timeoutMs: number;
  /** How requests are sent; default `createTransport()` (owned, closed by `close()`). */
  transport?: Transport;
  retry?: Partial<ClientRetryOptions>;
  logger?: Logger;
  /** Default `infisical-reloader/<package.json version>`. */
  userAgent?: string;
  /** Where received tokens and values are registered (the runtime's scrubber). */
  scrubber: Scrubber;
  now?: () => number;
  /** Largest response body accepted; default 64 MiB. */
  maxBodyBytes?: number;
}

/** Defaults: 4 attempts, 250 ms doubling to at most 10 s (≈ 2.2 s of waiting in the worst case without retry-after). */
export const DEFAULT_RETRY: ClientRetryOptions = Object.freeze({
  attempts: 4,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
});

interface Call {
  method: 'GET' | 'POST';
  route: string;
  kind: RouteKind;
  query?: URLSearchParams;
  body?: unknown;
  bearer?: string;
  /** Credentials sent with this call: scrubbed out of any error message. */
  sensitive: string[];
}

interface Answer {
  json: unknown;
  headers: Record<string, string | string[] | undefined>;
}

/** Retry hints attached to HTTP errors without widening the public error type. */
const retryAfterOf = new WeakMap<object, number>();

function isRetryable(err: unknown): boolean {
  if (err instanceof InfisicalHttpError) return err.status === 429 || err.status >= 500;
  return (
    hasCode(err, 'RLD_ERR_INFISICAL_NETWORK', 'RLD_ERR_INFISICAL_TIMEOUT') && !closedErrors.has(err)
  );
}

/** Errors raised because the client was closed: never retried. */
const closedErrors = new WeakSet<object>();

/**
 * Talks to one Infisical. Create one per process (it holds a connection pool) and `close()` it
 * at shutdown: in-flight requests and retry waits are aborted.
 */
export class InfisicalClient {
  private readonly base: string;
  /** Set once an older server answered 404 on `/v4/secrets`: list through v3 from then on. */
  private listV3 = false;
  private readonly timeoutMs: number;
  private readonly retry: ClientRetryOptions;
  private readonly logger: Logger;
  private readonly transport: Transport;
  private readonly ownsTransport: boolean;
  private readonly userAgent: string;
  private readonly scrubber: Scrubber;
  private readonly now: () => number;
  private readonly maxBodyBytes: number;
  private readonly closing = new AbortController();
  private closed: Promise<void> | undefined;

  constructor(opts: InfisicalClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.logger = opts.logger ?? silentLogger();
    this.userAgent = opts.userAgent ?? `infisical-reloader/${packageVersion()}`;
    this.scrubber = opts.scrubber;
    this.now = opts.now ?? Date.now;
    this.maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024 * 1024;
    this.transport = opts.transport ?? createTransport();
    this.ownsTransport = opts.transport === undefined;
  }

  /** The API base URL (no trailing slash), for messages and `/status`. */
  get baseUrl(): string {
    return this.base;
  }

  /** `POST /v1/auth/kubernetes-auth/login` with the pod's service-account JWT. */
  async loginKubernetes(identityId: string, jwt: string): Promise<TokenGrant> {
    return this.grant({
      method: 'POST',
      route: '/v1/auth/kubernetes-auth/login',
      kind: 'login',
      body: { identityId, jwt },
      sensitive: [jwt],
    });
  }

  /** `POST /v1/auth/universal-auth/login`. */
  async loginUniversal(clientId: string, clientSecret: string): Promise<TokenGrant> {
    return this.grant({
      method: 'POST',
      route: '/v1/auth/universal-auth/login',
      kind: 'login',
      body: { clientId, clientSecret },
      sensitive: [clientSecret],
    });
  }

  /**
   * `POST /v1/auth/token/renew`, the token in the body and no Authorization header. The server
   * may return a new JWT: the caller must keep the returned token. A 401 is `RLD_ERR_TOKEN`.
   */
  async renew(accessToken: string): Promise<TokenGrant> {
    return this.grant({
      method: 'POST',
      route: '/v1/auth/token/renew',
      kind: 'renew',
      body: { accessToken },
      sensitive: [accessToken],
    });
  }

  /** `POST /v1/auth/token/revoke` (token in the body, like renew). */
  async revoke(accessToken: string): Promise<void> {
    await this.send({
      method: 'POST',
      route: '/v1/auth/token/revoke',
      kind: 'revoke',
      body: { accessToken },
      sensitive: [accessToken],
    });
  }

  /**
   * `GET /v4/secrets` for one source, merged into a flat map (rules in listing.ts). An older
   * server without v4 answers its router's 404 (not Infisical's `NotFound`, which a missing
   * project or environment gives): the client then lists through the deprecated
   * `GET /v3/secrets/raw` (`workspaceId` instead of `projectId`, same answer) and keeps doing so.
   * Only `include_imports` is sent: it is the only spelling Infisical reads.
   */
  async listSecrets(source: SourceSpec, accessToken: string): Promise<SecretListing> {
    if (!this.listV3) {
      try {
        return await this.listOnce(source, accessToken, '/v4/secrets');
      } catch (err) {
        const routeMissing =
          err instanceof InfisicalHttpError &&
          err.status === 404 &&
          err.infisicalError !== 'NotFound';
        if (!routeMissing) throw err;
        this.listV3 = true;
        this.logger.info(
          { baseUrl: this.base },
          'Infisical has no /api/v4/secrets (an older server): listing through /api/v3/secrets/raw',
        );
      }
    }
    return this.listOnce(source, accessToken, '/v3/secrets/raw');
  }

  private async listOnce(
    source: SourceSpec,
    accessToken: string,
    route: '/v4/secrets' | '/v3/secrets/raw',
  ): Promise<SecretListing> {
    const bool = (b: boolean): string => (b ? 'true' : 'false');
    const query = new URLSearchParams({
      [route === '/v4/secrets' ? 'projectId' : 'workspaceId']: source.projectId,
      environment: source.environment,
      secretPath: source.path,
      recursive: bool(source.recursive),
      include_imports: bool(source.includeImports),
      expandSecretReferences: bool(source.expandReferences),
      viewSecretValue: 'true',
    });
    const answer = await this.send({
      method: 'GET',
      route,
      kind: 'authed',
      query,
      bearer: accessToken,
      sensitive: [accessToken],
    });
    const parsed = parseSecretListing(answer.json, { route, requestedPath: source.path });
    this.scrubber.addAll(parsed.secrets.values());
    for (const s of parsed.shadowed) {
      this.logger.warn(
        { key: s.key, keptPath: s.keptPath, droppedPath: s.droppedPath, source: source.path },
        'secret key present in two folders of a recursive source; the shallower path wins',
      );
    }
    const etag = answer.headers['etag'];
    const listing: SecretListing = { secrets: parsed.secrets };
    if (typeof etag === 'string') listing.etag = etag;
    return listing;
  }

  /**
   * `POST /v1/events/subscribe/project-events`: opens one Event Subscriptions stream and
   * resolves with the response once a 200 with headers is in; its `body` is the
   * `text/event-stream` the caller reads until `signal` aborts or the server closes it.
   * Not retried here (the channel owns reconnects and their backoff). An error status
   * rejects with the usual `InfisicalHttpError` (400 plan restriction, 403 permission,
   * 429 too many streams, 401/403 token); no answer within `timeoutMs` →
   * `RLD_ERR_INFISICAL_TIMEOUT`; a failed connection → `RLD_ERR_INFISICAL_NETWORK`.
   */
  async openEventStream(
    subscription: { projectId: string; register: ReadonlyArray<Record<string, unknown>> },
    accessToken: string,
    signal: AbortSignal,
  ): Promise<TransportResponse> {
    const route = '/v1/events/subscribe/project-events';
    const call: Call = {
      method: 'POST',
      route,
      kind: 'authed',
      body: subscription,
      bearer: accessToken,
      sensitive: [accessToken],
    };
    if (this.closing.signal.aborted) throw this.closedError(call);
    const ac = new AbortController();
    const abort = (): void => ac.abort();
    signal.addEventListener('abort', abort, { once: true });
    this.closing.signal.addEventListener('abort', abort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, this.timeoutMs);
    const where = `Infisical POST ${route} at ${this.base}`;
    let res: TransportResponse;
    try {
      res = await this.transport.request({
        method: 'POST',
        url: `${this.base}${route}`,
        headers: {
          'user-agent': this.userAgent,
          accept: 'text/event-stream',
          'content-type': 'application/json',
          authorization: `Bearer ${accessToken}`,
        },
        body: JSON.stringify(subscription),
        signal: ac.signal,
        stream: true,
      });
    } catch (err) {
      signal.removeEventListener('abort', abort);
      this.closing.signal.removeEventListener('abort', abort);
      if (this.closing.signal.aborted) throw this.closedError(call);
      if (timedOut || isUndiciTimeout(err)) {
        throw new ReloaderError(
          'RLD_ERR_INFISICAL_TIMEOUT',
          `${where}: no answer within ${this.timeoutMs} ms`,
          { cause: err, details: { route, baseUrl: this.base, timeoutMs: this.timeoutMs } },
        );
      }
      const code = errorCode(err);
      throw new ReloaderError(
        'RLD_ERR_INFISICAL_NETWORK',
        `${where}: connection failed${code !== undefined ? ` (${code})` : ''}`,
        { cause: err, details: { route, baseUrl: this.base } },
      );
    } finally {
      clearTimeout(timer);
    }
    if (res.status !== 200) {
      let text = '';
      try {
        text = await this.readBody(res.body, route);
      } catch {
        // an unreadable error body: the status alone decides
      }
      signal.removeEventListener('abort', abort);
      this.closing.signal.removeEventListener('abort', abort);
      throw this.httpError(call, res.status, text, res.headers);
    }
    this.logger.debug({ route, status: res.status }, 'event stream opened');
    return res;
  }

  /** Aborts in-flight requests and retry waits; closes the connection pool if we own it. Idempotent. */
  close(): Promise<void> {
    if (this.closed === undefined) {
      this.closing.abort();
      this.closed = this.ownsTransport ? this.transport.close() : Promise.resolve();
    }
    return this.closed;
  }

  private async grant(call: Call): Promise<TokenGrant> {
    let sentAt = this.now();
    const answer = await this.send(call, (t) => (sentAt = t));
    const body = answer.json as Record<string, unknown> | null;
    const token = body?.['accessToken'];
    const expiresIn = Number(body?.['expiresIn']);
    const maxTtlRaw = body?.['accessTokenMaxTTL'];
    const maxTtl = maxTtlRaw === undefined || maxTtlRaw === null ? 0 : Number(maxTtlRaw);
    if (typeof token !== 'string' || token === '') {
      throw this.responseError(call.route, 'the body has no string accessToken');
    }
    this.scrubber.hold('access-token', token);
    if (!Number.isFinite(expiresIn) || expiresIn < 0 || !Number.isFinite(maxTtl) || maxTtl < 0) {
      throw this.responseError(call.route, 'expiresIn / accessTokenMaxTTL are not numbers ≥ 0');
    }
    return { accessToken: token, expiresInS: expiresIn, maxTtlS: maxTtl, obtainedAtMs: sentAt };
  }

  private responseError(route: string, problem: string): ReloaderError {
    return new ReloaderError('RLD_ERR_INFISICAL_RESPONSE', `Infisical ${route}: ${problem}`, {
      details: { route },
    });
  }

  /** One call with retries. `onSend` learns when each attempt starts. */
  private async send(call: Call, onSend?: (t: number) => void): Promise<Answer> {
    return withRetry(
      (attempt) => {
        onSend?.(this.now());
        return this.attempt(call, attempt);
      },
      {
        ...this.retry,
        shouldRetry: isRetryable,
        retryAfterMs: (err) => (err instanceof Error ? retryAfterOf.get(err) : undefined),
        signal: this.closing.signal,
        onRetry: ({ err, attempt, delayMs }) =>
          this.logger.debug(
            { route: call.route, attempt, delayMs, code: (err as ReloaderError).code },
            'retrying Infisical request',
          ),
      },
    ).catch((err: unknown) => {
      // A wait aborted by close() rejects with the abort reason: make it a catalogue error.
      if (this.closing.signal.aborted && !(err instanceof ReloaderError))
        throw this.closedError(call);
      throw err;
    });
  }

  private closedError(call: Call): ReloaderError {
    const err = new ReloaderError(
      'RLD_ERR_INFISICAL_NETWORK',
      `Infisical ${call.method} ${call.route}: client closed`,
      { details: { route: call.route } },
    );
    closedErrors.add(err);
    return err;
  }

  private async attempt(call: Call, attempt: number): Promise<Answer> {
    if (this.closing.signal.aborted) throw this.closedError(call);
    const url = `${this.base}${call.route}${call.query ? `?${call.query.toString()}` : ''}`;
    const headers: Record<string, string> = {
      'user-agent': this.userAgent,
      accept: 'application/json',
    };
    if (call.body !== undefined) headers['content-type'] = 'application/json';
    if (call.bearer !== undefined) headers['authorization'] = `Bearer ${call.bearer}`;

    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, this.timeoutMs);
    const onClose = (): void => ac.abort();
    this.closing.signal.addEventListener('abort', onClose, { once: true });
    const started = Date.now();
    let status: number;
    let text: string;
    let resHeaders: Answer['headers'];
    try {
      const body = call.body === undefined ? undefined : JSON.stringify(call.body);
      const res = await this.transport.request({
        method: call.method,
        url,
        headers,
        body,
        signal: ac.signal,
      });
      status = res.status;
      resHeaders = res.headers;
      text = await this.readBody(res.body, call.route);
    } catch (err) {
      if (err instanceof ReloaderError) throw err;
      const where = `Infisical ${call.method} ${call.route} at ${this.base}`;
      if (this.closing.signal.aborted) throw this.closedError(call);
      if (timedOut || isUndiciTimeout(err)) {
        this.logger.debug(
          { route: call.route, attempt, durationMs: Date.now() - started },
          'timeout',
        );
        throw new ReloaderError(
          'RLD_ERR_INFISICAL_TIMEOUT',
          `${where}: no answer within ${this.timeoutMs} ms`,
          {
            cause: err,
            details: { route: call.route, baseUrl: this.base, timeoutMs: this.timeoutMs },
          },
        );
      }
      // undici may wrap the network error (`cause`); node:http reports it directly.
      const code = errorCode(err);
      this.logger.debug({ route: call.route, attempt, code }, 'connection failed');
      throw new ReloaderError(
        'RLD_ERR_INFISICAL_NETWORK',
        `${where}: connection failed${code !== undefined ? ` (${code})` : ''}`,
        { cause: err, details: { route: call.route, baseUrl: this.base } },
      );
    } finally {
      clearTimeout(timer);
      this.closing.signal.removeEventListener('abort', onClose);
    }
    this.logger.debug(
      { route: call.route, method: call.method, status, durationMs: Date.now() - started, attempt },
      'infisical request',
    );

    if (status >= 200 && status < 300) {
      try {
        return { json: text === '' ? undefined : JSON.parse(text), headers: resHeaders };
      } catch {
        throw this.responseError(call.route, `status ${status} with a body that is not JSON`);
      }
    }
    throw this.httpError(call, status, text, resHeaders);
  }

  private httpError(call: Call, status: number, text: string, headers: Answer['headers']): Error {
    const { err, retryAfterMs } = readErrorAnswer({
      kind: call.kind,
      route: `${call.method} ${call.route}`,
      status,
      body: text,
      retryAfterHeader: headers['retry-after'],
      sensitive: call.sensitive,
      scrubber: this.scrubber,
      nowMs: this.now(),
    });
    if (retryAfterMs !== undefined) retryAfterOf.set(err, retryAfterMs);
    return err;
  }

  /**
   * The body as text, decoded chunk by chunk. Never one buffer of the whole body: a listing of
   * 10,000 secrets is megabytes, and one malloc'd block that size (`Buffer.concat`) raises
   * glibc's mmap and trim thresholds for the rest of the process, so the freed space stays in
   * the RSS (bench 5). The decoded pieces are V8 strings, flattened by JSON.parse on the V8
   * heap, which returns its pages after GC. Invalid UTF-8 becomes U+FFFD and a BOM is kept,
   * exactly as `Buffer#toString('utf8')` does.
   */
  private async readBody(body: AsyncIterable<Uint8Array>, route: string): Promise<string> {
    const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    let text = '';
    let size = 0;
    for await (const chunk of body) {
      size += chunk.length;
      if (size > this.maxBodyBytes) {
        throw this.responseError(route, `the body is larger than ${this.maxBodyBytes} bytes`);
      }
      text += decoder.decode(chunk, { stream: true });
    }
    return text + decoder.decode();
  }
}

function isUndiciTimeout(err: unknown): boolean {
  const code = errorCode(err);
  return (
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  );
}
