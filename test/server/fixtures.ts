/**
 * Shared fakes for the server tests: a deps object that records calls, a logger whose JSON
 * lines are captured, a fixed clock, and helpers to build signed deliveries.
 */
import { buildServer, type ServerDeps } from '../../src/server/build.js';
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
}

export interface Harness {
  server: ReturnType<typeof buildServer>;
  deps: ServerDeps;
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
  const calls: Recorded = { events: [], resyncs: 0 };
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
    payloadValues: 'apply',
    ...opts.webhook,
  };
  const deps: ServerDeps = {
    webhook,
    webhookSecret: opts.secret === null ? undefined : (opts.secret ?? SECRET),
    logger,
    metrics,
    onEvent(event, meta) {
      if (opts.onEventThrows === true) throw new Error('engine exploded: internal-detail-42');
      calls.events.push({ event, meta });
      return state.effect === 'ignored'
        ? { effect: 'ignored', reason: 'no source matches' }
        : { effect: 'queued' };
    },
    onResync() {
      calls.resyncs += 1;
      return { effect: 'queued' };
    },
    health: () => state.healthy,
    ready: () => state.ready,
    status: () => state.status,
    now: () => clock.now,
    scrubber,
  };
  const server = buildServer(deps);
  return { server, deps, calls, logs, metrics, scrubber, state, clock };
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
