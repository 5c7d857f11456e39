/**
 * Shared fakes for the server tests: a deps object that records calls, a logger whose JSON
 * lines are captured, a fixed clock, and helpers to build signed deliveries.
 */
import type { FastifyInstance } from 'fastify';
import { buildAdminServer, type AdminDeps } from '../../src/server/admin-routes.js';
import { buildWebhookServer } from '../../src/server/webhook-routes.js';
import { EventIntake } from '../../src/events/intake.js';
import { WebhookSecrets } from '../../src/events/webhook-secrets.js';
import { Metrics } from '../../src/server/metrics.js';
import { createLogger, Scrubber } from '../../src/logger.js';
import { signWebhook } from '../../src/events/signature.js';
import type { ChangeEvent } from '../../src/events/parse.js';
import type { WebhookSpec } from '../../src/config/types.js';

export const SECRET = 'whsec-test-5f0c9a71d2e84b36';
export const NOW = 1_750_000_000_000;
export const MAX_AGE_MS = 300_000;
export const HOOK = '/infisical/webhook';

export interface Recorded {
  events: { event: ChangeEvent; meta: { receivedAtMs: number } }[];
  resyncs: number;
  /** Deliveries handed to the relay (body, signature). */
  relayed: { body: Buffer; signature: string }[];
}

export interface Harness {
  /** The webhook listener's app (`POST <path>` only). */
  webhook: FastifyInstance;
  /** The admin listener's app (`/healthz`, `/readyz`, `/metrics`, `/status`, `/resync`). */
  admin: FastifyInstance;
  intake: EventIntake;
  /** The secrets that verify now (rotate with `set`). */
  secrets: WebhookSecrets;
  deps: AdminDeps;
  /** Closes both apps. */
  close(): Promise<void>;
  /** POST `payload` to the webhook path with `headers` (through `inject()`). */
  deliver(
    payload: string,
    headers?: Record<string, string>,
  ): Promise<{ statusCode: number; body: string; json(): unknown }>;
  calls: Recorded;
  /** Every JSON log line written so far (raw text). */
  logs: string[];
  metrics: Metrics;
  scrubber: Scrubber;
  state: { healthy: boolean; ready: boolean; status: unknown; effect: 'queued' | 'ignored' };
  clock: { now: number };
}

/**
 * A server over fake deps. The logger gets its own, empty scrubber: a test that looks for a
 * canary in the logs must prove the value was never logged, not that the scrubber hid it.
 */
export function harness(
  opts: { webhook?: Partial<WebhookSpec>; secret?: string | null; onEventThrows?: boolean } = {},
): Harness {
  const logs: string[] = [];
  const scrubber = new Scrubber();
  const logger = createLogger({
    level: 'debug',
    scrubber,
    destination: { write: (line: string) => void logs.push(line) },
  });
  const metrics = new Metrics({ defaultMetrics: false });
  const calls: Recorded = { events: [], resyncs: 0, relayed: [] };
  const state: Harness['state'] = {
    healthy: true,
    ready: false,
    status: { targets: { web: { lastRender: NOW, files: { 'a.conf': 'sha256:0a1b2c' } } } },
    effect: 'queued',
  };
  const clock = { now: NOW };
  const webhook: WebhookSpec = {
    listen: { host: '127.0.0.1', port: 0 },
    path: HOOK,
    maxAgeMs: MAX_AGE_MS,
    allowUnsigned: false,
    payloadValues: 'refetch',
    ...opts.webhook,
  };
  const secrets = new WebhookSecrets({
    maxAgeMs: webhook.maxAgeMs,
    scrubber,
    now: () => clock.now,
  });
  secrets.set(opts.secret === null ? undefined : (opts.secret ?? SECRET));
  const intake = new EventIntake({
    secrets,
    maxAgeMs: webhook.maxAgeMs,
    allowUnsigned: webhook.allowUnsigned,
    payloadValues: () => webhook.payloadValues,
    dispatch(event, meta) {
      if (opts.onEventThrows === true) throw new Error('engine exploded: internal-detail-42');
      calls.events.push({ event, meta: { receivedAtMs: meta.receivedAtMs } });
      return state.effect === 'ignored'
        ? { effect: 'ignored', reason: 'no source matches' }
        : { effect: 'queued' };
    },
    logger,
    metrics,
    now: () => clock.now,
  });
  const deps: AdminDeps = {
    logger,
    metrics,
    scrubber,
    intake,
    onResync() {
      calls.resyncs += 1;
    },
    health: () => state.healthy,
    ready: () => state.ready,
    status: () => state.status,
  };
  const webhookApp = buildWebhookServer({
    path: webhook.path,
    intake,
    logger,
    relay: (body, signature) => calls.relayed.push({ body, signature }),
  });
  const admin = buildAdminServer(deps);
  return {
    webhook: webhookApp,
    admin,
    close: async () => {
      await webhookApp.close();
      await admin.close();
    },
    deliver: (payload, headers) =>
      webhookApp.inject({ method: 'POST', url: HOOK, payload, ...(headers ? { headers } : {}) }),
    intake,
    secrets,
    deps,
    calls,
    logs,
    metrics,
    scrubber,
    state,
    clock,
  };
}

/** An Infisical `secrets.modified` body (docs/infisical-api.md), timestamp = `ts`. */
export function modifiedBody(ts = NOW, secretPath = '/'): string {
  return JSON.stringify({
    event: 'secrets.modified',
    project: { workspaceId: 'proj-1', projectId: 'proj-1', environment: 'dev', secretPath },
    timestamp: ts,
  });
}

/** An integration-guide value event (no body timestamp). */
export function valueBody(key: string, value: string, event = 'secret.updated'): string {
  return JSON.stringify({ event, payload: { secretKey: key, secretValue: value, rotation: true } });
}

/** Headers for a signed delivery of `body` at `ts` (Content-Type application/json). */
export function signed(body: string | Buffer, ts = NOW, secret = SECRET): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-infisical-signature': signWebhook(body, secret, ts),
  };
}

/** The value of one sample line of the Prometheus text, or undefined when absent. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
