/**
 * Sources fail alone: with two sources, one answering 403 (an identity without access to that
 * project), the targets that read only the healthy source render and the daemon is ready when
 * they are all it has; a target that may read the failing source writes nothing and shows the
 * source and Infisical's message in `/status` and `/metrics`; only the failing source is
 * retried, with backoff.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSpec } from '../../src/config/load.js';
import type { ReloaderSpec } from '../../src/config/types.js';
import { Daemon } from '../../src/engine/daemon.js';
import { silentLogger } from '../../src/logger.js';
import { Metrics } from '../../src/server/metrics.js';
import { startInfisical, tempDir, waitFor } from '../helpers/harness.js';

const SEED = `
projects:
  - id: p-ok
    name: Healthy
    environments:
      - slug: prod
        name: Production
        folders:
          /: { A: a1 }
  - id: p-denied
    name: Denied
    environments:
      - slug: prod
        name: Production
        folders:
          /: { B: b1 }
identities:
  - id: i1
    name: reloader
    universal: { clientId: cid, clientSecret: csecret-123456, lockout: false }
    projects: [p-ok]
`;

/**
 * The failing source comes first: a later source wins a key, so a source listed after the one a
 * key comes from that has never answered could still override it, and a render reading that key
 * waits for it (see the last test). Listed first, it cannot override `A`.
 */
function specText(url: string, targets: string): string {
  return `infisical:
  url: ${url}
  auth: { universal: { clientId: cid, clientSecret: csecret-123456 } }
sources:
  - { projectId: p-denied, environment: prod, path: /, includeImports: false, expandReferences: false }
  - { projectId: p-ok, environment: prod, path: /, includeImports: false, expandReferences: false }
webhook: { allowUnsigned: true }
defaults: { wait: { min: 10ms, max: 100ms } }
targets:
${targets}`;
}

const ONLY_A = `  - name: only-a
    files: [ { contents: "{{secrets.A}}", destination: out/a } ]
`;
const READS_B = `  - name: reads-b
    files: [ { contents: "{{secrets.B}}", destination: out/b } ]
`;

/** A started daemon on `spec` (metrics without the default collectors), stopped after the test. */
async function startDaemon(
  t: TestContext,
  spec: ReloaderSpec,
  metrics = new Metrics({ defaultMetrics: false }),
) {
  const d = new Daemon({ spec, logger: silentLogger(), env: {}, metrics });
  t.after(() => d.stop());
  await d.start();
  return d;
}

interface TargetStatus {
  name: string;
  renderedOnce: boolean;
  lastError?: { code: string; message: string };
}

test('a 403 on one source: the targets of the healthy source render; the other waits, names the source and Infisical’s message; only it is retried', async (t) => {
  const dir = await tempDir(t);
  const local = await startInfisical(t, SEED);
  const spec = parseSpec(specText(local.url, ONLY_A + READS_B), join(dir, 'reloader.yaml'), {});
  const metrics = new Metrics({ defaultMetrics: false });
  const d = await startDaemon(t, spec, metrics);
  await waitFor(
    async () => (await readFile(join(dir, 'out', 'a'), 'utf8').catch(() => '')) === 'a1',
    {
      what: 'the healthy source’s target on disk',
    },
  );
  const status = () =>
    d.status() as {
      ready: boolean;
      targets: TargetStatus[];
      sources: Array<{
        projectId: string;
        up: boolean;
        lastError?: { status?: number; message: string };
      }>;
    };
  await waitFor(() => status().targets.find((x) => x.name === 'reads-b')?.lastError, {
    what: 'reads-b to report why it waits',
  });
  const s = status();
  const b = s.targets.find((x) => x.name === 'reads-b') as TargetStatus;
  assert.equal(b.lastError?.code, 'RLD_ERR_SOURCE');
  assert.match(b.lastError?.message ?? '', /p-denied\/prod\//);
  assert.match(b.lastError?.message ?? '', /403/);
  assert.match(b.lastError?.message ?? '', /not a member of the specified project/);
  assert.equal(b.renderedOnce, false);
  await assert.rejects(readFile(join(dir, 'out', 'b')), 'nothing written for reads-b');
  assert.equal(s.ready, false, 'not ready: a target has not rendered');
  const denied = s.sources.find((x) => x.projectId === 'p-denied');
  assert.equal(denied?.up, false);
  assert.equal(denied?.lastError?.status, 403);
  assert.equal(s.sources.find((x) => x.projectId === 'p-ok')?.up, true);

  const text = await metrics.text();
  assert.match(text, /^reloader_source_up\{source="p-denied\/prod\/"\} 0$/m);
  assert.match(text, /^reloader_source_up\{source="p-ok\/prod\/"\} 1$/m);
  assert.match(text, /^reloader_target_up\{target="only-a"\} 1$/m);
  assert.match(text, /^reloader_target_up\{target="reads-b"\} 0$/m);

  // Only the failing source is retried (backoff 500 ms doubling): after ~1.6 s, p-ok was
  // listed once, p-denied several times.
  // (the two projects are told apart by the answer: p-ok 200, p-denied 403)
  const lists = (status: number) =>
    local.requests.filter(
      (r) => r.method === 'GET' && r.route.includes('secrets') && r.status === status,
    ).length;
  await waitFor(() => lists(403) >= 3, {
    what: 'the failing source to be retried',
    timeoutMs: 10_000,
  });
  assert.equal(lists(200), 1, 'the healthy source is not fetched again');
});

test('a daemon whose targets all read the healthy source is ready despite a failing one', async (t) => {
  const dir = await tempDir(t);
  const local = await startInfisical(t, SEED);
  const spec = parseSpec(specText(local.url, ONLY_A), join(dir, 'reloader.yaml'), {});
  const d = await startDaemon(t, spec);
  await waitFor(() => d.ready, { what: 'ready with one source failing' });
  assert.equal(await readFile(join(dir, 'out', 'a'), 'utf8'), 'a1');
});

test('a failing source listed after the healthy one may override its keys: the target waits for it and says so', async (t) => {
  const dir = await tempDir(t);
  const local = await startInfisical(t, SEED);
  const reversed = specText(local.url, ONLY_A).replace(
    /( {2}- \{ projectId: p-denied[^\n]*\n)( {2}- \{ projectId: p-ok[^\n]*\n)/,
    '$2$1',
  );
  assert.ok(reversed.indexOf('p-ok') < reversed.indexOf('p-denied'), 'the spec lists p-ok first');
  const spec = parseSpec(reversed, join(dir, 'reloader.yaml'), {});
  const d = await startDaemon(t, spec);
  const onlyA = () =>
    (d.status() as { targets: TargetStatus[] }).targets.find((x) => x.name === 'only-a');
  await waitFor(() => onlyA()?.lastError, { what: 'only-a to report why it waits' });
  assert.equal(onlyA()?.lastError?.code, 'RLD_ERR_SOURCE');
  assert.match(onlyA()?.lastError?.message ?? '', /p-denied\/prod\//);
  assert.equal(d.ready, false);
  await assert.rejects(
    readFile(join(dir, 'out', 'a')),
    'nothing written while a later source may win A',
  );
});
