/**
 * Bench 4: scale — 10,000 secrets and 500 templates (see scale-fixture.ts for the layout).
 *
 * (a) First full render: the real daemon in-process from `start()` to ready (every target
 *     rendered and committed). Reported whole, and split at the "secrets fetched" log line:
 *     before it = spec compile + login + listing of 10,000 secrets; after it = rendering and
 *     committing 500 targets, compared with a hand-written loop that renders the same 500 files
 *     by string concatenation and writes them durably, all in parallel like the daemon.
 * (b) One key changed (a signed value event): how many targets re-rendered (from the daemon's
 *     `reloader_renders_total`, per target, before/after) against the targets that read the key,
 *     and the time from sending the event to the last dependent file read back with its new
 *     bytes, and to the end of the last dependent render (from the daemon's log lines).
 *     Baseline for the file: the hand-written server of bench 1 holding a precomputed key → templates
 *     index, rendering and writing the same dependents. Repeated for keys read by 2, 1 and 0
 *     templates.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startLocalInfisical } from '../src/dev/local-infisical.js';
import {
  DirWatcher,
  benchMain,
  figure,
  log,
  now,
  randomValue,
  renderCounts,
  seed,
  sender,
  signed,
  startBaseline,
  startDaemon,
  summarize,
  tempDir,
  valueEvent,
  writeDurably,
  type InProcessDaemon,
} from './lib.js';
import {
  SECRETS,
  TEMPLATES,
  dependentsOf,
  keyName,
  renderExpected,
  scaleSecrets,
  targetName,
  writeScaleFixture,
} from './scale-fixture.js';

const REPS_TWO = 20;
const REPS_ONE = 5;
const REPS_NONE = 5;

benchMain(async () => {
  const started = now();
  const tmp = await tempDir();
  const secrets = scaleSecrets();
  log(`seeding the local server with ${SECRETS} secrets`);
  const local = await startLocalInfisical({
    seed: seed(secrets),
    webhookDelayMs: 0,
  });
  const fixture = await writeScaleFixture(tmp.dir, local.url);

  // (a) first full render
  log(`starting the daemon with ${TEMPLATES} targets`);
  const t0 = now();
  const daemon: InProcessDaemon = await startDaemon(fixture.specYaml, fixture.specFile, {
    watchedMessages: ['secrets fetched', 'files committed'],
  });
  const readyAt = now();
  const fetchedAt = daemon.marks.get('secrets fetched') ?? Number.NaN;
  for (let t = 0; t < TEMPLATES; t += 1) {
    const text = await readFile(join(fixture.outDir, `${targetName(t)}.conf`), 'utf8');
    if (text !== renderExpected(t, secrets)) throw new Error(`${targetName(t)}: wrong output`);
  }

  log('baseline: hand-written render + durable write of the same 500 files');
  const baseOut = join(tmp.dir, 'base-out');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(baseOut);
  const b0 = now();
  await Promise.all(
    Array.from({ length: TEMPLATES }, (_, t) =>
      writeDurably(join(baseOut, `${targetName(t)}.conf`), renderExpected(t, secrets)),
    ),
  );
  const baselineFull = now() - b0;

  // (b) one key changed
  const baseSecrets = new Map(secrets);
  const baseline = await startBaseline((event) => {
    const p = event['payload'] as { secretKey: string; secretValue: string };
    baseSecrets.set(p.secretKey, p.secretValue);
    const k = Number(p.secretKey.slice(1));
    return dependentsOf(k).map((t) => ({
      dest: join(baseOut, `${targetName(t)}.conf`),
      contents: renderExpected(t, baseSecrets),
    }));
  });
  const sides = {
    daemon: {
      watcher: new DirWatcher(fixture.outDir),
      client: sender(daemon.origin),
      path: daemon.path,
      values: secrets,
    },
    baseline: {
      watcher: new DirWatcher(baseOut),
      client: sender(baseline.origin),
      path: baseline.path,
      values: baseSecrets,
    },
  };

  /** Change key `k` on one side; returns ms to the last dependent file, and (daemon) re-renders. */
  async function change(side: typeof sides.daemon, k: number, count: boolean) {
    const value = randomValue(32);
    const name = keyName(k);
    const next: ReadonlyMap<string, string> = {
      get: (key: string) => (key === name ? value : side.values.get(key)),
    } as ReadonlyMap<string, string>;
    const deps = dependentsOf(k);
    const seen = deps.map((t) =>
      side.watcher.expect(`${targetName(t)}.conf`, renderExpected(t, next)),
    );
    const before = count ? await renderCounts(daemon.metrics) : undefined;
    const delivery = signed(valueEvent(keyName(k), value));
    daemon.lines.length = 0;
    const start = now();
    const status = await side.client.send(side.path, delivery);
    if (status !== 200) throw new Error(`webhook answered ${status}`);
    const times = await Promise.all(seen);
    const ms = times.length ? Math.max(...times) - start : Number.NaN;
    if (side === sides.daemon) secrets.set(keyName(k), value);
    let rerendered: string[] = [];
    let renderedMs = Number.NaN;
    if (before) {
      await daemon.daemon.idle();
      const after = await renderCounts(daemon.metrics);
      rerendered = [...after].filter(([t, n]) => n !== (before.get(t) ?? 0)).map(([t]) => t);
      // Each pass logs "files committed" right after its commit, with how long the commit took:
      // its render ended `commitMs` before the line. The last such end, from the send.
      const ends = daemon.lines
        .filter((l) => l.msg === 'files committed')
        .map((l) => l.at - Number(l.fields['commitMs']));
      if (ends.length === deps.length && ends.length > 0) renderedMs = Math.max(...ends) - start;
    }
    return { ms, renderedMs, rerendered, expected: deps.map(targetName) };
  }

  const pick = (i: number) => (i * 37 + 11) % (TEMPLATES - 1);
  const results = {
    twoRendered: [] as number[],
    oneRendered: [] as number[],
    two: [] as number[],
    twoBase: [] as number[],
    one: [] as number[],
    oneBase: [] as number[],
  };
  const wrong: string[] = [];
  const counts = { two: [] as number[], one: [] as number[], none: [] as number[] };
  log(
    `changing keys read by 2 templates (${REPS_TWO}×), by 1 (${REPS_ONE}×), by none (${REPS_NONE}×)`,
  );
  for (let i = 0; i < REPS_TWO + REPS_ONE + REPS_NONE; i += 1) {
    const kind = i < REPS_TWO ? 'two' : i < REPS_TWO + REPS_ONE ? 'one' : 'none';
    const t = pick(i);
    const k = kind === 'two' ? t * 16 + 17 : kind === 'one' ? t * 16 + 8 : SECRETS - 1 - i;
    const d = await change(sides.daemon, k, true);
    const b = await change(sides.baseline, k, false);
    counts[kind].push(d.rerendered.length);
    if (d.rerendered.sort().join() !== d.expected.sort().join()) {
      wrong.push(`${keyName(k)}: re-rendered [${d.rerendered}] expected [${d.expected}]`);
    }
    if (kind === 'two') {
      results.twoRendered.push(d.renderedMs);
      results.two.push(d.ms);
      results.twoBase.push(b.ms);
    } else if (kind === 'one') {
      results.oneRendered.push(d.renderedMs);
      results.one.push(d.ms);
      results.oneBase.push(b.ms);
    }
  }
  const twoRendered = summarize(results.twoRendered);
  const oneRendered = summarize(results.oneRendered);
  const two = summarize(results.two);
  const twoBase = summarize(results.twoBase);
  const one = summarize(results.one);
  const oneBase = summarize(results.oneBase);

  for (const side of Object.values(sides)) {
    side.watcher.close();
    await side.client.close();
  }
  await daemon.close();
  await baseline.close();
  await local.close();
  await tmp.remove();

  const onlyDependents = wrong.length === 0;
  return {
    id: 4,
    title: `Scale: ${SECRETS} secrets, ${TEMPLATES} templates of 20 keys`,
    durationMs: now() - started,
    figures: [
      figure('first full render: start → ready', readyAt - t0, 'ms'),
      figure(
        '  of which render + commit of 500 targets (after the fetch)',
        readyAt - fetchedAt,
        'ms',
        {
          baseline: {
            name: 'hand-written render + durable write of 500 files',
            value: baselineFull,
          },
        },
      ),
      figure('  of which compile + login + fetch of 10,000 secrets', fetchedAt - t0, 'ms'),
      figure('re-rendered for a key read by 2 templates', Math.max(...counts.two), 'targets', {
        baseline: { name: 'templates reading the key', value: 2 },
        target: 'only the dependents re-render',
        met: onlyDependents,
      }),
      figure('re-rendered for a key read by 1 template', Math.max(...counts.one), 'targets', {
        baseline: { name: 'templates reading the key', value: 1 },
      }),
      figure('re-rendered for a key read by none', Math.max(...counts.none), 'targets', {
        baseline: { name: 'templates reading the key', value: 0 },
      }),
      figure('key read by 2 → both dependents re-rendered, p50', twoRendered.p50, 'ms', {
        target: '< 5 ms',
        met: twoRendered.p50 < 5,
      }),
      figure('key read by 2 → both dependents re-rendered, max', twoRendered.max, 'ms'),
      figure('key read by 1 → its dependent re-rendered, p50', oneRendered.p50, 'ms'),
      figure('key read by 2 → last file on disk (durable), p50', two.p50, 'ms', {
        baseline: { name: 'hand-written, same 2 files', value: twoBase.p50 },
      }),
      figure('key read by 2 → last file, max', two.max, 'ms', {
        baseline: { name: 'hand-written, same 2 files', value: twoBase.max },
      }),
      figure('key read by 1 → file, p50', one.p50, 'ms', {
        baseline: { name: 'hand-written, same file', value: oneBase.p50 },
      }),
    ],
    notes: [
      `${REPS_TWO} keys read by 2 templates, ${REPS_ONE} by 1, ${REPS_NONE} by none; every output checked byte for byte`,
      're-rendered = from sending the signed event to the end of the last dependent render (its "files committed" log line less the commitMs it reports); last file = to the new bytes read back',
      ...(wrong.length ? [`WRONG re-render sets: ${wrong.slice(0, 3).join('; ')}`] : []),
    ],
  };
});
