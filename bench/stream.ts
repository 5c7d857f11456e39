/**
 * Bench 8: Event Subscriptions frame → file on disk, p50/p99, next to a `secrets.modified`
 * webhook in the same run.
 *
 * Both sides are the real daemon in this process against the same local Infisical-compatible
 * server, each reading its own project so that one side's change never reaches the other:
 * - stream: `infisical.eventSubscription.enabled`; a change in the server publishes a
 *   `secret-manager` frame (keys only), the daemon refetches the folder and writes the file;
 * - webhook (baseline): the same change in the other project, then a signed `secrets.modified`
 *   delivery sent at once (as Infisical would, without its ~1 s queue delay); the daemon
 *   refetches the folder and writes the file.
 * Latency: from just before the change is made in the server to the moment the new bytes are
 * read back. Blocks of 50 changes alternate between the two.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startLocalInfisical } from '../src/dev/local-infisical.js';
import {
  DirWatcher,
  ENV,
  TARGET_K,
  alternate,
  benchMain,
  specHeader,
  figure,
  modifiedEvent,
  now,
  randomValue,
  seed,
  sender,
  signed,
  startDaemon,
  summarize,
  tempDir,
} from './lib.js';

const CHANGES = Number(process.env['BENCH_STREAM_CHANGES'] ?? 500);
const WARMUP = 50;
const BLOCK = 50;
const STREAM_PROJECT = 'bench-stream';
const HOOK_PROJECT = 'bench-hook';

function specFor(url: string, projectId: string, stream: boolean): string {
  const infisicalExtra = `  eventSubscription: { enabled: ${stream} }\n`;
  return (
    specHeader(url, '{ min: 0ms, max: 0ms }', 'refetch', { projectId, infisicalExtra }) + TARGET_K
  );
}

benchMain(async () => {
  const started = now();
  const tmp = await tempDir();
  const base = seed({ K: randomValue() });
  const template = base.projects[0] as (typeof base.projects)[number];
  const projects = [STREAM_PROJECT, HOOK_PROJECT].map((id) => ({ ...template, id, slug: id }));
  const local = await startLocalInfisical({ seed: { ...base, projects }, webhookDelayMs: 0 });
  const start = async (name: string, projectId: string, stream: boolean) => {
    const dir = join(tmp.dir, name);
    await mkdir(join(dir, 'out'), { recursive: true });
    const daemon = await startDaemon(
      specFor(local.url, projectId, stream),
      join(dir, 'reloader.yaml'),
    );
    return { daemon, watcher: new DirWatcher(join(dir, 'out')) };
  };
  const streamSide = await start('stream', STREAM_PROJECT, true);
  const hookSide = await start('hook', HOOK_PROJECT, false);
  const deadline = now() + 10_000;
  while (local.events.open < 1) {
    if (now() > deadline) throw new Error('the event stream did not open');
    await new Promise((r) => setTimeout(r, 10));
  }
  const client = sender(hookSide.daemon.origin);
  const change = (projectId: string, value: string) =>
    local.setSecret({ projectId, environment: ENV, path: '/', key: 'K', value });

  const sides = {
    stream: {
      async run(): Promise<number> {
        const value = randomValue();
        const seen = streamSide.watcher.expect('k.txt', `${value}\n`);
        const t0 = now();
        change(STREAM_PROJECT, value);
        return (await seen) - t0;
      },
      samples: [] as number[],
    },
    webhook: {
      async run(): Promise<number> {
        const value = randomValue();
        const seen = hookSide.watcher.expect('k.txt', `${value}\n`);
        const t0 = now();
        change(HOOK_PROJECT, value);
        const status = await client.send(hookSide.daemon.path, signed(modifiedEvent(HOOK_PROJECT)));
        if (status !== 200) throw new Error(`webhook answered ${status}`);
        return (await seen) - t0;
      },
      samples: [] as number[],
    },
  };

  await alternate(sides.stream, sides.webhook, {
    warmup: WARMUP,
    count: CHANGES,
    block: BLOCK,
    what: 'changes',
  });

  const framesSent = local.events.framesSent;
  const st = summarize(sides.stream.samples);
  const wh = summarize(sides.webhook.samples);
  await client.close();
  for (const side of [streamSide, hookSide]) {
    side.watcher.close();
    await side.daemon.close();
  }
  await local.close();
  await tmp.remove();

  return {
    id: 8,
    title: 'Event Subscriptions frame → file on disk',
    durationMs: now() - started,
    figures: [
      figure('p50 latency', st.p50, 'ms', {
        baseline: { name: 'secrets.modified webhook', value: wh.p50 },
      }),
      figure('p99 latency', st.p99, 'ms', {
        baseline: { name: 'secrets.modified webhook', value: wh.p99 },
      }),
      figure('mean latency', st.mean, 'ms', {
        baseline: { name: 'secrets.modified webhook', value: wh.mean },
      }),
    ],
    notes: [
      `${st.n} changes each after ${WARMUP} warm-up changes; both refetch the folder (frames carry keys only); wait 0ms/0ms`,
      `latency = change made in the local server → new bytes read back; ${framesSent} frames sent`,
    ],
  };
});
