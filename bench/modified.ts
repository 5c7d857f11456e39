/**
 * Bench 2: `secrets.modified` → file, with the refetch from the local Infisical-compatible
 * server, p50/p99 over 200 events.
 *
 * Each event: `local.setSecret(K = new value)`, then a signed `secrets.modified` for the folder is
 * sent at once (the server's own webhook delay plays no part: no webhook is registered, we send
 * the event ourselves). The daemon refetches the source (its access token is already held),
 * diffs, renders and commits. Baseline: the hand-written pipeline of bench 1 plus the same
 * refetch done by hand — one undici GET of /api/v4/secrets with a token obtained once at
 * start, JSON.parse, pick K, write durably. Same client, same watcher, alternating blocks.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { startLocalInfisical } from '../src/dev/local-infisical.js';
import {
  CLIENT_ID,
  CLIENT_SECRET,
  DirWatcher,
  ENV,
  PROJECT,
  alternate,
  benchMain,
  figure,
  modifiedEvent,
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
  writeDurably,
  type Sender,
} from './lib.js';

const EVENTS = Number(process.env['BENCH_EVENTS_MODIFIED'] ?? 200);
const WARMUP = 20;
const BLOCK = 50;
/** Secrets in the folder besides K: a listing of a realistic size. */
const OTHERS = 30;

benchMain(async () => {
  const started = now();
  const tmp = await tempDir();
  const secrets: Record<string, string> = { K: randomValue() };
  for (let i = 0; i < OTHERS; i += 1) secrets[`OTHER_${i}`] = randomValue(32);
  const local = await startLocalInfisical({
    seed: seed(secrets),
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

  // The baseline logs in once, then lists the folder on every event.
  const login = await request(`${local.url}/v1/auth/universal-auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }),
  });
  const { accessToken } = (await login.body.json()) as { accessToken: string };
  const query = new URLSearchParams({
    projectId: PROJECT,
    environment: ENV,
    secretPath: '/',
    recursive: 'false',
    include_imports: 'true',
    expandSecretReferences: 'true',
    viewSecretValue: 'true',
  });
  const baselineFile = join(tmp.dir, 'baseline', 'k.txt');
  await writeDurably(baselineFile, 'initial\n');
  const baseline = await startBaseline(async (event) => {
    if (event['event'] !== 'secrets.modified') return [];
    const res = await request(`${local.url}/v4/secrets?${query}`, {
      headers: { authorization: `Bearer ${accessToken}` },
    });
    const body = (await res.body.json()) as {
      secrets: Array<{ secretKey: string; secretValue: string }>;
    };
    const k = body.secrets.find((s) => s.secretKey === 'K');
    return k ? [{ dest: baselineFile, contents: `${k.secretValue}\n` }] : [];
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
    const delivery = signed(modifiedEvent());
    const seen = side.watcher.expect('k.txt', `${value}\n`);
    local.setSecret({ projectId: PROJECT, environment: ENV, path: '/', key: 'K', value });
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
  const fetches = local.requests.filter((r) => r.route.includes('v4/secrets')).length;

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
    id: 2,
    title: 'secrets.modified → refetch → file on disk',
    durationMs: now() - started,
    figures: [
      figure('p50 latency', d.p50, 'ms', {
        baseline: { name: 'hand-written http+hmac+GET listing+fsync+rename', value: b.p50 },
      }),
      figure('p99 latency', d.p99, 'ms', {
        baseline: { name: 'hand-written http+hmac+GET listing+fsync+rename', value: b.p99 },
      }),
      figure('mean latency', d.mean, 'ms', { baseline: { name: 'hand-written', value: b.mean } }),
    ],
    notes: [
      `${d.n} events each after ${WARMUP} warm-up events; folder of ${OTHERS + 1} secrets; ${fetches} listings served in all (both sides, warm-up and the daemon's first fetch included)`,
      'latency = signed secrets.modified sent (right after setSecret) → new bytes read back',
    ],
  };
});
