/**
 * `npm run bench`: runs every bench in its own node process (so one bench's heap, scrubber and
 * timers never weigh on the next), prints each figure next to its same-run baseline, and writes
 * bench/results.json with the machine the figures came from.
 *
 * `node dist/bench/run.js 1 4` runs only benches 1 and 4 and writes bench/results-partial.json,
 * so the full run's results.json (the README's table) is never replaced by a subset.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  RESULT_PREFIX,
  distBench,
  formatFigure,
  machineInfo,
  now,
  repoRoot,
  type BenchResult,
} from './lib.js';

const BENCHES: Array<{ id: number; file: string }> = [
  { id: 1, file: 'latency.js' },
  { id: 2, file: 'modified.js' },
  { id: 3, file: 'burst.js' },
  { id: 4, file: 'scale.js' },
  { id: 5, file: 'memory.js' },
  { id: 6, file: 'coldstart.js' },
  { id: 7, file: 'fleet.js' },
  { id: 8, file: 'stream.js' },
  { id: 9, file: 'injector-mutate.js' },
];

/** Hard limit per bench process; each is designed to finish well inside it. */
const BENCH_TIMEOUT_MS = 170_000;

function runOne(file: string): Promise<BenchResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(distBench, file)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), BENCH_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (code !== 0 || line === undefined) {
        reject(new Error(`${file} failed (exit ${code ?? signal})`));
        return;
      }
      resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as BenchResult);
    });
  });
}

/** Prettier's JSON layout (the repo's `lint` checks every file with prettier), else 2-space JSON. */
async function formatJson(json: string): Promise<string> {
  try {
    const prettier = await import('prettier');
    return await prettier.format(json, { parser: 'json', printWidth: 100 });
  } catch {
    return `${JSON.stringify(JSON.parse(json), null, 2)}\n`;
  }
}

async function main(): Promise<number> {
  const only = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => Number.isInteger(n));
  const selected = only.length ? BENCHES.filter((b) => only.includes(b.id)) : BENCHES;
  const machine = machineInfo();
  process.stderr.write(
    `infisical-reloader benchmarks — ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, load ${machine.loadavg1}\n`,
  );
  const started = now();
  const results: BenchResult[] = [];
  const failures: string[] = [];
  for (const bench of selected) {
    try {
      results.push(await runOne(bench.file));
    } catch (err) {
      failures.push((err as Error).message);
      process.stderr.write(`!! ${(err as Error).message}\n`);
    }
  }
  const totalMs = now() - started;
  const file = join(repoRoot, 'bench', only.length ? 'results-partial.json' : 'results.json');
  const json = JSON.stringify({
    machine: { ...machine, loadavg1AtEnd: machineInfo().loadavg1 },
    totalMs: Math.round(totalMs),
    results,
    failures,
  });
  await writeFile(file, await formatJson(json));

  process.stderr.write(`\n== Summary (${(totalMs / 1000).toFixed(0)} s) → ${file}\n`);
  for (const r of results) {
    process.stderr.write(`${r.id}. ${r.title}\n`);
    for (const f of r.figures) process.stderr.write(`   ${formatFigure(f)}\n`);
  }
  const missed = results.flatMap((r) =>
    r.figures.filter((f) => f.met === false).map((f) => `${r.id}. ${f.name}`),
  );
  if (missed.length) process.stderr.write(`targets missed: ${missed.join('; ')}\n`);
  for (const f of failures) process.stderr.write(`FAILED: ${f}\n`);
  return failures.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${String(err)}\n`);
    process.exit(1);
  },
);
