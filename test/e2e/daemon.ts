/**
 * The reloader daemon as a real process (the built CLI via the harness's startCli) with small
 * accessors for its HTTP endpoints, a seed builder for the local Infisical, and a timeline read
 * from the daemon's own log lines for diagnostics.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { request } from 'undici';
import { signWebhook } from '../../src/events/signature.js';
import { startCli, waitFor, type CliProcess } from '../helpers/harness.js';

export interface Daemon {
  proc: CliProcess;
  url: string;
  get(path: string): Promise<{ status: number; text: string }>;
  /** A signed webhook POST with the given body. */
  signedEvent(body: object, secret: string): Promise<number>;
  /** The /status entry of `target`. */
  target(name: string): Promise<TargetStatus | undefined>;
  metrics(): Promise<string>;
  /** SIGTERM, expect exit 0, return everything it printed. */
  stop(): Promise<string>;
}

export interface TargetStatus {
  name: string;
  lastStatus?: string;
  lastError?: { code: string; message: string };
  files: Record<string, string>;
  lastReload?: { status: string; detail: string };
}

/** The admin listener's URL from the daemon's `ready to serve` log line. */
export function adminUrlOf(stderr: string): string {
  const admin = /"admin":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(stderr)?.[1];
  if (admin === undefined)
    throw new Error(`no admin URL in the daemon's log: ${stderr.slice(-800)}`);
  return admin;
}

/**
 * `infisical-reloader run --config spec` as a real process (the built CLI), ready: listening
 * (port parsed from its log line), `/readyz` 200 (every target's files in place) and every
 * target's first pass finished, reload included (`lastStatus` in `/status`).
 */
export async function startDaemon(
  t: TestContext,
  spec: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Daemon> {
  const proc = startCli(t, ['run', '--config', spec, '--log-level', 'debug'], { env });
  const url = await waitFor(
    () => {
      if (proc.child.exitCode !== null) {
        throw new Error(
          `daemon exited ${proc.child.exitCode}: ${proc.output().stderr.slice(-1500)}`,
        );
      }
      return proc.output().stderr.match(/"url":"(http:\/\/127\.0\.0\.1:\d+)","path"/)?.[1];
    },
    { what: 'the daemon to listen', timeoutMs: 15_000 },
  );
  const admin = adminUrlOf(proc.output().stderr);
  const get = async (path: string) => {
    const res = await request(`${admin}${path}`);
    return { status: res.statusCode, text: await res.body.text() };
  };
  await waitFor(async () => (await get('/readyz')).status === 200, {
    what: 'the daemon to be ready (/readyz 200)',
    timeoutMs: 15_000,
  }).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${proc.output().stderr.slice(-3000)}`);
  });
  // /readyz turns 200 as soon as the files are in place, while the first pass may still be
  // running its reload; the tests then read that pass's outcome from /status: wait for it.
  await waitFor(
    async () => {
      const status = JSON.parse((await get('/status')).text) as { targets: TargetStatus[] };
      return status.targets.every((x) => x.lastStatus !== undefined);
    },
    { what: 'every first pass to finish (/status lastStatus)', timeoutMs: 15_000 },
  );
  return {
    proc,
    url,
    get,
    async signedEvent(body, secret) {
      const text = JSON.stringify(body);
      const res = await request(`${url}/infisical/webhook`, {
        method: 'POST',
        body: text,
        headers: {
          'content-type': 'application/json',
          'x-infisical-signature': signWebhook(
            text,
            secret,
            (body as { timestamp?: number }).timestamp ?? Date.now(),
          ),
        },
      });
      await res.body.text();
      return res.statusCode;
    },
    async target(name) {
      const status = JSON.parse((await get('/status')).text) as { targets: TargetStatus[] };
      return status.targets.find((x) => x.name === name);
    },
    async metrics() {
      return (await get('/metrics')).text;
    },
    async stop() {
      proc.child.kill('SIGTERM');
      const { code } = await proc.exited;
      const { stdout, stderr } = proc.output();
      assert.equal(code, 0, `SIGTERM ends the daemon with exit 0; stderr: ${stderr.slice(-1500)}`);
      return `${stdout}\n${stderr}`;
    },
  };
}

/**
 * Milliseconds from `sinceMs` (wall clock) to the first daemon log line of each message in
 * `msgs` at or after it: a breakdown of where a rotation spent its time, for t.diagnostic.
 */
export function logTimeline(stderr: string, sinceMs: number, msgs: string[]): string {
  const lines = stderr
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        const line = JSON.parse(l) as { time?: number | string; msg?: string };
        return [
          { msg: line.msg, at: typeof line.time === 'string' ? Date.parse(line.time) : line.time },
        ];
      } catch {
        return [];
      }
    })
    .filter((l) => typeof l.at === 'number' && l.at >= sinceMs);
  return msgs
    .map((m) => {
      const hit = lines.find((l) => l.msg === m);
      return `${m} +${hit ? (hit.at as number) - sinceMs : '?'} ms`;
    })
    .join(', ');
}

/** Seed YAML (JSON is YAML) for one project/environment/folder and one Kubernetes identity. */
export function seedYaml(p: {
  projectId: string;
  environment: string;
  secrets: Record<string, string>;
  identityId: string;
}): string {
  return JSON.stringify({
    projects: [
      {
        id: p.projectId,
        name: p.projectId,
        environments: [{ slug: p.environment, name: p.environment, folders: { '/': p.secrets } }],
      },
    ],
    identities: [
      {
        id: p.identityId,
        name: 'reloader',
        kubernetes: { allowedNamespaces: 'apps', allowedNames: 'reloader' },
      },
    ],
  });
}

/**
 * The part of an e2e spec before `targets:`: the local Infisical at `url`, Kubernetes auth with
 * `identityId` and the token in `sa-token`, one source, both listeners on 127.0.0.1 port 0, the
 * webhook secret in `webhook-secret` (files next to the spec) and a short wait.
 */
export function specHeader(p: {
  url: string;
  identityId: string;
  projectId: string;
  environment: string;
}): string {
  return `infisical:
  url: ${p.url}
  auth: { kubernetes: { identityId: ${p.identityId}, tokenPath: sa-token } }
  timeout: 2s
sources:
  - { projectId: ${p.projectId}, environment: ${p.environment}, path: / }
webhook:
  listen: 127.0.0.1:0
  secretFile: webhook-secret
admin:
  listen: 127.0.0.1:0
defaults:
  wait: { min: 20ms, max: 200ms }
`;
}
