/**
 * How requests reach Infisical: the one seam between the client (routes, retries, errors) and
 * the network. The default transport uses `node:http` / `node:https` with a keep-alive agent of
 * its own; the npm undici 7 is loaded only when a custom CA or a caller's dispatcher is given.
 * Not the built-in `fetch`: its first call compiles Node's bundled undici and its llhttp
 * WebAssembly parser, ≈ +20 MiB of RSS and ≈ 30 ms for a process that makes one request now and
 * then (bench 5; `node:http` costs ≈ 1.5 MiB and is loaded by the webhook server anyway).
 * Neither path follows redirects or asks for compressed bodies.
 *
 * A transport does no I/O when it is built: the CA is read by whoever builds it (see
 * `openSession`), so a bad `caFile` is reported before anything is swapped in.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { Dispatcher } from 'undici';

/** One request, body already serialized. */
export interface TransportRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** Aborting it destroys the request, or the response while its body is read. */
  signal: AbortSignal;
  /**
   * A long-lived response (an event stream): sent on a connection of its own, outside the
   * keep-alive pool and its idle timeout.
   */
  stream?: boolean;
}

/** A response whose headers are in; `body` is read (or abandoned) by the caller. */
export interface TransportResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Uint8Array>;
}

/** Sends requests; `close()` releases connections (idempotent). */
export interface Transport {
  request(req: TransportRequest): Promise<TransportResponse>;
  close(): Promise<void>;
}

/** Options of {@link createTransport}. */
export interface TransportOptions {
  /** PEM text of an extra CA to trust for TLS. */
  ca?: string;
  /** A caller-owned undici dispatcher (not closed by `close()`); overrides `ca`. */
  dispatcher?: Dispatcher;
}

/** The default transport (see the module comment). */
export function createTransport(opts: TransportOptions = {}): Transport {
  return new NodeTransport(opts);
}

class NodeTransport implements Transport {
  /** undici's dispatcher, only when needed: the caller's, or an Agent for `ca` (built on first use). */
  private dispatcher: Dispatcher | undefined;
  private readonly ownsDispatcher: boolean;
  /** The keep-alive agent of the `node:http(s)` path, built on first use. */
  private agent: HttpAgent | HttpsAgent | undefined;
  private closed: Promise<void> | undefined;

  constructor(private readonly opts: TransportOptions) {
    this.dispatcher = opts.dispatcher;
    this.ownsDispatcher = opts.dispatcher === undefined;
  }

  async request(req: TransportRequest): Promise<TransportResponse> {
    const dispatcher = await this.customDispatcher();
    if (dispatcher) {
      const { request } = await import('undici');
      const res = await request(req.url, {
        method: req.method as Dispatcher.HttpMethod,
        headers: req.headers,
        body: req.body,
        dispatcher,
        signal: req.signal,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    }
    const res = await this.nodeRequest(req);
    return { status: res.statusCode ?? 0, headers: res.headers, body: res };
  }

  close(): Promise<void> {
    if (this.closed === undefined) {
      this.agent?.destroy();
      this.closed =
        this.ownsDispatcher && this.dispatcher ? this.dispatcher.close() : Promise.resolve();
    }
    return this.closed;
  }

  /** Resolves with the response (body unread) once the headers are in. */
  private async nodeRequest(req: TransportRequest): Promise<IncomingMessage> {
    const secure = req.url.startsWith('https:');
    const send = secure ? (await import('node:https')).request : httpRequest;
    if (this.agent === undefined) {
      const options = { keepAlive: true, timeout: 5_000 };
      this.agent = secure
        ? new (await import('node:https')).Agent(options)
        : new HttpAgent(options);
    }
    const agent = req.stream === true ? false : this.agent;
    const headers = { ...req.headers };
    if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
    return new Promise<IncomingMessage>((resolve, reject) => {
      const r = send(req.url, { method: req.method, headers, agent, signal: req.signal }, resolve);
      r.on('error', reject);
      r.end(req.body);
    });
  }

  /** The undici dispatcher to use, if any (the caller's, or an Agent trusting `ca`). */
  private async customDispatcher(): Promise<Dispatcher | undefined> {
    if (this.dispatcher === undefined && this.opts.ca !== undefined) {
      const { Agent } = await import('undici');
      this.dispatcher = new Agent({ connect: { ca: this.opts.ca } });
    }
    return this.dispatcher;
  }
}
