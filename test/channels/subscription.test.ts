/**
 * Event Subscriptions, both ends: the local Infisical-compatible server's stream route answers
 * the way Infisical does (auth, body validation, licence, permission, the 5-stream limit, the
 * frame and ping format, `event: error` on a failed re-check), and the daemon's channel takes
 * frames to targeted refetches, reconnects and refetches everything after a drop or a silent
 * stream, shows a plan restriction as "unavailable" while webhooks go on, and keeps a stream
 * open across a token renewal.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import type { Daemon } from '../../src/engine/daemon.js';
import type { LocalInfisical, LocalInfisicalOptions } from '../../src/dev/local-infisical.js';
import { startInfisical, tempDir, waitFor } from '../helpers/harness.js';
import { serveSpec } from '../helpers/serve.js';

const SEED = `
projects:
  - id: proj-s
    name: Streams
    environments:
      - slug: prod
        name: Production
        folders:
          /: { A: a-1-value }
          /svc: { B: b-1-value }
identities:
  - id: ident-s
    name: reloader
    universal: { clientId: cid-s, clientSecret: csecret-stream-1, lockout: false }
    projects: [proj-s]
`;

const ROUTE = '/v1/events/subscribe/project-events';
const REGISTER = [
  { event: 'secret:update', conditions: { environmentSlug: 'prod', secretPath: '/**' } },
];

// ---------------------------------------------------------------------------------------------
// The local server's route

interface OpenStream {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Everything read so far. */
  text(): string;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
  json(): Promise<Record<string, unknown>>;
}

