/**
 * Shared fixtures for the local-Infisical tests: a seed, a server started per test (closed in
 * `t.after`), a tiny HTTP client, and a webhook receiver that records raw bodies.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import {
  startLocalInfisical,
  type LocalInfisical,
  type LocalInfisicalOptions,
} from '../../src/dev/local-infisical.js';
import { parseSeed } from '../../src/dev/seed.js';

export const SEED_YAML = `
projects:
  - id: proj-1
    name: Payments
    slug: payments
    environments:
      - slug: dev
        folders:
          /:
            DB_USER: app
            DB_PASSWORD: pw
            DSN: "postgres://\${DB_USER}:\${DB_PASSWORD}@db/\${dev.api.API_KEY}"
            SHARED_OVERRIDE: own
          /api: { API_KEY: k1 }
          /api/billing: { BILLING: b1 }
          /shared: { REDIS_URL: "redis://r", SHARED_OVERRIDE: shared, FROM_COMMON: "\${COMMON}" }
          /common: { COMMON: c1 }
        imports:
          /: [ { path: /shared } ]
          /shared: [ { path: /common } ]
      - slug: prod
        folders:
          /: { DB_USER: prod-app }
  - id: proj-2
    name: Other
    environments: [ { slug: dev } ]
identities:
  - id: ident-1
    universal: { clientId: cid, clientSecret: csec }
    kubernetes: { allowedNamespaces: "default,team-*", allowedNames: "reloader,web-*" }
  - id: ident-aud
    kubernetes: { allowedAudience: infisical }
  - id: ident-2
    universal: { clientId: cid2, clientSecret: csec2, lockout: false }
    projects: [ proj-2 ]
`;

/** A server with `SEED_YAML` (or `yaml`), closed when the test ends. */
export async function startServer(
  t: TestContext,
  opts: Partial<LocalInfisicalOptions> & { yaml?: string } = {},
): Promise<LocalInfisical> {
  const seed = parseSeed(opts.yaml ?? SEED_YAML, 'seed.yaml');
  const srv = await startLocalInfisical({ webhookDelayMs: 50, ...opts, seed });
  t.after(() => srv.close());
  return srv;
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

/** One request against `srv.url + path`; JSON body when `body` is given. */
export async function api(
  srv: LocalInfisical,
  path: string,
  init: { token?: string; method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(srv.url + path, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Universal-auth login; returns the access token. */
export async function login(
  srv: LocalInfisical,
  clientId = 'cid',
  clientSecret = 'csec',
): Promise<string> {
  const res = await api(srv, '/v1/auth/universal-auth/login', { body: { clientId, clientSecret } });
  if (res.status !== 200) throw new Error(`login answered ${res.status}: ${res.text}`);
  return res.json.accessToken as string;
}

/** The JSON error body without the random `reqId` (asserted separately). */
export function errorOf(a: Answer): Record<string, unknown> {
  const { reqId, ...rest } = a.json;
  if (typeof reqId !== 'string' || !/^req-[A-Za-z0-9]{14}$/.test(reqId)) {
    throw new Error(`bad reqId in ${a.text}`);
  }
  return rest;
}

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  atMs: number;
}

/** A webhook receiver on 127.0.0.1:0 answering `status()`; `waitFor(n)` awaits n requests. */
export async function startReceiver(t: TestContext, status: () => number = () => 200) {
  const received: Received[] = [];
  const waiters: (() => void)[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        atMs: Date.now(),
      });
      res.statusCode = status();
      res.end('ok');
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  async function waitFor(n: number, timeoutMs = 5000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (received.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `receiver got ${received.length} of ${n} requests; last: ${received.at(-1)?.body ?? 'none'}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return received;
  }
  return { url, received, waitFor };
}

/** Milliseconds until the JWT's `exp` has passed (jsonwebtoken: expired when now >= exp). */
export function msUntilExpired(jwt: string): number {
  const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as {
    exp: number;
  };
  return Math.max(0, payload.exp * 1000 - Date.now() + 30);
}
