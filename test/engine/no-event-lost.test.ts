/**
 * No event lost at start-up: a value event answered while the first pass's reload is still
 * running (readiness already 200), and one during a SIGHUP reload, both reach the files.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadSpec } from '../../src/config/load.js';
import { Daemon } from '../../src/engine/daemon.js';
import { silentLogger } from '../../src/logger.js';
import { Metrics } from '../../src/server/metrics.js';
import { oneProjectSeed, startInfisical, tempDir, waitFor } from '../helpers/harness.js';

const SEED = oneProjectSeed({ '/': '{ A: a1 }' });

async function slowReloadDaemon(t: TestContext) {
  const dir = await tempDir(t);
  const local = await startInfisical(t, SEED);
  const file = join(dir, 'reloader.yaml');
  const text = (extra: string) => `infisical:
  url: ${local.url}
  auth: { universal: { clientId: cid, clientSecret: csecret-123456 } }
sources: [ { projectId: p1, environment: prod, path: / } ]
webhook: { allowUnsigned: true, payloadValues: apply }
defaults: { wait: { min: 10ms, max: 100ms } }
targets:
  - name: a
    files: [ { contents: "{{secrets.A}}", destination: out/a } ]
    reload: { command: [sh, -c, 'echo start >> reloads.log; sleep 1; echo end >> reloads.log'], timeout: 5s }
${extra}`;
  await writeFile(file, text(''));
  const spec = await loadSpec(file, {});
  const d = new Daemon({
    spec,
    logger: silentLogger(),
    env: { PATH: process.env['PATH'] },
    metrics: new Metrics({ defaultMetrics: false }),
    reloadSpec: () => loadSpec(file, {}),
  });
  t.after(() => d.stop());
  const read = () => readFile(join(dir, 'out', 'a'), 'utf8').catch(() => '');
  const reloads = async () =>
    (await readFile(join(dir, 'reloads.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { d, dir, file, text, read, reloads, local };
}

test('a value event accepted while the first reload is still running reaches the file', async (t) => {
  const { d, read, reloads } = await slowReloadDaemon(t);
  await d.start();
  await waitFor(() => d.ready, { what: 'ready (files in place)' });
  await waitFor(async () => (await reloads()).includes('start'), {
    what: 'the first reload to be running',
  });
  assert.ok(!(await reloads()).includes('end'), 'the first reload is still running');
  assert.deepEqual(
    d.handleEvent({ kind: 'value', action: 'updated', key: 'A', value: 'a2-during-reload' }),
    {
      effect: 'queued',
    },
  );
  await waitFor(async () => (await read()) === 'a2-during-reload', {
    what: 'the event sent during the first reload on disk',
    timeoutMs: 10_000,
  });
});

test('a value event accepted during a SIGHUP reload reaches the file', async (t) => {
  const { d, file, text, read, local } = await slowReloadDaemon(t);
  await d.start();
  await waitFor(() => d.ready, { what: 'ready' });
  await d.idle();
  // SIGHUP adds a target: the reload waits for passes, swaps, and refetches everything.
  await writeFile(
    file,
    text(`  - name: b
    files: [ { contents: "b={{secrets.A}}", destination: out/b } ]
`),
  );
  const reloading = d.reload();
  // The change is in Infisical (as it would be) and its event arrives mid-swap.
  local.setSecret({
    projectId: 'p1',
    environment: 'prod',
    path: '/',
    key: 'A',
    value: 'a3-during-sighup',
  });
  d.handleEvent({ kind: 'modified', projectId: 'p1', environment: 'prod', secretPath: '/' });
  d.handleEvent({ kind: 'value', action: 'updated', key: 'A', value: 'a3-during-sighup' });
  assert.equal(await reloading, true, 'the new spec is applied');
  await waitFor(async () => (await read()) === 'a3-during-sighup', {
    what: 'the event sent during SIGHUP on disk',
    timeoutMs: 10_000,
  });
});
