/**
 * Shared plumbing of the reliability suite (issue 6): the soak switch, a per-file record of
 * every text the suite saw the product produce (log lines, error messages, `/status`,
 * `/metrics`, HTTP answers) for the secrecy scan, a logger that feeds that record, and an
 * in-process daemon (`serve()` with a real HTTP server) for the fault tests.
 *
 * `npm test` runs the small counts; `npm run soak` sets SOAK=1 and the large ones.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { request } from 'undici';
import { loadSpec } from '../../src/config/load.js';
import type { LocalInfisical } from '../../src/dev/local-infisical.js';
import type { Daemon } from '../../src/engine/daemon.js';
import { serve } from '../../src/engine/serve.js';
import { signWebhook } from '../../src/events/signature.js';
import { createLogger, Scrubber, type Logger } from '../../src/logger.js';
import { assertNoSecrets } from '../helpers/harness.js';

/** True under `npm run soak` (SOAK=1). */
export const SOAK =
  (process.env['SOAK'] !== undefined && !['', '0'].includes(process.env['SOAK'])) ||
  process.env['SOAK_MINUTES'] !== undefined;

/**
 * `SOAK_MINUTES=10 npm run soak`: how long the load soak runs, in minutes (unset: the 60 s
 * soak). Setting it turns the soak on by itself.
 */
export const SOAK_MINUTES = Number(process.env['SOAK_MINUTES'] ?? '') || undefined;

/** `normal` in `npm test`, `soak` under SOAK=1. */
export function scale(normal: number, soak: number): number {
  return SOAK ? soak : normal;
}

/** Everything this test file saw the product print or answer, and the canaries to look for. */
const seen: string[] = [];
const canaries = new Set<string>();

/** Remember product output for the secrecy scan at the end of the file. */
export function record(...texts: string[]): void {
  for (const t of texts) seen.push(t);
}

/** Values that must never appear in any recorded output (secret values, tokens, secrets). */
export function addCanaries(...values: string[]): void {
  for (const v of values) canaries.add(v);
}

/** How many (canary, text) pairs hit: 0 is the only passing answer. */
export function countHits(texts: readonly string[], values: Iterable<string>): number {
  let hits = 0;
  for (const value of values) for (const text of texts) if (text.includes(value)) hits += 1;
  return hits;
}

/**
 * The secrecy check of one test file: every recorded text against every canary (plus the JWT
 * shape), reported as a figure and asserted to be zero. Call it as the file's last test.
 */
export function secrecyReport(t: TestContext, file: string): void {
  const bytes = seen.reduce((n, s) => n + s.length, 0);
  const hits = countHits(seen, canaries);
  t.diagnostic(
    `secrecy[${file}]: ${seen.length} outputs (${(bytes / 1024).toFixed(0)} KiB) × ${canaries.size} canaries → ${hits} hits`,
  );
  assert.ok(canaries.size > 0, 'the file registered canaries');
  assert.ok(seen.length > 0, 'the file recorded outputs');
  assert.equal(hits, 0, 'no canary in any output');
  assertNoSecrets(seen, [...canaries]);
}

/** A debug-level logger of the real kind (with its runtime's scrubber) whose lines are recorded. */
export function recordingLogger(level = 'debug'): {
  logger: Logger;
  lines: string[];
  scrubber: Scrubber;
} {
  const lines: string[] = [];
  const scrubber = new Scrubber();
  const logger = createLogger({
    level,
    scrubber,
    destination: {
      write: (line: string) => {
        lines.push(line);
        seen.push(line);
      },
    },
  });
  return { logger, lines, scrubber };
}

/** Resolve after `ms`. Only for deliberate pacing (outage windows), never to await an event. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The `secrets.modified` body Infisical sends for a change in `projectId/environment/path`. */
export function modifiedEvent(projectId: string, environment: string, path = '/'): object {
  return {
    event: 'secrets.modified',
    project: { workspaceId: projectId, projectId, environment, secretPath: path },
    timestamp: Date.now(),
  };
}

/** A daemon running in this process: `serve()` with its real server on 127.0.0.1. */
export interface InProcessDaemon {
  /** The webhook listener. */
  url: string;
  /** The admin listener (/healthz, /readyz, /metrics, /status, /resync). */
  adminUrl: string;
  daemon: Daemon;
  lines: string[];
  /** POST a signed JSON event to the webhook; the answer is recorded. */
  event(body: object): Promise<{ status: number; text: string }>;
  /** GET a path; the answer is recorded. */
  get(path: string): Promise<{ status: number; text: string }>;
  /** Stop and wait for serve() to resolve; asserts exit code 0. */
  stop(): Promise<void>;
}

/**
 * Write `specYaml` to `<dir>/reloader.yaml`, load it and run `serve()` until the test ends.
 * The webhook secret must be in the spec (`webhook.secret`); it is passed as `webhookSecret`
 * to sign events.
 */
export async function startInProcess(
  t: TestContext,
  dir: string,
  specYaml: string,
  webhookSecret: string,
): Promise<InProcessDaemon> {
  const specFile = join(dir, 'reloader.yaml');
  await writeFile(specFile, specYaml);
  const env = { PATH: process.env['PATH'], HOME: process.env['HOME'] };
  const spec = await loadSpec(specFile, env);
  const { logger, lines, scrubber } = recordingLogger();
  let stopNow!: () => void;
  const stopSignal = new Promise<void>((r) => (stopNow = r));
  type Listening = { url: string; admin: { url: string }; daemon: Daemon };
  let listening!: (info: Listening) => void;
  const onListening = new Promise<Listening>((r) => (listening = r));
  const exit = serve({
    spec,
    logger,
    scrubber,
    env,
    stopSignal,
    onListening: (i) => listening(i),
  });
  const first = await Promise.race([onListening, exit.then((code) => code)]);
  if (typeof first === 'number') {
    assert.fail(`serve() ended with ${first} before listening: ${lines.slice(-3).join('')}`);
  }
  const { url, daemon } = first;
  const adminUrl = first.admin.url;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    stopNow();
    assert.equal(await exit, 0, 'serve() resolves 0 when stopped');
  };
  t.after(stop);
  const call = async (
    method: 'GET' | 'POST',
    path: string,
    body?: string,
    headers?: Record<string, string>,
  ): Promise<{ status: number; text: string }> => {
    const base = path === '/infisical/webhook' ? url : adminUrl;
    const res = await request(`${base}${path}`, { method, body, headers });
    const text = await res.body.text();
    record(text);
    return { status: res.statusCode, text };
  };
  return {
    url,
    adminUrl,
    daemon,
    lines,
    event(body) {
      const text = JSON.stringify(body);
      const ts = (body as { timestamp?: number }).timestamp ?? Date.now();
      return call('POST', '/infisical/webhook', text, {
        'content-type': 'application/json',
        'x-infisical-signature': signWebhook(text, webhookSecret, ts),
      });
    },
    get: (path) => call('GET', path),
    stop,
  };
}

/** Requests to Infisical recorded after index `from` whose route contains `part`. */
export function requestsSince(local: LocalInfisical, from: number, part: string) {
  return local.requests.slice(from).filter((r) => r.route.includes(part));
}
