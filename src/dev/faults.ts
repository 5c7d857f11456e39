/**
 * Scripted failures for tests of retries and outages: each fault matches a route, fires a number
 * of times, and (in this order) waits `delayMs`, then either destroys the socket (`reset`),
 * answers `status` with `body`/`headers`, or — with only a delay — lets the request through.
 * Faults are checked before anything else (auth, validation), in the order they were added.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { defaultFaultBody } from './api-error.js';

export interface FaultSpec {
  /** `'GET /api/v3/secrets/raw'`, a route pattern (`'GET /api/v4/secrets/:secretName'`), a bare path, or `'*'` (default). */
  route?: string;
  /** How many matching requests it applies to; default 1, `Infinity` allowed. */
  times?: number;
  status?: number;
  /** JSON body (objects) or raw text; default: what Infisical sends for that status. */
  body?: unknown;
  headers?: Record<string, string>;
  delayMs?: number;
  /** Destroy the connection without an answer. */
  reset?: boolean;
}

interface Fault extends FaultSpec {
  remaining: number;
}

/** The fault list of one server (`LocalInfisical.faults`). */
export class FaultInjector {
  private readonly faults: Fault[] = [];

  /** Arm a fault. */
  add(spec: FaultSpec): void {
    const times = spec.times ?? 1;
    if (!(times > 0)) throw new RangeError('fault times must be > 0');
    this.faults.push({ ...spec, remaining: times });
  }

  /** Disarm every fault. */
  clear(): void {
    this.faults.length = 0;
  }

  /** Faults not used up yet. */
  get pending(): number {
    return this.faults.length;
  }

  /**
   * The first armed fault matching this request, with one use consumed; `keys` are the
   * request's names (`'GET /api/v3/secrets/raw'`, its route pattern, its path).
   */
  take(keys: string[]): FaultSpec | undefined {
    const i = this.faults.findIndex(
      (f) => f.route === undefined || f.route === '*' || keys.includes(f.route),
    );
    const fault = this.faults[i];
    if (!fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.faults.splice(i, 1);
    return fault;
  }
}

/**
 * Play `fault` on a request (from an `onRequest` hook): wait, then reset the socket or answer.
 * Returns how the request was handled (`'reset'`, `'answered'`), or false to continue normally.
 * `signal` (server closing) cuts the delay short and resets the connection.
 */
export async function applyFault(
  req: FastifyRequest,
  reply: FastifyReply,
  fault: FaultSpec,
  signal: AbortSignal,
): Promise<'reset' | 'answered' | false> {
  if (fault.delayMs) await sleep(fault.delayMs, undefined, { signal }).catch(() => undefined);
  if (fault.reset || signal.aborted) {
    reply.hijack();
    req.raw.socket.destroy();
    return 'reset';
  }
  if (fault.status === undefined) return false;
  const headers = { ...fault.headers };
  let retryAfter = Object.entries(headers).find(([h]) => h.toLowerCase() === 'retry-after')?.[1];
  if (fault.status === 429 && retryAfter === undefined) headers['retry-after'] = retryAfter = '60';
  const body = fault.body ?? defaultFaultBody(req.id, fault.status, Number(retryAfter ?? 60));
  reply.code(fault.status).headers(headers);
  if (typeof body === 'string') reply.type('text/plain; charset=utf-8');
  void reply.send(body);
  return 'answered';
}
