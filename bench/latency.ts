/**
 * Bench 1: value event → file on disk, p50/p99 over 1000 events.
 *
 * Reloader: the real daemon in this process (parseSpec → Daemon + buildServer → listen on
 * 127.0.0.1:0), `payloadValues: apply`, `wait: {min: 0ms, max: 0ms}`, one target with one file,
 * no reload; the local Infisical-compatible server serves the first fetch only.
 * Baseline: a raw node:http server that verifies the HMAC, parses the JSON and replaces the same
 * kind of file with temp + write + fsync + rename + fsync(dir), in the same process.
 * Both are driven by the same undici client and observed by the same inotify watcher + read; the
 * latency is from just before the request is sent to the moment the new bytes are read back.
 * Blocks of 100 events alternate between the two so that drift (other load) hits both equally.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startLocalInfisical } from '../src/dev/local-infisical.js';
import {
  DirWatcher,
  alternate,
  benchMain,
  figure,
  now,
  randomValue,
  seed,
  sender,
  signed,
  specHeader,
  startBaseline,
  startDaemon,
  summarize,
  tempDir,
  valueEvent,
  writeDurably,
  type Sender,
} from './lib.js';

const EVENTS = Number(process.env['BENCH_EVENTS'] ?? 1000);
const WARMUP = 100;
const BLOCK = 100;

benchMain(async () => {
  const started = now();
  const tmp = await tempDir();
  const local = await startLocalInfisical({
    seed: seed({ K: randomValue(), OTHER: randomValue() }),
    webhookDelayMs: 0,
  });
  await mkdir(join(tmp.dir, 'daemon'));
  await mkdir(join(tmp.dir, 'baseline'));
  const specYaml =
    specHeader(local.url, '{ min: 0ms, max: 0ms }') +
    `  - name: k
    files:
      - contents: "{{secrets.K}}\\n"
        destination: daemon/k.txt
`;
  const daemon = await startDaemon(specYaml, join(tmp.dir, 'reloader.yaml'));
  const baselineFile = join(tmp.dir, 'baseline', 'k.txt');
  await writeDurably(baselineFile, 'initial\n');
  const baseline = await startBaseline((event) => {
    const payload = event['payload'] as { secretKey: string; secretValue: string };
    return payload.secretKey === 'K'
      ? [{ dest: baselineFile, contents: `${payload.secretValue}\n` }]
      : [];
  });
  const sides = {
    daemon: {
      watcher: new DirWatcher(join(tmp.dir, 'daemon')),
      client: sender(daemon.origin),
      path: daemon.path,
      samples: [] as number[],
    },
    baseline: {
      watcher: new DirWatcher(join(tmp.dir, 'baseline')),
      client: sender(baseline.origin),
      path: baseline.path,
      samples: [] as number[],
    },
  };

  async function one(side: { watcher: DirWatcher; client: Sender; path: string }): Promise<number> {
    const value = randomValue();
    const delivery = signed(valueEvent('K', value));
    const seen = side.watcher.expect('k.txt', `${value}\n`);
    const t0 = now();
    const status = await side.client.send(side.path, delivery);
    if (status !== 200) throw new Error(`webhook answered ${status}`);
    return (await seen) - t0;
  }

  await alternate(
    { run: () => one(sides.daemon), samples: sides.daemon.samples },
    { run: () => one(sides.baseline), samples: sides.baseline.samples },
    { warmup: WARMUP, count: EVENTS, block: BLOCK, what: 'events' },
  );

  const d = summarize(sides.daemon.samples);
  const b = summarize(sides.baseline.samples);
  for (const side of Object.values(sides)) {
    side.watcher.close();
    await side.client.close();
  }
  await daemon.close();
  await baseline.close();
  await local.close();
  await tmp.remove();

  return {
    id: 1,
    title: 'Value event → file on disk',
    durationMs: now() - started,
    figures: [
      figure('p50 latency', d.p50, 'ms', {
        baseline: { name: 'hand-written http+hmac+fsync+rename', value: b.p50 },
        target: 'ratio ≤ 1.5',
        met: d.p50 / b.p50 <= 1.5,
      }),
      figure('p99 latency', d.p99, 'ms', {
        baseline: { name: 'hand-written http+hmac+fsync+rename', value: b.p99 },
        target: 'ratio ≤ 1.5 and p99 < 20 ms',
        met: d.p99 / b.p99 <= 1.5 && d.p99 < 20,
      }),
      figure('mean latency', d.mean, 'ms', {
        baseline: { name: 'hand-written', value: b.mean },
      }),
      figure('max latency', d.max, 'ms', { baseline: { name: 'hand-written', value: b.max } }),
    ],
    notes: [
      `${d.n} events each after ${WARMUP} warm-up events; daemon: wait 0ms/0ms, payloadValues apply, info logs to a null sink`,
      'latency = request sent → new bytes read back (inotify event + read), same client and watcher for both',
    ],
  };
});
