/**
 * `reload: { http }`: one HTTP request to the app's reload endpoint (Prometheus'
 * `POST /-/reload`, Envoy admin, a custom hook). Success is a 2xx answer within `timeoutMs`;
 * anything else — another status, a connection error, a timeout — is a failure with a short
 * description. Never throws.
 *
 * The whole exchange (connect, headers, body) is bounded by one `AbortSignal.timeout`, and the
 * request asks for `connection: close` (`reset: true`): a reload is rare, a pooled keep-alive
 * socket to a process that is reloading is worth nothing. The URL in the description is
 * reduced to origin + path (no userinfo, no query string), and request headers are never
 * reported: either may carry a credential.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';

export interface HttpReloadSpec {
  url: string;
  method: string;
  headers?: Record<string, string>;
  timeoutMs: number;
}

export interface HttpOutcome {
  /** A 2xx status arrived, and the body was read, within the timeout. */
  ok: boolean;
  /** HTTP status, or null when no answer arrived. */
  status: number | null;
  timedOut: boolean;
  durationMs: number;
  /** One line, e.g. `POST http://127.0.0.1:9090/-/reload answered 500`. Not scrubbed. */
  detail: string;
  /** The first `BODY_BYTES` of the answer, UTF-8. Not scrubbed. */
  body: string;
}

/** How much of the answer body is kept for the description. */
export const BODY_BYTES = 512;

/** `scheme://host:port/path` of `url`, without userinfo and query; a placeholder if unparsable. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ABORT_ERR',
  'ERR_ABORTED',
]);

/** Send the reload request described by `spec`; see the module comment. */
export async function httpReload(
  spec: HttpReloadSpec,
  opts: { dispatcher?: Dispatcher } = {},
): Promise<HttpOutcome> {
  const started = performance.now();
  const method = spec.method.toUpperCase();
  const what = `${method} ${describeUrl(spec.url)}`;
  const outcome = (o: Omit<HttpOutcome, 'durationMs'>): HttpOutcome => ({
    ...o,
    durationMs: Math.round(performance.now() - started),
  });
  const signal = AbortSignal.timeout(spec.timeoutMs);
  try {
    // Loaded on first use: most targets reload by signal or command, and undici costs
    // ≈ 150–230 ms of start-up on a small machine.
    const { request } = await import('undici');
    const res = await request(spec.url, {
      method: method as Dispatcher.HttpMethod,
      headers: spec.headers ?? {},
      signal,
      headersTimeout: spec.timeoutMs,
      bodyTimeout: spec.timeoutMs,
      reset: true,
      ...(opts.dispatcher !== undefined ? { dispatcher: opts.dispatcher } : {}),
    });
    const chunks: Buffer[] = [];
    let kept = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      if (kept < BODY_BYTES) {
        const part = chunk.subarray(0, BODY_BYTES - kept);
        chunks.push(part);
        kept += part.length;
      }
    }
    const body = Buffer.concat(chunks).toString('utf8');
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    return outcome({
      ok,
      status: res.statusCode,
      timedOut: false,
      detail: `${what} answered ${res.statusCode}`,
      body,
    });
  } catch (err) {
    const e = err as { code?: string; name?: string; cause?: { code?: string } };
    const timedOut =
      signal.aborted ||
      e.name === 'TimeoutError' ||
      e.name === 'AbortError' ||
      TIMEOUT_CODES.has(e.code ?? '');
    const code = e.cause?.code ?? e.code ?? e.name ?? 'error';
    const detail = timedOut
      ? `${what} timed out after ${spec.timeoutMs} ms`
      : `${what} failed (${code})`;
    return outcome({ ok: false, status: null, timedOut, detail, body: '' });
  }
}
