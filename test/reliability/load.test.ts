/**
 * Load (issue 6 §7): signed events at a fixed rate against the built daemon (`run`, a real
 * process) on 127.0.0.1, measuring the time to acknowledge each delivery (send → whole HTTP
 * answer) and the daemon's RSS once a second. `npm test` runs 2 s at 100 events/s; the soak
 * runs 60 s at 500 events/s, or `SOAK_MINUTES` minutes (`SOAK_MINUTES=10 npm run soak`): a
 * cache that fills then stops and a leak look alike over 60 s, not over 10 minutes.
 *
 * Open loop: event i is sent at start + i/rate whatever happened to the earlier ones (a closed
 * loop would slow down with the daemon and hide its latency), with at most 1,000 in flight.
 * The mix is what a busy project sends: 80 % Infisical `secrets.modified` (each a refetch
 * request, coalesced by the daemon), 20 % value events cycling through 8 passwords.
 *
 * RSS trend: least-squares slope of RSS over time after a warm-up (the first quarter of the
 * run). "No growth trend" means the slope, extrapolated over the measured window, adds less than
 * 10 % of the mean RSS — a leak of one event's worth of memory per event (≥ 1 KiB × 500/s ≈
 * 500 KiB/s) would exceed it several times over. Asserted only on runs of 5 minutes or more
 * (`SOAK_MINUTES`): the daemon's heap grows for about the first 90 s under this load and is flat
 * after (measured, 10 minutes: 72 → 94 MiB by 90 s, then 86–89 MiB to the end), so a 60 s run
 * sees only the warm-up and measured +16 % on main as on this branch — a cache filling, not a
 * leak. The 60 s soak prints the figures. The curve is printed (one sample every `seconds / 20`), with the mean RSS of
 * each quarter of the run: flat after warm-up when the last quarter is within 5 % of the
 * second.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Pool } from 'undici';
import { adminUrlOf } from '../e2e/daemon.js';
import { signWebhook } from '../../src/events/signature.js';
import { startCli, startInfisical, tempDir, waitFor } from '../helpers/harness.js';
import { addCanaries, record, scale, secrecyReport, SOAK, SOAK_MINUTES, sleep } from './support.js';

const WEBHOOK_SECRET = 'canary-load-whsec-2c7d91e4';
const PASSWORDS = Array.from(
  { length: 8 },
  (_, i) => `canary-load-pw-${i}-${(i * 7919).toString(36)}`,
);
addCanaries(WEBHOOK_SECRET, ...PASSWORDS);

const SEED = `
projects:
  - id: proj-l
    name: Load
    environments:
      - slug: prod
        name: Production
        folders:
          /:
            DB_USER: app
            DB_PASSWORD: ${PASSWORDS[0]}
identities:
  - id: ident-l
    name: reloader
    kubernetes: { allowedNamespaces: "apps", allowedNames: "reloader" }
`;

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
}

const SECONDS = SOAK_MINUTES !== undefined ? Math.round(SOAK_MINUTES * 60) : scale(2, 60);
/** Long enough to see past the warm-up (see the module comment). */
const TREND_ASSERTED = SOAK && SECONDS >= 300;

/** Mean RSS (KiB) of the samples in [from, to) seconds. */
function meanBetween(rss: Array<[number, number]>, from: number, to: number): number {
  const ys = rss.filter(([x]) => x >= from && x < to).map(([, y]) => y);
  return ys.length === 0 ? NaN : ys.reduce((s, y) => s + y, 0) / ys.length;
}

