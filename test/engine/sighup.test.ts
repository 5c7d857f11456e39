/**
 * SIGHUP with a spec whose session cannot be opened (an unreadable caFile, or a session factory
 * that fails): one coded log line, the old spec and its session keep working, no unhandled
 * rejection, nothing half-swapped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadSpec } from '../../src/config/load.js';
import { Daemon } from '../../src/engine/daemon.js';
import { openSession, type SessionFactory } from '../../src/infisical/session.js';
import { createLogger } from '../../src/logger.js';
import { Metrics } from '../../src/server/metrics.js';
import { oneProjectSeed, startInfisical, tempDir, waitFor } from '../helpers/harness.js';

const SEED = oneProjectSeed({ '/': '{ A: a1 }' });

test('SIGHUP: a bad caFile, or a session that fails to open, keeps the old spec working', async (t) => {
  const dir = await tempDir(t);
  const local = await startInfisical(t, SEED);
  const file = join(dir, 'reloader.yaml');
  const text = (extra: string, target = 'a') => `infisical:
  url: ${local.url}
  auth: { universal: { clientId: cid, clientSecret: csecret-123456 } }
${extra}sources: [ { projectId: p1, environment: prod, path: / } ]
webhook: { allowUnsigned: true }
defaults: { wait: { min: 10ms, max: 100ms } }
targets:
  - name: ${target}
    files: [ { contents: "{{secrets.A}}", destination: out/${target} } ]
`;
  await writeFile(file, text(''));
  const lines: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (l: string) => void lines.push(l) },
  });
  let failNext = false;
  const factory: SessionFactory = async (spec, deps) => {
    if (failNext) throw Object.assign(new Error('the session factory broke'), { code: 'EBROKEN' });
    return openSession(spec, deps);
  };
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.off('unhandledRejection', onUnhandled));
  const d = new Daemon({
    spec: await loadSpec(file, {}),
    logger,
    env: {},
    metrics: new Metrics({ defaultMetrics: false }),
    reloadSpec: () => loadSpec(file, {}),
    sessionFactory: factory,
  });
  t.after(() => d.stop());
  await d.start();
  await waitFor(() => d.ready, { what: 'ready' });

  // (1) a caFile that does not exist, in a spec that also renames the target
  await writeFile(file, text(`  caFile: ${join(dir, 'missing-ca.pem')}\n`, 'renamed'));
  assert.equal(await d.reload(), false, 'refused');
  const refused = lines.filter((l) => l.includes('SIGHUP: new spec is invalid'));
  assert.equal(refused.length, 1, 'one log line');
  assert.match(refused[0] ?? '', /"code":"RLD_ERR_INFISICAL_NETWORK"/);
  assert.match(refused[0] ?? '', /missing-ca\.pem \(ENOENT\)/);
  // (2) a session factory that fails
  await writeFile(file, text('', 'renamed'));
  failNext = true;
  assert.equal(await d.reload(), false, 'refused again');
  failNext = false;
  // nothing was swapped: the old target is the one served, and the old session still fetches
  const status = d.status() as { targets: Array<{ name: string }> };
  assert.deepEqual(
    status.targets.map((x) => x.name),
    ['a'],
  );
  local.setSecret({ projectId: 'p1', environment: 'prod', path: '/', key: 'A', value: 'a2' });
  d.handleEvent({ kind: 'modified', projectId: 'p1', environment: 'prod', secretPath: '/' });
  await waitFor(async () => (await readFile(join(dir, 'out', 'a'), 'utf8')) === 'a2', {
    what: 'the old spec to keep working after the refused SIGHUPs',
  });
  // (3) and a good SIGHUP still works afterwards
  assert.equal(await d.reload(), true);
  await waitFor(
    async () => (await readFile(join(dir, 'out', 'renamed'), 'utf8').catch(() => '')) === 'a2',
    {
      what: 'the new spec applied',
    },
  );
  assert.deepEqual(unhandled, [], 'no unhandled rejection');
});
