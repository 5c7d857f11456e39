/**
 * Peer relay: every replica takes every change, on any Infisical plan.
 *
 * Infisical delivers a webhook once, to one URL, and a Service hands it to one pod. The replica
 * that verified it forwards it, unchanged, to the others:
 *
 *   (1) resolve the peers afresh for each delivery: `dns` (a headless Service: A and AAAA, one
 *       per ready pod) or the static `addresses`;
 *   (2) skip this replica's own addresses (`POD_IP` when set, the listen address when it is a
 *       specific one, else the machine's interfaces) on its own webhook port;
 *   (3) POST to every peer concurrently: same path, the same raw body and the same
 *       `x-infisical-signature`, plus `x-infisical-reloader-relay: <this replica>`. A peer
 *       verifies it like any other delivery (the relay header grants nothing) and never relays
 *       it again, so there are no loops;
 *   (4) a peer that fails (no connection, a timeout, a 5xx or 429) is retried with a jittered
 *       backoff (250 ms doubling) while the delivery is younger than `maxAge` — after that the
 *       peer would refuse it as stale anyway; a 4xx other than 429 is final (the peer's secret
 *       differs, or the body is refused) and is logged;
 *   (5) every forward is counted per outcome; nothing here delays the local pass or the answer
 *       to Infisical (the webhook route calls `forward` after its answer is sent).
 *
 * A replica that was down when a delivery was relayed catches up by the full fetch it does at
 * every start.
 */
import { lookup } from 'node:dns/promises';
import { request as httpRequest } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import type { PeerAddress, PeersSpec } from '../config/types.js';
import type { Logger } from '../logger.js';
import { Backoff } from '../util/backoff.js';
import { errorCode } from '../util/os-error.js';
import { realTimers, type Timers } from '../util/timers.js';
import { RELAY_HEADER } from '../events/intake.js';
import { SIGNATURE_HEADER } from '../events/signature.js';

/** How one forward ended, as counted in `/metrics`. */
export type RelayOutcome = 'delivered' | 'retried' | 'failed' | 'rejected' | 'resolve_failed';

export interface RelayMetrics {
  relay(outcome: RelayOutcome): void;
}

/** Resolves a name to every address (A and AAAA); the seam for tests. */
export type Resolver = (name: string) => Promise<string[]>;

/** One POST to a peer; resolves to the status (the seam for tests). */
export type PeerPost = (req: {
  host: string;
  port: number;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  timeoutMs: number;
}) => Promise<number>;

export interface PeerRelayOptions {
  peers: PeersSpec;
  /** The webhook path, the same on every replica. */
  path: string;
  /** This replica's webhook listener, as bound. */
  listen: { host: string; port: number };
  /** Retries stop once the delivery is this old (the peers' `maxAge`). */
  maxAgeMs: number;
  logger: Logger;
  metrics: RelayMetrics;
  env: Readonly<Record<string, string | undefined>>;
  timers?: Timers;
  resolve?: Resolver;
  post?: PeerPost;
  /** Addresses of this machine's interfaces; default `os.networkInterfaces()`. */
  interfaceAddresses?: () => string[];
}

const WILDCARDS = new Set(['', '0.0.0.0', '::']);

/** Default resolver: every A and AAAA record (`getaddrinfo`, like the rest of the pod). */
export const resolveAll: Resolver = async (name) =>
  (await lookup(name, { all: true, verbatim: true })).map((a) => a.address);

