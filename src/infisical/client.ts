/**
 * The Infisical HTTP client: the five calls the reloader needs, with per-request
 * timeouts, bounded retries and typed errors (docs/infisical-api.md).
 *
 * Transport: `node:http` / `node:https` with a keep-alive agent of the client's own; the npm
 * undici 7 is loaded only when a custom CA (`caFile`) or a caller's dispatcher is given. Not the
 * built-in `fetch`: its first call compiles Node's bundled undici and its llhttp WebAssembly
 * parser, ≈ +20 MiB of RSS and ≈ 30 ms for a process that makes one request now and then
 * (bench 5; `node:http` costs ≈ 1.5 MiB and is loaded by the webhook server anyway). Like the
 * undici path, neither follows redirects nor asks for compressed bodies.
 *
 * Contract:
 * - Every attempt has its own deadline of `timeoutMs` (headers and body) →
 *   `RLD_ERR_INFISICAL_TIMEOUT`; a connection/TLS failure → `RLD_ERR_INFISICAL_NETWORK` with the
 *   transport's error as `cause`; an error status → `InfisicalHttpError` (codes: http-error.ts); a body we
 *   cannot read → `RLD_ERR_INFISICAL_RESPONSE`.
 * - Network errors, timeouts, 5xx and 429 are retried (retry-after honoured, see retry.ts);
 *   other 4xx and unreadable bodies never are.
 * - Secrecy: every access token and secret value received is added to the process `scrubber`;
 *   credentials sent (JWT, client secret, token) are scrubbed out of Infisical's error message
 *   before it becomes ours; logs carry route, status, duration and attempt only.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Dispatcher } from 'undici';
import { InfisicalHttpError, ReloaderError, hasCode } from '../errors.js';
import {
  scrubber as processScrubber,
  silentLogger,
  type Logger,
  type Scrubber,
} from '../logger.js';
import type { SourceSpec } from '../config/types.js';
import { parseSecretListing, type SecretListing } from './listing.js';
import { readErrorAnswer, type RouteKind } from './http-error.js';
import { withRetry } from './retry.js';

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
  /** PEM file of an extra CA for TLS to Infisical. */
  caFile?: string;
  retry?: Partial<ClientRetryOptions>;
  logger?: Logger;
  /** A caller-owned dispatcher (not closed by `close()`); overrides `caFile`. */
  dispatcher?: Dispatcher;
  /** Default `infisical-reloader/<package.json version>`. */
  userAgent?: string;
  /** Where received tokens and values are registered; default the process scrubber. */
  scrubber?: Scrubber;
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

