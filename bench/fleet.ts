/**
 * Bench 7: value event → file on the **last** of three replicas (peer relay), p50/p99, next to
 * one replica in the same run.
 *
 * Fleet: three daemons, each its own process (`infisical-reloader run`, as three pods), on
 * 127.0.0.2, 127.0.0.3 and 127.0.0.4 with one webhook port (a headless Service), the peers given
 * as addresses; each event is delivered to
 * the first replica, which answers and relays the same signed body to the other two. The latency
 * runs from just before the request is sent to the moment the new bytes are read back from the
 * slowest of the three files.
 * Baseline: one replica process (no peers) on 127.0.0.1 with the same spec otherwise, driven by the same
 * kind of client and observed by the same kind of watcher. Blocks of 50 events alternate between
 * the two so that drift hits both equally.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startLocalInfisical } from '../src/dev/local-infisical.js';
import { portFreeOnAll } from '../test/helpers/ports.js';
import { spawnNode } from './procs.js';
import {
  DirWatcher,
  TARGET_K,
  alternate,
  benchMain,
  specHeader,
  mainJs,
  sleep,
  figure,
  now,
  randomValue,
  seed,
  sender,
  signed,
  summarize,
  tempDir,
  valueEvent,
  type Sender,
} from './lib.js';

const EVENTS = Number(process.env['BENCH_FLEET_EVENTS'] ?? 500);
const WARMUP = 50;
const BLOCK = 50;
const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'] as const;

function replicaSpec(url: string, listen: string, peers: readonly string[]): string {
  const webhookExtra =
    peers.length === 0 ? '' : `  peers:\n    addresses: [${peers.join(', ')}]\n    timeout: 1s\n`;
  return specHeader(url, '{ min: 0ms, max: 0ms }', 'apply', { listen, webhookExtra }) + TARGET_K;
}

benchMain(async () => {
  const started = now();
  // The replicas' files on tmpfs, as in the examples (an emptyDir with medium: Memory): three
  // replicas on one machine would otherwise queue their fsyncs on one disk, which pods on their
  // own nodes do not. Both sides use it.
  const tmp = await tempDir('rld-bench-', existsSync('/dev/shm') ? '/dev/shm' : undefined);
  const local = await startLocalInfisical({ seed: seed({ K: randomValue() }), webhookDelayMs: 0 });
  const port = await portFreeOnAll(HOSTS);
  const start = async (name: string, listen: string, peers: readonly string[]) => {
    const dir = join(tmp.dir, name);
    await mkdir(join(dir, 'out'), { recursive: true });
    const specFile = join(dir, 'reloader.yaml');
    await writeFile(specFile, replicaSpec(local.url, listen, peers));
    const proc = spawnNode([mainJs, 'run', '--config', specFile, '--log-level', 'info']);
    const deadline = now() + 30_000;
    while (!proc.stderr().includes('ready to serve')) {
      if (proc.child.exitCode !== null || now() > deadline) {
        throw new Error(`replica ${name} did not start: ${proc.stderr().slice(-800)}`);
      }
      await sleep(20);
    }
    const url = /"url":"(http:\/\/[\d.]+:\d+)"/.exec(proc.stderr())?.[1];
    if (url === undefined) throw new Error(`replica ${name}: no URL in its log`);
    return { proc, url, watcher: new DirWatcher(join(dir, 'out')) };
  };
  const fleet = await Promise.all(HOSTS.map((h, i) => start(`r${i}`, `${h}:${port}`, HOSTS)));
  const single = await start('single', '127.0.0.1:0', []);
  const first = fleet[0] as Awaited<ReturnType<typeof start>>;
  const clients = { fleet: sender(first.url), single: sender(single.url) };
  const path = '/infisical/webhook';

  async function one(
    client: Sender,
    path: string,
    watchers: readonly DirWatcher[],
  ): Promise<number> {
    const value = randomValue();
    const delivery = signed(valueEvent('K', value));
    const seen = watchers.map((w) => w.expect('k.txt', `${value}\n`));
    const t0 = now();
    const status = await client.send(path, delivery);
    if (status !== 200) throw new Error(`webhook answered ${status}`);
    return Math.max(...(await Promise.all(seen))) - t0;
  }
  const sides = {
    fleet: {
      run: () =>
        one(
          clients.fleet,
          path,
          fleet.map((r) => r.watcher),
        ),
      samples: [] as number[],
    },
    single: {
      run: () => one(clients.single, path, [single.watcher]),
      samples: [] as number[],
    },
  };

  await alternate(sides.fleet, sides.single, {
    warmup: WARMUP,
    count: EVENTS,
    block: BLOCK,
    what: 'events',
  });

  const f = summarize(sides.fleet.samples);
  const s = summarize(sides.single.samples);
  await clients.fleet.close();
  await clients.single.close();
  for (const r of [...fleet, single]) {
    r.watcher.close();
    await r.proc.kill();
  }
  await local.close();
  await tmp.remove();

  return {
    id: 7,
    title: 'Value event → file on the last of 3 replicas (peer relay)',
    durationMs: now() - started,
    figures: [
      figure('p50 latency, last of 3', f.p50, 'ms', {
        baseline: { name: 'one replica', value: s.p50 },
        target: '≤ one replica + 5 ms',
        met: f.p50 <= s.p50 + 5,
      }),
      figure('p99 latency, last of 3', f.p99, 'ms', {
        baseline: { name: 'one replica', value: s.p99 },
      }),
      figure('mean latency, last of 3', f.mean, 'ms', {
        baseline: { name: 'one replica', value: s.mean },
      }),
    ],
    notes: [
      `${f.n} events each after ${WARMUP} warm-up events; replicas on 127.0.0.2-4 share port ${port}; payloadValues apply, wait 0ms/0ms; files in ${tmp.dir.startsWith('/dev/shm') ? 'tmpfs (/dev/shm)' : 'the temp dir'}`,
      'each replica is its own node process; the bench process sends, watches the three out/ folders and reads the files back',
    ],
  };
});