/** Default POST over `node:http`, no keep-alive (deliveries are rare). */
export const postToPeer: PeerPost = (req) =>
  new Promise((resolve, reject) => {
    const r = httpRequest(
      {
        host: req.host,
        port: req.port,
        path: req.path,
        method: 'POST',
        headers: { ...req.headers, 'content-length': String(req.body.length) },
        agent: false,
        timeout: req.timeoutMs,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    r.on('timeout', () => r.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    r.on('error', reject);
    r.end(req.body);
  });

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/** IPv4-mapped IPv6 (`::ffff:10.0.0.5`) compared as the IPv4 it carries; lower case. */
function canonical(address: string): string {
  const a = address.toLowerCase();
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export class PeerRelay {
  private readonly timers: Timers;
  private readonly resolve: Resolver;
  private readonly post: PeerPost;
  private readonly self: string;
  private readonly ownAddresses: Set<string>;
  private readonly pending = new Map<unknown, () => void>();
  private stopped = false;

  constructor(private readonly opts: PeerRelayOptions) {
    this.timers = opts.timers ?? realTimers;
    this.resolve = opts.resolve ?? resolveAll;
    this.post = opts.post ?? postToPeer;
    this.self = opts.env['POD_NAME'] ?? hostname();
    // (2)
    const own = new Set<string>();
    const podIp = opts.env['POD_IP'];
    if (podIp !== undefined && podIp !== '') own.add(canonical(podIp));
    if (!WILDCARDS.has(opts.listen.host)) own.add(canonical(opts.listen.host));
    else for (const a of (opts.interfaceAddresses ?? interfaceAddresses)()) own.add(canonical(a));
    this.ownAddresses = own;
  }

  /** Forward one verified delivery to every peer (fire and forget; see the module comment). */
  forward(body: Buffer, signature: string, timestampMs: number): void {
    if (this.stopped) return;
    void this.forwardAll(body, signature, timestampMs).catch((err: unknown) =>
      this.opts.logger.error({ err }, 'relay failed'),
    );
  }

  /** Cancels pending retries; forwards in flight finish on their own timeout. */
  stop(): void {
    this.stopped = true;
    for (const [t, wake] of this.pending) {
      this.timers.clearTimeout(t);
      wake();
    }
    this.pending.clear();
  }

  /** The peers to forward to now, this replica excluded (1)–(2). */
  async peers(): Promise<PeerAddress[]> {
    const spec = this.opts.peers;
    const port = spec.port ?? this.opts.listen.port;
    let list: PeerAddress[];
    if (spec.dns !== undefined) {
      list = (await this.resolve(spec.dns)).map((host) => ({ host, port }));
    } else {
      list = (spec.addresses ?? []).map((a) => ({ host: a.host, port: a.port ?? port }));
    }
    const seen = new Set<string>();
    return list.filter((p) => {
      const key = `${canonical(p.host)}|${p.port ?? port}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return !(
        this.ownAddresses.has(canonical(p.host)) && (p.port ?? port) === this.opts.listen.port
      );
    });
  }

  private async forwardAll(body: Buffer, signature: string, timestampMs: number): Promise<void> {
    let peers: PeerAddress[];
    try {
      peers = await this.peers();
    } catch (err) {
      this.opts.metrics.relay('resolve_failed');
      this.opts.logger.warn(
        { dns: this.opts.peers.dns, code: errorCode(err) },
        'relay: cannot resolve the peers; they catch up at their next start or event',
      );
      return;
    }
    await Promise.all(peers.map((p) => this.deliver(p, body, signature, timestampMs)));
  }

  /** (3)–(4) for one peer. */
  private async deliver(
    peer: PeerAddress,
    body: Buffer,
    signature: string,
    timestampMs: number,
  ): Promise<void> {
    const backoff = new Backoff({ baseMs: 250, maxMs: 10_000 });
    const port = peer.port ?? this.opts.listen.port;
    const where = { peer: `${peer.host.includes(':') ? `[${peer.host}]` : peer.host}:${port}` };
    for (;;) {
      let status: number | undefined;
      let code: string | undefined;
      try {
        status = await this.post({
          host: peer.host,
          port,
          path: this.opts.path,
          headers: {
            'content-type': 'application/json',
            [SIGNATURE_HEADER]: signature,
            [RELAY_HEADER]: this.self,
          },
          body,
          timeoutMs: this.opts.peers.timeoutMs,
        });
      } catch (err) {
        code = errorCode(err) ?? 'error';
      }
      if (status !== undefined && status >= 200 && status < 300) {
        this.opts.metrics.relay('delivered');
        this.opts.logger.debug({ ...where, status }, 'relayed');
        return;
      }
      if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
        this.opts.metrics.relay('rejected');
        this.opts.logger.warn(
          { ...where, status },
          'relay: the peer refused the delivery (a different webhook secret?)',
        );
        return;
      }
      const delay = backoff.next();
      const deadline = timestampMs + this.opts.maxAgeMs;
      if (this.stopped || this.timers.now() + delay >= deadline) {
        this.opts.metrics.relay('failed');
        this.opts.logger.warn(
          { ...where, status, code, attempts: backoff.attempts },
          'relay: the peer did not take the delivery; it catches up at its next start',
        );
        return;
      }
      this.opts.metrics.relay('retried');
      await new Promise<void>((resolve) => {
        const t = this.timers.setTimeout(() => {
          this.pending.delete(t);
          resolve();
        }, delay);
        this.pending.set(t, resolve);
      });
      if (this.stopped) {
        this.opts.metrics.relay('failed');
        return;
      }
    }
  }
}