test(`load: ${scale(100, 500)} signed events/s for ${SECONDS} s → p99 time to acknowledge, RSS trend`, async (t) => {
  const rate = scale(100, 500);
  const seconds = SECONDS;
  const dir = await tempDir(t, 'rld-load-');
  const local = await startInfisical(t, SEED, { webhookDelayMs: 10 });
  const sa = local.mintServiceAccountToken({ namespace: 'apps', name: 'reloader' });
  addCanaries(sa);
  await writeFile(join(dir, 'sa-token'), sa, { mode: 0o600 });
  const spec = join(dir, 'reloader.yaml');
  await writeFile(
    spec,
    `infisical:
  url: ${local.url}
  auth: { kubernetes: { identityId: ident-l, tokenPath: sa-token } }
sources:
  - { projectId: proj-l, environment: prod, path: / }
webhook:
  listen: 127.0.0.1:0
  secret: ${WEBHOOK_SECRET}
  payloadValues: apply
admin:
  listen: 127.0.0.1:0
defaults:
  wait: { min: 200ms, max: 2s }
targets:
  - name: db
    files:
      - contents: "\\"{{secrets.DB_USER}}\\" \\"{{secrets.DB_PASSWORD}}\\"\\n"
        destination: out/userlist.txt
    reload:
      command: [sh, -c, 'echo reload >> reloads.log']
`,
  );
  const proc = startCli(t, ['run', '--config', spec]);
  const url = await waitFor(
    () => proc.output().stderr.match(/"url":"(http:\/\/127\.0\.0\.1:\d+)","path"/)?.[1],
    { what: 'the daemon to listen', timeoutMs: 15_000 },
  );
  const pool = new Pool(url, { connections: 32 });
  t.after(() => pool.close());
  const adminPool = new Pool(adminUrlOf(proc.output().stderr), { connections: 4 });
  t.after(() => adminPool.close());
  const getText = async (path: string) => {
    const res = await adminPool.request({ method: 'GET', path });
    return { status: res.statusCode, text: await res.body.text() };
  };
  await waitFor(async () => (await getText('/readyz')).status === 200, { what: 'ready' });
  const pid = proc.child.pid as number;

  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  let errors = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let lastValue = PASSWORDS[0] as string;
  const rss: Array<[number, number]> = [];
  const total = rate * seconds;
  const started = performance.now();
  const sampler = setInterval(() => {
    void rssKiB(pid).then(
      (kib) => rss.push([(performance.now() - started) / 1000, kib]),
      () => undefined,
    );
  }, 1000);
  t.after(() => clearInterval(sampler));
  rss.push([0, await rssKiB(pid)]);

  const send = async (i: number): Promise<void> => {
    let body: string;
    const ts = Date.now();
    if (i % 5 === 4 && i < total) {
      lastValue = PASSWORDS[((i / 5) % PASSWORDS.length) | 0] as string;
      body = JSON.stringify({
        event: 'secret.rotated',
        payload: { secretKey: 'DB_PASSWORD', secretValue: lastValue, rotation: true },
        timestamp: ts,
      });
    } else {
      body = JSON.stringify({
        event: 'secrets.modified',
        project: {
          workspaceId: 'proj-l',
          projectId: 'proj-l',
          environment: 'prod',
          secretPath: '/',
        },
        timestamp: ts,
        seq: i,
      });
    }
    const headers = {
      'content-type': 'application/json',
      'x-infisical-signature': signWebhook(body, WEBHOOK_SECRET, ts),
    };
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const t0 = performance.now();
    try {
      const res = await pool.request({ method: 'POST', path: '/infisical/webhook', headers, body });
      await res.body.text();
      latencies.push(performance.now() - t0);
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    } catch {
      errors++;
    } finally {
      inFlight--;
    }
  };

  const pending: Promise<void>[] = [];
  let sent = 0;
  let skipped = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
    for (; sent < due; sent++) {
      if (inFlight >= 1000) {
        skipped++;
        continue;
      }
      pending.push(send(sent));
    }
    await sleep(5);
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - started) / 1000;
  clearInterval(sampler);
  rss.push([elapsed, await rssKiB(pid)]);

  // Still following changes after the load: Infisical gets the last value, one more event.
  local.setSecret({
    projectId: 'proj-l',
    environment: 'prod',
    path: '/',
    key: 'DB_PASSWORD',
    value: lastValue,
  });
  await send(total);
  await waitFor(
    async () => (await readFile(join(dir, 'out/userlist.txt'), 'utf8')).includes(lastValue),
    { what: 'the last value on disk', timeoutMs: 10_000 },
  );
  const status = await getText('/status');
  const metrics = await getText('/metrics');
  assert.equal((await getText('/healthz')).status, 200);
  const reloads = (await readFile(join(dir, 'reloads.log'), 'utf8'))
    .split('\n')
    .filter(Boolean).length;

  const sorted = [...latencies].sort((a, b) => a - b);
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  const max = sorted.at(-1) ?? NaN;
  const warm = rss.filter(([x]) => x >= elapsed / 4);
  const slopeKiBs = slope(warm);
  const meanKiB = warm.reduce((s, [, y]) => s + y, 0) / warm.length;
  const window = (warm.at(-1)?.[0] ?? 0) - (warm[0]?.[0] ?? 0);
  const growthShare = (slopeKiBs * window) / meanKiB;
  t.diagnostic(
    `load: ${latencies.length}/${total + 1} acknowledged in ${elapsed.toFixed(1)} s (${(latencies.length / elapsed).toFixed(0)}/s), ` +
      `statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${errors} errors, ${skipped} skipped, max ${maxInFlight} in flight; ` +
      `ack p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms; ${reloads} reloads`,
  );
  t.diagnostic(
    `RSS: ${rss.length} samples, ${Math.round(rss[0]?.[1] ?? 0)} → ${Math.round(rss.at(-1)?.[1] ?? 0)} KiB; ` +
      `slope after warm-up ${slopeKiBs.toFixed(1)} KiB/s over ${window.toFixed(0)} s = ${(growthShare * 100).toFixed(1)} % of mean ${Math.round(meanKiB)} KiB ` +
      `(criterion: < 10 %${TREND_ASSERTED ? '' : ', asserted on runs of 5 minutes or more only'})`,
  );
  const step = Math.max(1, elapsed / 20);
  const curve: string[] = [];
  for (let at = 0; at <= elapsed + 0.5; at += step) {
    const near = rss.reduce((best, s) => (Math.abs(s[0] - at) < Math.abs(best[0] - at) ? s : best));
    curve.push(`${near[0].toFixed(0)}s ${(near[1] / 1024).toFixed(1)}`);
  }
  const quarters = [0, 1, 2, 3].map((q) =>
    meanBetween(rss, (q * elapsed) / 4, ((q + 1) * elapsed) / 4 + 0.01),
  );
  const flat =
    Math.abs((quarters[3] as number) - (quarters[1] as number)) < 0.05 * (quarters[1] as number);
  t.diagnostic(`RSS curve (s MiB): ${curve.join(', ')}`);
  t.diagnostic(
    `RSS mean per quarter: ${quarters.map((q) => (Number.isNaN(q) ? '–' : (q / 1024).toFixed(1))).join(' / ')} MiB; ` +
      `flat after warm-up (last quarter within 5 % of the second): ${flat ? 'yes' : 'no'}`,
  );
  record(status.text, metrics.text, proc.output().stderr, proc.output().stdout);

  assert.equal(errors, 0, 'no request failed');
  assert.equal(skipped, 0, 'the generator kept its rate');
  assert.equal(latencies.length, total + 1);
  assert.equal(statuses.get(200), total + 1, 'every delivery answered 200');
  assert.ok(p99 < 1000, `p99 ${p99.toFixed(1)} ms < 1 s (Infisical waits 15 s)`);
  assert.ok(reloads < 10 + seconds, `bursts coalesced: ${reloads} reloads for ${total} events`);
  if (TREND_ASSERTED)
    assert.ok(growthShare < 0.1, `no RSS growth trend (${(growthShare * 100).toFixed(1)} %)`);

  proc.child.kill('SIGTERM');
  assert.equal((await proc.exited).code, 0);
  record(proc.output().stderr);
});

test('secrecy: no canary in the daemon’s logs, /status or /metrics under load', (t) => {
  secrecyReport(t, 'load');
});
