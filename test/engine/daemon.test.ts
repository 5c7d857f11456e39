/**
 * The Daemon in-process (no HTTP): event routing, payloadValues refetch vs apply, readiness,
 * and "one request per source per burst".
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSpec } from '../../src/config/load.js';
import { Daemon } from '../../src/engine/daemon.js';
import { silentLogger } from '../../src/logger.js';
import { Metrics } from '../../src/server/metrics.js';
import { oneProjectSeed, startInfisical, tempDir, waitFor } from '../helpers/harness.js';

const SEED = oneProjectSeed({ '/': '{ A: a1 }', '/svc': '{ B: b1 }' });

async function daemon(t: TestContext, payloadValues: 'apply' | 'refetch') {
  const dir = await tempDir(t);
  const local = await startInfisical(t, SEED, { webhookDelayMs: 10 });
  const spec = parseSpec(
    `infisical:
  url: ${local.url}
  auth: { universal: { clientId: cid, clientSecret: csecret-123456 } }
sources:
  - { projectId: p1, environment: prod, path: /, includeImports: false, expandReferences: false }
  - { projectId: p1, environment: prod, path: /svc, includeImports: false, expandReferences: false }
webhook: { allowUnsigned: true, payloadValues: ${payloadValues} }
defaults: { wait: { min: 10ms, max: 100ms } }
targets:
  - name: a
    files: [ { contents: "{{secrets.A}}", destination: out/a } ]
  - name: b
    files: [ { contents: "{{secrets.B}}", destination: out/b } ]
`,
    join(dir, 'reloader.yaml'),
    {},
  );
  const metrics = new Metrics({ defaultMetrics: false });
  const d = new Daemon({ spec, logger: silentLogger(), env: {}, metrics });
  t.after(() => d.stop());
  assert.equal(d.ready, false, 'not ready before the first fetch');
  await d.start();
  await waitFor(() => d.ready, { what: 'ready' });
  const read = (f: string) => readFile(join(dir, 'out', f), 'utf8');
  const lists = () =>
    local.requests.filter((r) => r.route.startsWith('GET /api/v4/secrets')).length;
  return { d, local, read, lists, metrics };
}

test('secrets.modified refetches only the covering source, once per burst, and re-renders only its readers', async (t) => {
  const { d, local, read, lists } = await daemon(t, 'apply');
  assert.equal(await read('a'), 'a1');
  assert.equal(lists(), 2, 'one listing per source at start');
  local.setSecret({ projectId: 'p1', environment: 'prod', path: '/svc', key: 'B', value: 'b2' });
  const ev = {
    kind: 'modified' as const,
    projectId: 'p1',
    environment: 'prod',
    secretPath: '/svc',
  };
  for (let i = 0; i < 10; i++) assert.deepEqual(d.handleEvent(ev), { effect: 'queued' });
  await waitFor(async () => (await read('b')) === 'b2', { what: 'b re-rendered' });
  await d.idle();
  assert.equal(lists(), 3, 'ten events in a burst → one listing of the one covering source');
  const status = d.status() as { targets: Array<{ name: string; lastRenderAt?: string }> };
  const a = status.targets.find((x) => x.name === 'a');
  const b = status.targets.find((x) => x.name === 'b');
  assert.ok(
    a?.lastRenderAt && b?.lastRenderAt && a.lastRenderAt < b.lastRenderAt,
    'a was not re-rendered',
  );
  assert.deepEqual(
    d.handleEvent({ kind: 'modified', projectId: 'other', environment: 'prod', secretPath: '/' }),
    {
      effect: 'ignored',
      reason: 'no configured source covers this change',
    },
  );
});

test('payloadValues apply: the carried value is used without a request; refetch: it triggers a listing instead', async (t) => {
  const applied = await daemon(t, 'apply');
  const before = applied.lists();
  applied.d.handleEvent({ kind: 'value', action: 'updated', key: 'A', value: 'a-carried' });
  await waitFor(async () => (await applied.read('a')) === 'a-carried', {
    what: 'the carried value',
  });
  assert.equal(applied.lists(), before, 'apply makes no request');

  const refetched = await daemon(t, 'refetch');
  const start = refetched.lists();
  refetched.local.setSecret({
    projectId: 'p1',
    environment: 'prod',
    path: '/',
    key: 'A',
    value: 'a-from-infisical',
  });
  refetched.d.handleEvent({
    kind: 'value',
    action: 'updated',
    key: 'A',
    value: 'a-carried-ignored',
    secretPath: '/',
  });
  await waitFor(async () => (await refetched.read('a')) === 'a-from-infisical', {
    what: 'the refetched value',
  });
  assert.equal(refetched.lists(), start + 1, 'refetch mode lists the one matching source');
});

test('an event that names no configured source is ignored with a reason', async (t) => {
  const { d } = await daemon(t, 'apply');
  assert.equal(
    d.handleEvent({
      kind: 'value',
      action: 'updated',
      key: 'A',
      value: 'x',
      environment: 'staging',
    }).effect,
    'ignored',
  );
  assert.equal(d.handleEvent({ kind: 'test' }).effect, 'ignored');
});

test('a failed reload is retried without any event until it succeeds; the files count as in place', async (t) => {
  const dir = await tempDir(t);
  const local = await startInfisical(t, SEED);
  const spec = parseSpec(
    `infisical:
  url: ${local.url}
  auth: { universal: { clientId: cid, clientSecret: csecret-123456 } }
sources: [ { projectId: p1, environment: prod, path: / } ]
webhook: { allowUnsigned: true }
targets:
  - name: a
    files: [ { contents: "{{secrets.A}}", destination: out/a } ]
    reload: { command: [sh, -c, 'test -f app-is-up && echo reloaded >> reloads.log'], timeout: 2s }
`,
    join(dir, 'reloader.yaml'),
    {},
  );
  const d = new Daemon({
    spec,
    logger: silentLogger(),
    env: {},
    metrics: new Metrics({ defaultMetrics: false }),
  });
  t.after(() => d.stop());
  await d.start();
  await waitFor(() => d.ready, { what: 'ready although the first reload failed' });
  const state = () =>
    (d.status() as { targets: Array<{ lastReload?: { status: string }; reloadPending: boolean }> })
      .targets[0];
  await waitFor(() => state()?.lastReload?.status === 'failed', {
    what: 'the first reload to fail',
  });
  assert.equal(state()?.reloadPending, true);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(dir, 'app-is-up'), '');
  await waitFor(() => state()?.lastReload?.status === 'ok', {
    what: 'the retried reload to succeed',
    timeoutMs: 10_000,
  });
  assert.equal(state()?.reloadPending, false);
  assert.equal(
    await readFile(join(dir, 'reloads.log'), 'utf8'),
    'reloaded\n',
    'exactly one successful reload',
  );
});

test('a template that enumerates every secret is re-rendered when a key is added', async (t) => {
  const dir = await tempDir(t);
  const local = await startInfisical(t, SEED);
  const spec = parseSpec(
    `infisical:
  url: ${local.url}
  auth: { universal: { clientId: cid, clientSecret: csecret-123456 } }
sources: [ { projectId: p1, environment: prod, path: / } ]
webhook: { allowUnsigned: true, payloadValues: apply }
defaults: { wait: { min: 10ms, max: 100ms } }
targets:
  - name: all
    files: [ { contents: "{{#each secrets}}{{@key}}={{this}};{{/each}}", destination: out/all } ]
`,
    join(dir, 'reloader.yaml'),
    {},
  );
  const d = new Daemon({
    spec,
    logger: silentLogger(),
    env: {},
    metrics: new Metrics({ defaultMetrics: false }),
  });
  t.after(() => d.stop());
  await d.start();
  await waitFor(() => d.ready, { what: 'ready' });
  assert.equal(await readFile(join(dir, 'out', 'all'), 'utf8'), 'A=a1;');
  d.handleEvent({ kind: 'value', action: 'created', key: 'NEW', value: 'n1' });
  await waitFor(async () => (await readFile(join(dir, 'out', 'all'), 'utf8')) === 'A=a1;NEW=n1;', {
    what: 'the added key in the enumeration',
  });
});