let cachedVersion: string | undefined;
/** The version in the nearest package.json named infisical-reloader (works from src/ and dist/). */
function packageVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  cachedVersion = '0.0.0';
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'infisical-reloader' && typeof pkg.version === 'string') {
        cachedVersion = pkg.version;
        break;
      }
    } catch {
      // no package.json here: keep walking up
    }
    dir = dirname(dir);
  }
  return cachedVersion;
}

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
  private readonly timeoutMs: number;
  private readonly retry: ClientRetryOptions;
  private readonly logger: Logger;
  /**
   * undici's dispatcher, only when needed: a caller's, or an Agent for `caFile` (built on first
   * use). Otherwise requests go through `node:http(s)`, which avoids loading the npm undici at
   * start-up (≈ 150–230 ms of a cold `--once` on a 2-core machine).
   */
  private dispatcher: Dispatcher | undefined;
  /** The keep-alive agent of the `node:http(s)` path, built on first use, destroyed by close(). */
  private agent: HttpAgent | HttpsAgent | undefined;
  private readonly ownsDispatcher: boolean;
  private readonly ca: string | undefined;
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
    this.scrubber = opts.scrubber ?? processScrubber;
    this.now = opts.now ?? Date.now;
    this.maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024 * 1024;
    if (opts.dispatcher) {
      this.dispatcher = opts.dispatcher;
      this.ownsDispatcher = false;
    } else {
      if (opts.caFile !== undefined) {
        try {
          this.ca = readFileSync(opts.caFile, 'utf8');
        } catch (err) {
          throw new ReloaderError(
            'RLD_ERR_INFISICAL_NETWORK',
            `cannot read caFile ${opts.caFile}`,
            {
              cause: err,
              details: { caFile: opts.caFile },
            },
          );
        }
      }
      this.ownsDispatcher = true;
    }
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
   * `GET /v3/secrets/raw` for one source, merged into a flat map (rules in listing.ts). Sends
   * both `include_imports` (what the server reads) and `includeImports` (what newer servers
   * and the CLI use); unknown query keys are ignored by Infisical.
   */
  async listSecrets(source: SourceSpec, accessToken: string): Promise<SecretListing> {
    const bool = (b: boolean): string => (b ? 'true' : 'false');
    const query = new URLSearchParams({
      workspaceId: source.projectId,
      environment: source.environment,
      secretPath: source.path,
      recursive: bool(source.recursive),
      include_imports: bool(source.includeImports),
      includeImports: bool(source.includeImports),
      expandSecretReferences: bool(source.expandReferences),
      viewSecretValue: 'true',
    });
    const route = '/v3/secrets/raw';
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

  /** Aborts in-flight requests and retry waits; closes the connection pool if we own it. Idempotent. */
  close(): Promise<void> {
    if (this.closed === undefined) {
      this.closing.abort();
      this.agent?.destroy();
      this.closed =
        this.ownsDispatcher && this.dispatcher ? this.dispatcher.close() : Promise.resolve();
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
    this.scrubber.add(token);
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
      const dispatcher = await this.customDispatcher();
      if (dispatcher) {
        const { request } = await import('undici');
        const res = await request(url, {
          method: call.method,
          headers,
          body,
          dispatcher,
          signal: ac.signal,
        });
        status = res.statusCode;
        resHeaders = res.headers;
        text = await this.readBody(res.body, call.route);
      } else {
        const res = await this.nodeRequest(url, call.method, headers, body, ac.signal);
        status = res.statusCode ?? 0;
        resHeaders = res.headers;
        text = await this.readBody(res, call.route);
      }
    } catch (err) {
      if (err instanceof ReloaderError) throw err;
      const where = `Infisical ${call.method} ${call.route}`;
      if (this.closing.signal.aborted) throw this.closedError(call);
      if (timedOut || isUndiciTimeout(err)) {
        this.logger.debug(
          { route: call.route, attempt, durationMs: Date.now() - started },
          'timeout',
        );
        throw new ReloaderError(
          'RLD_ERR_INFISICAL_TIMEOUT',
          `${where}: no answer within ${this.timeoutMs} ms`,
          { cause: err, details: { route: call.route, timeoutMs: this.timeoutMs } },
        );
      }
      // undici may wrap the network error (`cause`); node:http reports it directly.
      const code =
        (err as { code?: unknown }).code ?? (err as { cause?: { code?: unknown } }).cause?.code;
      this.logger.debug({ route: call.route, attempt, code }, 'connection failed');
      throw new ReloaderError(
        'RLD_ERR_INFISICAL_NETWORK',
        `${where}: connection failed${typeof code === 'string' ? ` (${code})` : ''}`,
        { cause: err, details: { route: call.route } },
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
   * One request through `node:http(s)`; resolves with the response (body unread) once the
   * headers are in. Aborting `signal` destroys the request, or the response while its body is
   * being read (the body's iterator then rejects).
   */
  private async nodeRequest(
    url: string,
    method: string,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal,
  ): Promise<IncomingMessage> {
    const secure = url.startsWith('https:');
    const send = secure ? (await import('node:https')).request : httpRequest;
    if (this.agent === undefined) {
      const options = { keepAlive: true, timeout: 5_000 };
      this.agent = secure
        ? new (await import('node:https')).Agent(options)
        : new HttpAgent(options);
    }
    const agent = this.agent;
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(url, { method, headers, agent, signal }, resolve);
      req.on('error', reject);
      req.end(body);
    });
  }

  /** The undici dispatcher to use, if any (the caller's, or an Agent trusting `caFile`). */
  private async customDispatcher(): Promise<Dispatcher | undefined> {
    if (this.dispatcher === undefined && this.ca !== undefined) {
      const { Agent } = await import('undici');
      this.dispatcher = new Agent({ connect: { ca: this.ca } });
    }
    return this.dispatcher;
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
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = e?.code ?? e?.cause?.code;
  return (
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  );
}
