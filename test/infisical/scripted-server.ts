/**
 * Test helpers for the Infisical client: a real node:http server on 127.0.0.1:0 whose answers
 * each test scripts, a recorder of what it saw, a fake clock, and a bounded `waitFor`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import type { Timers } from '../../src/util/timers.js';

export interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
  raw: string;
  atMs: number;
}

export type Handler = (
  req: Seen,
  res: ServerResponse,
  raw: IncomingMessage,
) => void | Promise<void>;

export interface Scripted {
  /** Base URL ending in /api. */
  url: string;
  seen: Seen[];
  port: number;
}

/** Starts a scripted server for the test; closed (connections included) when the test ends. */
export async function scriptedServer(t: TestContext, handler: Handler): Promise<Scripted> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const u = new URL(req.url ?? '/', 'http://x');
      let body: unknown;
      try {
        body = raw === '' ? undefined : JSON.parse(raw);
      } catch {
        body = raw;
      }
      const s: Seen = {
        method: req.method ?? '',
        path: u.pathname,
        query: u.searchParams,
        headers: req.headers,
        body,
        raw,
        atMs: Date.now(),
      };
      seen.push(s);
      Promise.resolve(handler(s, res, req)).catch((err: unknown) => {
        res.statusCode = 599;
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/api`, seen, port };
}

/** Sends a JSON answer. */
export function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Infisical's error body shape (docs/infisical-api.md). */
export function infisicalError(
  res: ServerResponse,
  status: number,
  error: string,
  message: unknown,
  headers: Record<string, string> = {},
): void {
  json(res, status, { reqId: 'req-test', statusCode: status, message, error }, headers);
}

/** Polls `cond` every 5 ms; fails after `timeoutMs` with `what()` describing what it saw last. */
export async function waitFor(
  cond: () => boolean,
  what: () => string,
  timeoutMs = 3000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms; saw: ${what()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A manual clock with timers: `advanceTo` fires due timers in time order. */
export class FakeClock {
  t: number;
  private seq = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();

  constructor(start = 1_000_000) {
    this.t = start;
  }

  readonly now = (): number => this.t;

  readonly timers: Timers = {
    now: () => this.t,
    setTimeout: (fn, ms) => {
      const id = ++this.seq;
      this.pending.set(id, { at: this.t + ms, fn });
      return id;
    },
    clearTimeout: (h) => {
      this.pending.delete(h as number);
    },
  };

  /** Due times of the armed timers, soonest first. */
  armed(): number[] {
    return [...this.pending.values()].map((p) => p.at).sort((a, b) => a - b);
  }

  /** Moves the clock to `t`, firing every timer due on the way (each at its own time). */
  advanceTo(t: number): void {
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.pending) if (e[1].at <= t && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.pending.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = Math.max(this.t, t);
  }
}

/** A pino destination that keeps every line, for canary checks. */
export function captureLines(): {
  stream: Writable & { write: Writable['write'] };
  lines: string[];
} {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      cb();
    },
  });
  return { stream, lines };
}
