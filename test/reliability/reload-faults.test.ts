/**
 * Reload faults (issue 6 §4) in one daemon with four independent targets:
 *
 * - `hang`: a reload command that never ends (a shell and a background grandchild) is killed
 *   at its timeout, and its whole process group is gone when the failure is reported;
 * - `checked`: a `check` that rejects the new file → the previous file is back, no reload;
 * - `gone`: a signal reload to a pid file whose process has died after the first render →
 *   a failure in `/status` and `/metrics`, the daemon keeps running;
 * - `ok`: a plain target that keeps following changes meanwhile, without waiting for `hang`.
 *
 * The events are signed value events (`payloadValues: apply`), so Infisical is only needed at
 * start. Unit tests of runCommand/commitTarget/runReload cover the mechanisms one by one; this
 * shows them together in the daemon, through its outputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { startInfisical, tempDir, waitFor } from '../helpers/harness.js';
import { addCanaries, record, secrecyReport, startInProcess } from './support.js';

const V = {
  HANG: 'canary-reload-hang-1-4b9e',
  CHECKED: 'canary-reload-good-1-8c2d',
  GONE: 'canary-reload-gone-1-1f7a',
  OK: 'canary-reload-ok-1-6d3c',
};
const WEBHOOK_SECRET = 'canary-reload-whsec-93be07d1';
const HANG_TIMEOUT_MS = 1500;
addCanaries(...Object.values(V), WEBHOOK_SECRET);

const SEED = `
projects:
  - id: proj-r
    name: Reloads
    environments:
      - slug: prod
        name: Production
        folders:
          /:
            HANG: ${V.HANG}
            CHECKED: ${V.CHECKED}
            GONE: ${V.GONE}
            OK: ${V.OK}
identities:
  - id: ident-r
    name: reloader
    kubernetes: { allowedNamespaces: "apps", allowedNames: "reloader" }
`;

interface TargetStatus {
  name: string;
  lastStatus?: string;
  lastError?: { code: string; message: string };
  lastCheck?: { ok: boolean; detail?: string };
  lastReload?: { status: string; at: string; detail: string };
}

/** Live (non-zombie) members of process group `pgid`, from /proc. */
async function groupMembers(pgid: number): Promise<number[]> {
  const live: number[] = [];
  for (const e of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = await fsp.readFile(`/proc/${e}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') live.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return live;
}

function sample(metrics: string, series: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('a hanging reload is killed with its process group; a failing check rolls back; a dead pid fails; the other target keeps working', async (t) => {
  const dir = await tempDir(t, 'rld-reload-faults-');
  const local = await startInfisical(t, SEED, { webhookDelayMs: 10 });
  const sa = local.mintServiceAccountToken({ namespace: 'apps', name: 'reloader' });
  addCanaries(sa);
  await fsp.writeFile(join(dir, 'sa-token'), sa, { mode: 0o600 });

  // The app of target `gone`: ignores HUP (so the first reload finds it), prints each one.
  const app = spawn(
    process.execPath,
    [
      '-e',
      "process.on('SIGHUP', () => process.stdout.write('hup\\n')); setInterval(() => {}, 1e6)",
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let appOut = '';
  app.stdout.on('data', (d: Buffer) => (appOut += d.toString()));
  const appExited = new Promise((r) => app.on('exit', r));
  t.after(() => {
    if (app.exitCode === null && app.signalCode === null) app.kill('SIGKILL');
  });
  await fsp.writeFile(join(dir, 'app.pid'), `${app.pid}\n`);

  const d = await startInProcess(
    t,
    dir,
    `infisical:
  url: ${local.url}
  auth: { kubernetes: { identityId: ident-r, tokenPath: sa-token } }
  timeout: 2s
sources:
  - { projectId: proj-r, environment: prod, path: / }
webhook:
  listen: 127.0.0.1:0
  secret: ${WEBHOOK_SECRET}
  payloadValues: apply
admin:
  listen: 127.0.0.1:0
defaults:
  wait: { min: 20ms, max: 200ms }
targets:
  - name: hang
    files:
      - { contents: "hang={{secrets.HANG}}\\n", destination: out/hang.conf }
    reload:
      command: [sh, -c, 'echo $$ >> hang.pgids; sleep 60 & sleep 60']
      timeout: ${HANG_TIMEOUT_MS}ms
  - name: checked
    files:
      - { contents: "checked={{secrets.CHECKED}}\\n", destination: out/checked.conf }
    check: { command: [sh, -c, 'grep -q good out/checked.conf'], timeout: 2s }
  - name: gone
    files:
      - { contents: "gone={{secrets.GONE}}\\n", destination: out/gone.conf }
    reload: { signal: HUP, pidFile: app.pid }
  - name: ok
    files:
      - { contents: "ok={{secrets.OK}}\\n", destination: out/ok.conf }
    reload: { command: [sh, -c, 'echo reloaded >> ok.log'], timeout: 2s }
`,
    WEBHOOK_SECRET,
  );
  const read = (rel: string) => fsp.readFile(join(dir, rel), 'utf8').catch(() => '');
  const targets = async (): Promise<Record<string, TargetStatus>> => {
    const s = JSON.parse((await d.get('/status')).text) as { targets: TargetStatus[] };
    return Object.fromEntries(s.targets.map((x) => [x.name, x]));
  };
  const pgids = async () =>
    (await read('hang.pgids')).trim().split('\n').filter(Boolean).map(Number);

  // First renders: everything written; `hang`'s reload times out; `gone`'s app gets its HUP.
  const first = await waitFor(
    async () => {
      const s = await targets();
      return Object.values(s).every((x) => x.lastStatus !== undefined) ? s : undefined;
    },
    { what: 'the first pass of every target', timeoutMs: 20_000 },
  );
  assert.equal(first['hang']?.lastStatus, 'failed');
  assert.equal(first['hang']?.lastError?.code, 'RLD_ERR_RELOAD');
  assert.match(first['hang']?.lastReload?.detail ?? '', /timed out after \d+ ms/);
  assert.equal(first['checked']?.lastStatus, 'committed');
  assert.equal(first['gone']?.lastStatus, 'committed');
  assert.equal(first['gone']?.lastReload?.status, 'ok');
  assert.equal(first['ok']?.lastStatus, 'committed');
  await waitFor(() => appOut.includes('hup'), { what: 'the app to get its first HUP' });
  // The files of every target are in place, so the pod is ready even though `hang`'s reload
  // failed (that failure is in /status and /metrics, and the reload is retried with backoff).
  const readyz = (await d.get('/readyz')).status;
  t.diagnostic(`/readyz after a first pass whose reload failed: ${readyz}`);
  assert.equal(readyz, 200);
  const [pgid1] = await pgids();
  assert.ok(pgid1 !== undefined, 'the hanging reload recorded its process group');
  assert.deepEqual(await groupMembers(pgid1), [], 'the first hanging reload left no process');

  // The app of `gone` dies; then one change per target arrives at once.
  app.kill('SIGKILL');
  await appExited;
  const sent = Date.now();
  const values = {
    HANG: 'canary-reload-hang-2-0a1b',
    CHECKED: 'canary-reload-bad-2-2c3d',
    GONE: 'canary-reload-gone-2-4e5f',
    OK: 'canary-reload-ok-2-6a7b',
  };
  addCanaries(...Object.values(values));
  for (const [key, value] of Object.entries(values)) {
    const res = await d.event({
      event: 'secret.updated',
      timestamp: Date.now(),
      payload: { secretKey: key, secretValue: value },
    });
    assert.equal(res.status, 200, res.text);
  }

  // `ok` follows at once, long before `hang`'s reload gives up.
  await waitFor(async () => (await read('out/ok.conf')) === `ok=${values.OK}\n`, {
    what: 'target ok to update',
  });
  await waitFor(async () => (await read('ok.log')).split('\n').filter(Boolean).length === 2, {
    what: 'target ok to reload',
  });
  const okMs = Date.now() - sent;
  assert.ok(
    okMs < HANG_TIMEOUT_MS,
    `target ok reloaded in ${okMs} ms, not held up by the hanging one (${HANG_TIMEOUT_MS} ms)`,
  );

  const after = await waitFor(
    async () => {
      const s = await targets();
      const settled =
        s['hang']?.lastReload?.at !== first['hang']?.lastReload?.at &&
        s['gone']?.lastStatus === 'failed' &&
        s['checked']?.lastStatus === 'failed';
      return settled ? s : undefined;
    },
    { what: 'the failures of hang, gone and checked', timeoutMs: 20_000 },
  );
  const hangMs = Date.parse(after['hang']?.lastReload?.at ?? '') - sent;
  t.diagnostic(
    `reload faults: ok reloaded after ${okMs} ms; hang's reload killed after ~${hangMs} ms (timeout ${HANG_TIMEOUT_MS} ms)`,
  );
  // hang: killed at its timeout, whole group gone, file written (the reload is what failed).
  assert.equal(after['hang']?.lastReload?.status, 'failed');
  assert.match(after['hang']?.lastReload?.detail ?? '', /timed out/);
  assert.ok(hangMs >= HANG_TIMEOUT_MS - 50, `not killed before its timeout (${hangMs} ms)`);
  assert.ok(hangMs < HANG_TIMEOUT_MS + 4000, `killed soon after its timeout (${hangMs} ms)`);
  const [, pgid2] = await pgids();
  assert.ok(pgid2 !== undefined);
  assert.deepEqual(await groupMembers(pgid2), [], 'the second hanging reload left no process');
  assert.equal(await read('out/hang.conf'), `hang=${values.HANG}\n`);
  // checked: the check failed, the previous file is back, no reload.
  assert.equal(after['checked']?.lastError?.code, 'RLD_ERR_CHECK');
  assert.equal(after['checked']?.lastCheck?.ok, false);
  assert.equal(await read('out/checked.conf'), `checked=${V.CHECKED}\n`, 'rolled back');
  // gone: written, but the reload found no process.
  assert.equal(after['gone']?.lastReload?.status, 'failed');
  assert.equal(after['gone']?.lastError?.code, 'RLD_ERR_RELOAD');
  assert.equal(await read('out/gone.conf'), `gone=${values.GONE}\n`);
  assert.equal(after['ok']?.lastStatus, 'committed');

  const metrics = (await d.get('/metrics')).text;
  // Failed reloads are retried (1 s, 2 s, … backoff), so these counts can be higher than the
  // number of changes by the retries that ran meanwhile.
  assert.ok(sample(metrics, 'reloader_reloads_total{target="gone",outcome="failed"}')! >= 1);
  assert.equal(sample(metrics, 'reloader_target_up{target="gone"}'), 0);
  assert.equal(sample(metrics, 'reloader_renders_total{target="checked",outcome="failed"}'), 1);
  assert.equal(sample(metrics, 'reloader_target_up{target="checked"}'), 0);
  assert.ok(sample(metrics, 'reloader_reloads_total{target="hang",outcome="failed"}')! >= 2);
  assert.equal(sample(metrics, 'reloader_reloads_total{target="ok",outcome="ok"}'), 2);
  assert.equal(sample(metrics, 'reloader_target_up{target="ok"}'), 1);
  assert.equal((await d.get('/healthz')).status, 200, 'the daemon keeps running');

  // A good value heals `checked`.
  const healed = 'canary-reload-good-3-8b9c';
  addCanaries(healed);
  await d.event({
    event: 'secret.updated',
    timestamp: Date.now(),
    payload: { secretKey: 'CHECKED', secretValue: healed },
  });
  await waitFor(async () => (await targets())['checked']?.lastStatus === 'committed', {
    what: 'target checked to heal',
  });
  assert.equal(await read('out/checked.conf'), `checked=${healed}\n`);
  record((await d.get('/status')).text, (await d.get('/metrics')).text, ...d.lines);
  await d.stop();
});

test('secrecy: no canary in any answer, log line or metric of this file', (t) => {
  secrecyReport(t, 'reload-faults');
});
