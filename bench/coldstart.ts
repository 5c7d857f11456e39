/**
 * Bench 6: cold start of `run --once` with 50 templates against the local server, against
 * `node -e 0`, hyperfine-style: N runs of each, interleaved, median wall time (spawn → exit).
 *
 * The fetch is measured alone too: a fresh process (`fetch-once.js`) that loads undici, logs in
 * and lists the folder; its own clock gives the network part (login + listing, cold connection,
 * cold JIT), which is the "plus the fetch" of the target: once ≤ 2 × (node -e 0) + fetch.
 * Every `--once` run starts from an empty output folder (a fresh pod), removed between runs.
 *
 * A second baseline does the whole job by hand (`once-handwritten.js`: node:http login and
 * listing, regex substitution, durable writes, Node built-ins only) from its own empty folder:
 * the ratio to it is what the reloader's start-up (spec, validation, Handlebars, locks, logs)
 * costs over the least a careful tool must do.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startLocalInfisical } from '../src/dev/local-infisical.js';
import {
  CLIENT_ID,
  CLIENT_SECRET,
  ENV,
  PROJECT,
  benchMain,
  distBench,
  figure,
  log,
  mainJs,
  median,
  now,
  randomValue,
  seed,
  specHeader,
  tempDir,
} from './lib.js';
import { timeRun } from './procs.js';

const RUNS = Number(process.env['BENCH_COLD_RUNS'] ?? 10);
const TEMPLATES = 50;
const SECRETS = 500;
const KEYS = 10;

benchMain(async () => {
  const started = now();
  const tmp = await tempDir();
  const secrets: Record<string, string> = {};
  for (let i = 0; i < SECRETS; i += 1) secrets[`K${i}`] = randomValue(32);
  const local = await startLocalInfisical({ seed: seed(secrets), webhookDelayMs: 0 });
  await mkdir(join(tmp.dir, 'tpl'));
  const targets: string[] = [];
  for (let t = 0; t < TEMPLATES; t += 1) {
    const body = Array.from(
      { length: KEYS },
      (_, j) => `K${(t * 7 + j) % SECRETS}={{secrets.K${(t * 7 + j) % SECRETS}}}\n`,
    ).join('');
    await writeFile(join(tmp.dir, 'tpl', `o${t}.hbs`), body);
    targets.push(
      `  - name: o${t}\n    files:\n      - template: tpl/o${t}.hbs\n        destination: out/o${t}.conf\n`,
    );
  }
  const specFile = join(tmp.dir, 'reloader.yaml');
  await writeFile(specFile, specHeader(local.url, '{ min: 0ms, max: 0ms }') + targets.join(''));

  const runs = {
    node: [] as number[],
    once: [] as number[],
    fetch: [] as number[],
    fetchWall: [] as number[],
    fetchImport: [] as number[],
    hand: [] as number[],
  };
  log(`${RUNS} runs each of node -e 0, fetch-once, run --once (interleaved)`);
  for (let i = 0; i < RUNS + 1; i += 1) {
    const warm = i === 0; // the first round warms the page cache and is dropped
    const n = await timeRun(['-e', '0']);
    const f = await timeRun([
      join(distBench, 'fetch-once.js'),
      local.url,
      CLIENT_ID,
      CLIENT_SECRET,
      PROJECT,
      ENV,
    ]);
    if (f.code !== 0) throw new Error(`fetch-once failed: ${f.stderr.slice(0, 500)}`);
    const timing = JSON.parse(f.stdout) as { importMs: number; fetchMs: number };
    await rm(join(tmp.dir, 'out'), { recursive: true, force: true });
    const o = await timeRun([mainJs, 'run', '--once', '--config', specFile]);
    if (o.code !== 0) throw new Error(`run --once exited ${o.code}: ${o.stderr.slice(-1000)}`);
    await rm(join(tmp.dir, 'hand-out'), { recursive: true, force: true });
    const h = await timeRun([
      join(distBench, 'once-handwritten.js'),
      local.url,
      CLIENT_ID,
      CLIENT_SECRET,
      PROJECT,
      ENV,
      join(tmp.dir, 'tpl'),
      join(tmp.dir, 'hand-out'),
      String(TEMPLATES),
    ]);
    if (h.code !== 0) throw new Error(`once-handwritten exited ${h.code}: ${h.stderr.slice(-500)}`);
    if (warm) continue;
    runs.node.push(n.ms);
    runs.fetch.push(timing.fetchMs);
    runs.fetchImport.push(timing.importMs);
    runs.fetchWall.push(f.ms);
    runs.once.push(o.ms);
    runs.hand.push(h.ms);
  }
  for (let t = 0; t < TEMPLATES; t += 1) {
    const [a, b] = await Promise.all([
      readFile(join(tmp.dir, 'out', `o${t}.conf`), 'utf8'),
      readFile(join(tmp.dir, 'hand-out', `o${t}.conf`), 'utf8'),
    ]);
    if (a !== b) throw new Error(`o${t}: the reloader and the hand-written run disagree`);
  }
  await local.close();
  await tmp.remove();
  const node = median(runs.node);
  const once = median(runs.once);
  const fetch = median(runs.fetch);
  const budget = 2 * node + fetch;
  return {
    id: 6,
    title: `Cold start of run --once, ${TEMPLATES} templates`,
    durationMs: now() - started,
    figures: [
      figure('run --once, median wall', once, 'ms', {
        baseline: { name: 'node -e 0', value: node },
        target: '≤ 2 × node -e 0 + fetch',
        met: once <= budget,
      }),
      figure('budget: 2 × node -e 0 + fetch', budget, 'ms'),
      figure('run --once against the hand-written --once', once, 'ms', {
        baseline: {
          name: 'node:http login + listing, regex render, durable writes',
          value: median(runs.hand),
        },
      }),
      figure('fetch alone (login + listing, fresh process)', fetch, 'ms'),
      figure('fetch-only process, wall (node + undici + fetch)', median(runs.fetchWall), 'ms', {
        baseline: { name: 'node -e 0', value: node },
      }),
      figure('undici import in that process', median(runs.fetchImport), 'ms'),
    ],
    notes: [
      `${RUNS} measured runs of each after one dropped warm-up round; ${SECRETS} secrets in the folder, each template reads ${KEYS}; outputs removed before every --once run`,
      'the hand-written run writes the same 50 files byte for byte (checked)',
    ],
  };
});
