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
  const metrics = new Metrics({ defaultMetrics: false });
  const d = new Daemon({
    spec,
    logger: silentLogger(),
    env: { PATH: process.env['PATH'] },
    metrics,
    reloadSpec: () => loadSpec(file, {}),
  });
  t.after(() => d.stop());
  const read = () => readFile(join(dir, 'out', 'a'), 'utf8').catch(() => '');
  const reloads = async () =>
    (await readFile(join(dir, 'reloads.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { d, dir, file, text, read, reloads, local, metrics };
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
  await d.stop(); // the new target's first reload may still be running: done before cleanup
});

test('event-to-file stops when the files are on disk; event-to-reload includes the 1 s reload', async (t) => {
  const { d, read, reloads, metrics } = await slowReloadDaemon(t);
  const series = async (name: string) => {
    const text = await metrics.text();
    const value = (part: string) =>
      Number(new RegExp(`^${name}_${part}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return { sum: value('sum'), count: value('count') };
  };
  await d.start();
  await waitFor(async () => (await reloads()).includes('end'), { what: 'the first reload done' });
  await d.idle();
  const fileBefore = await series('reloader_event_to_file_seconds');
  const reloadBefore = await series('reloader_event_to_reload_seconds');
  d.handleEvent({ kind: 'value', action: 'updated', key: 'A', value: 'a4-timed' });
  await waitFor(async () => (await read()) === 'a4-timed', { what: 'the event on disk' });
  await waitFor(async () => (await reloads()).filter((l) => l === 'end').length === 2, {
    what: 'the second reload done',
    timeoutMs: 10_000,
  });
  await d.idle();
  const file = await series('reloader_event_to_file_seconds');
  const reload = await series('reloader_event_to_reload_seconds');
  assert.equal(file.count - fileBefore.count, 1);
  assert.equal(reload.count - reloadBefore.count, 1);
  const fileS = file.sum - fileBefore.sum;
  const reloadS = reload.sum - reloadBefore.sum;
  assert.ok(fileS < 0.5, `event → file ${fileS} s: the 1 s reload is not in it`);
  assert.ok(reloadS >= 1, `event → reload ${reloadS} s: the reload is in it`);
});