async function openStream(
  local: LocalInfisical,
  body: unknown,
  token: string | undefined,
): Promise<OpenStream> {
  const ac = new AbortController();
  const res = await request(`${local.url}${ROUTE}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'text/event-stream',
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
    signal: ac.signal,
  });
  let seen = '';
  const ended =
    res.statusCode === 200
      ? (async () => {
          try {
            for await (const chunk of res.body) seen += Buffer.from(chunk).toString('utf8');
          } catch {
            // aborted by the test
          }
        })()
      : Promise.resolve();
  return {
    status: res.statusCode,
    headers: res.headers,
    text: () => seen,
    ended,
    close: () => ac.abort(),
    json: async () => (await res.body.json()) as Record<string, unknown>,
  };
}

test('local server stream route: auth, body, licence, permission and the 5-stream limit answer as Infisical does', async (t) => {
  const local = await startInfisical(t, SEED, { eventStreams: { pingIntervalMs: 100 } });
  const token = local.issueAccessToken({ identityId: 'ident-s' });
  const body = { projectId: 'proj-s', register: REGISTER };

  const anonymous = await openStream(local, body, undefined);
  assert.equal(anonymous.status, 401);
  assert.equal((await anonymous.json())['message'], 'Token missing');

  const empty = await openStream(local, { projectId: 'proj-s', register: [] }, token);
  assert.equal(empty.status, 422);
  const issues = (await empty.json())['message'] as Array<Record<string, unknown>>;
  assert.deepEqual(issues[0]?.['path'], ['register']);
  assert.equal(issues[0]?.['code'], 'too_small');

  const badEvent = await openStream(
    local,
    { projectId: 'proj-s', register: [{ event: 'secret:rename' }] },
    token,
  );
  assert.equal(badEvent.status, 422);

  local.events.licensed = false;
  const unlicensed = await openStream(local, body, token);
  assert.equal(unlicensed.status, 400);
  assert.match(String((await unlicensed.json())['message']), /plan restriction/);
  local.events.licensed = true;

  local.events.deny('ident-s');
  const denied = await openStream(local, body, token);
  assert.equal(denied.status, 403);
  const deniedBody = await denied.json();
  assert.equal(deniedBody['error'], 'PermissionDenied');
  assert.deepEqual(
    (deniedBody['details'] as Record<string, unknown>)['action'],
    'subscribe-on-updated',
  );
  local.events.allow('ident-s');

  const streams: OpenStream[] = [];
  t.after(() => streams.forEach((s) => s.close()));
  for (let i = 0; i < 5; i++) streams.push(await openStream(local, body, token));
  assert.deepEqual(
    streams.map((s) => s.status),
    [200, 200, 200, 200, 200],
  );
  const first = streams[0] as OpenStream;
  assert.equal(first.headers['content-type'], 'text/event-stream');
  assert.equal(first.headers['cache-control'], 'no-cache');
  assert.equal(first.headers['x-accel-buffering'], 'no');
  const sixth = await openStream(local, body, token);
  assert.equal(sixth.status, 429, 'five streams per identity and project');
  assert.equal((await sixth.json())['error'], 'RateLimitExceeded');
  (streams.pop() as OpenStream).close();
  await waitFor(() => local.events.open === 4, { what: 'the closed stream to be forgotten' });
  const again = await openStream(local, body, token);
  streams.push(again);
  assert.equal(again.status, 200, 'a closed stream frees its slot');
});

test('local server stream frames: keys only, never values; pings; a failed re-check sends event: error and closes', async (t) => {
  const local = await startInfisical(t, SEED, {
    eventStreams: { pingIntervalMs: 100, recheckIntervalMs: 300 },
  });
  const token = local.issueAccessToken({ identityId: 'ident-s' });
  const s = await openStream(local, { projectId: 'proj-s', register: REGISTER }, token);
  t.after(() => s.close());
  assert.equal(s.status, 200);
  await waitFor(() => s.text().includes('event: ping\n\n'), { what: 'a ping' });
  local.setSecret({
    projectId: 'proj-s',
    environment: 'prod',
    path: '/svc',
    key: 'B',
    value: 'b-2-changed',
  });
  await waitFor(() => s.text().includes('event: secret-manager'), { what: 'a change frame' });
  const frame = s
    .text()
    .split('\n\n')
    .find((f) => f.includes('event: secret-manager')) as string;
  assert.match(frame, /^id: \d{4}-\d\d-\d\dT/m);
  const data = JSON.parse((/^data: (.*)$/m.exec(frame) as RegExpExecArray)[1] as string);
  assert.equal(data.type, 'secret-manager');
  assert.equal(data.data.event, 'secret:update');
  assert.deepEqual(
    data.data.payload.map((p: Record<string, unknown>) => [
      p['secretKey'],
      p['secretPath'],
      p['environment'],
    ]),
    [['B', '/svc', 'prod']],
  );
  assert.ok(!s.text().includes('b-2-changed'), 'a frame never carries a value');

  // A change outside the registration (a create, registered only for updates) sends nothing.
  const before = local.events.framesSent;
  local.setSecret({ projectId: 'proj-s', environment: 'prod', path: '/', key: 'NEW', value: 'n' });
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(local.events.framesSent, before, 'secret:create is not registered');

  local.events.deny('ident-s');
  await s.ended;
  assert.match(s.text(), /event: error\ndata: \{"message":/);
  assert.equal(local.events.open, 0);
});

// ---------------------------------------------------------------------------------------------
// The daemon's channel

interface StreamDaemon {
  daemon: Daemon;
  dir: string;
  webhookUrl: string;
  admin: string;
  lines: string[];
}

async function startStreamDaemon(
  t: TestContext,
  local: LocalInfisical,
  options: { heartbeat?: string } = {},
): Promise<StreamDaemon> {
  const dir = await tempDir(t, 'rld-stream-');
  const specFile = join(dir, 'reloader.yaml');
  await writeFile(
    specFile,
    `infisical:
  url: ${local.url}
  auth: { universal: { clientId: cid-s, clientSecret: csecret-stream-1 } }
  eventSubscription:
    enabled: true
    heartbeatTimeout: ${options.heartbeat ?? '45s'}
    reconnect: { min: 100ms, max: 400ms }
sources:
  - { projectId: proj-s, environment: prod, path: /, includeImports: false, expandReferences: false }
  - { projectId: proj-s, environment: prod, path: /svc, includeImports: false, expandReferences: false }
webhook:
  listen: 127.0.0.1:0
  allowUnsigned: true
admin:
  listen: 127.0.0.1:0
defaults:
  wait: { min: 10ms, max: 100ms }
targets:
  - name: a
    files: [ { contents: "{{secrets.A}}", destination: out/a } ]
  - name: b
    files: [ { contents: "{{secrets.B}}", destination: out/b } ]
`,
  );
  const served = await serveSpec(t, specFile);
  return { ...served, dir, webhookUrl: `${served.url}/infisical/webhook` };
}

interface StreamStatus {
  state: string;
  reconnects: number;
  lastError?: { code: string; message: string; status?: number };
}
interface SourceStatus {
  path: string;
  lastFetchAt?: string;
}

const streamOf = (d: StreamDaemon): StreamStatus | undefined =>
  (d.daemon.status() as { channels: { eventSubscription: { streams: StreamStatus[] } } }).channels
    .eventSubscription.streams[0];
const fetchedAt = (d: StreamDaemon, path: string): string | undefined =>
  (d.daemon.status() as { sources: SourceStatus[] }).sources.find((s) => s.path === path)
    ?.lastFetchAt;
const fileOf = (d: StreamDaemon, name: string) =>
  readFile(join(d.dir, 'out', name), 'utf8').catch(() => '');

async function metricsOf(d: StreamDaemon): Promise<string> {
  return (await request(`${d.admin}/metrics`)).body.text();
}

test('event stream: a frame refetches the folder it names; a dropped stream reconnects and refetches everything; a silent one is left at the heartbeat deadline', async (t) => {
  const local = await startInfisical(t, SEED, { eventStreams: { pingIntervalMs: 100 } });
  const d = await startStreamDaemon(t, local, { heartbeat: '600ms' });
  await waitFor(() => streamOf(d)?.state === 'connected', { what: 'the stream connected' });
  assert.equal(local.events.open, 1, 'one stream per project');
  assert.equal(await fileOf(d, 'a'), 'a-1-value');

  // (1) A frame names /svc: only that source is fetched again, and its target updated.
  await waitFor(() => fetchedAt(d, '/') !== undefined && fetchedAt(d, '/svc') !== undefined, {
    what: 'both sources fetched once',
  });
  const rootBefore = fetchedAt(d, '/');
  const svcBefore = fetchedAt(d, '/svc');
  local.setSecret({
    projectId: 'proj-s',
    environment: 'prod',
    path: '/svc',
    key: 'B',
    value: 'b-2-value',
  });
  await waitFor(async () => (await fileOf(d, 'b')) === 'b-2-value', {
    what: 'the frame to reach out/b',
  });
  assert.notEqual(fetchedAt(d, '/svc'), svcBefore, '/svc was refetched');
  assert.equal(fetchedAt(d, '/'), rootBefore, '/ was not: the frame named /svc only');
  assert.match(
    await metricsOf(d),
    /^reloader_event_stream_frames_total\{[^}]*kind="change"[^}]*\} [1-9]/m,
  );

  // (2) The server drops the stream; a change made while it is down arrives by the refetch
  // that follows the reconnect (Infisical replays nothing).
  assert.equal(local.events.dropAll(), 1);
  local.setSecret({
    projectId: 'proj-s',
    environment: 'prod',
    path: '/',
    key: 'A',
    value: 'a-2-value',
  });
  await waitFor(async () => (await fileOf(d, 'a')) === 'a-2-value', {
    what: 'the refetch after the reconnect to reach out/a',
  });
  await waitFor(() => streamOf(d)?.state === 'connected', { what: 'connected again' });
  assert.ok((streamOf(d)?.reconnects ?? 0) >= 1);

  // (3) A stream that goes silent (no ping, no frame) is abandoned at the heartbeat deadline.
  const reconnectsBefore = streamOf(d)?.reconnects ?? 0;
  local.events.mute();
  await waitFor(() => (streamOf(d)?.reconnects ?? 0) > reconnectsBefore, {
    what: 'a reconnect after the heartbeat deadline',
    timeoutMs: 5_000,
  });
  local.events.unmute();
  await waitFor(() => streamOf(d)?.state === 'connected', { what: 'connected after the silence' });
  assert.ok(
    d.lines.some((l) => l.includes('no frame within the heartbeat timeout')),
    'the log says why it reconnected',
  );
  await waitFor(() => local.events.open === 1, { what: 'the silent stream closed' });
  const metrics = await metricsOf(d);
  assert.match(metrics, /^reloader_event_stream_state\{[^}]*project="proj-s"[^}]*\} /m);
  assert.doesNotMatch(metrics, /a-1-value|a-2-value|b-2-value/);
});

test('event stream on a plan without Event Subscriptions: unavailable in /status and /metrics, webhooks still work, the daemon is ready', async (t) => {
  const local = await startInfisical(t, SEED, { eventStreams: { licensed: false } });
  const d = await startStreamDaemon(t, local);
  await waitFor(() => streamOf(d)?.state === 'unavailable', { what: 'the stream unavailable' });
  const s = streamOf(d) as StreamStatus;
  assert.equal(s.lastError?.status, 400);
  assert.match(s.lastError?.message ?? '', /plan restriction/);
  assert.equal(d.daemon.ready, true, 'readiness is not affected');
  const ready = await request(`${d.admin}/readyz`);
  await ready.body.dump();
  assert.equal(ready.statusCode, 200);
  const metrics = await metricsOf(d);
  assert.match(
    metrics,
    /^reloader_event_stream_connects_total\{[^}]*outcome="unavailable"[^}]*\} [1-9]/m,
  );
  assert.equal(
    d.lines.filter((l) => l.includes('event stream unavailable') && l.includes('"level":"warn"'))
      .length,
    1,
    'one warning, not one per retry',
  );

  // A webhook still does the job.
  local.setSecret({
    projectId: 'proj-s',
    environment: 'prod',
    path: '/',
    key: 'A',
    value: 'a-3-webhook',
  });
  const res = await request(d.webhookUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      event: 'secrets.modified',
      project: { workspaceId: 'proj-s', projectId: 'proj-s', environment: 'prod', secretPath: '/' },
      timestamp: Date.now(),
    }),
  });
  assert.equal(res.statusCode, 200, await res.body.text());
  await waitFor(async () => (await fileOf(d, 'a')) === 'a-3-webhook', {
    what: 'the webhook to reach out/a',
  });
});

test('event stream across token renewals: a new stream opens before the old one closes, and changes keep arriving', async (t) => {
  // 3 s tokens, renewed at 80 %: a renewal every 2.4 s.
  const opts: Omit<LocalInfisicalOptions, 'seed'> = {
    accessTokenTTL: 3,
    accessTokenMaxTTL: 600,
    eventStreams: { pingIntervalMs: 200 },
  };
  const local = await startInfisical(t, SEED, opts);
  const d = await startStreamDaemon(t, local);
  await waitFor(() => streamOf(d)?.state === 'connected', { what: 'the stream connected' });
  const renewals = () =>
    local.requests.filter((r) => r.route.includes('/auth/token/renew') && r.status === 200).length;
  let gaps = 0;
  const watch = setInterval(() => {
    if (local.events.open === 0) gaps++;
  }, 5);
  t.after(() => clearInterval(watch));
  await waitFor(() => renewals() >= 2, { what: 'two renewals', timeoutMs: 10_000 });
  await waitFor(
    () =>
      d.lines.filter((l) => l.includes('event stream reopened with the new access token')).length >=
      2,
    { what: 'the stream reopened after each renewal' },
  );
  clearInterval(watch);
  assert.equal(gaps, 0, 'at every moment a stream was open');
  local.setSecret({
    projectId: 'proj-s',
    environment: 'prod',
    path: '/svc',
    key: 'B',
    value: 'b-9-after',
  });
  await waitFor(async () => (await fileOf(d, 'b')) === 'b-9-after', {
    what: 'a change after the renewals to arrive by the stream',
  });
  await waitFor(() => local.events.open === 1, { what: 'the old streams closed' });
});

test('event stream: a permission lost mid-stream (event: error) is shown, and the stream comes back when it is restored', async (t) => {
  const local = await startInfisical(t, SEED, {
    eventStreams: { pingIntervalMs: 100, recheckIntervalMs: 200 },
  });
  const d = await startStreamDaemon(t, local);
  await waitFor(() => streamOf(d)?.state === 'connected', { what: 'the stream connected' });
  local.events.deny('ident-s');
  await waitFor(() => streamOf(d)?.state === 'unavailable', {
    what: 'the stream unavailable after event: error and a 403',
  });
  assert.equal(streamOf(d)?.lastError?.status, 403);
  assert.match(
    await metricsOf(d),
    /^reloader_event_stream_frames_total\{[^}]*kind="error"[^}]*\} 1/m,
  );
  local.events.allow('ident-s');
  await waitFor(() => streamOf(d)?.state === 'connected', {
    what: 'connected again once allowed',
    timeoutMs: 5_000,
  });
});
