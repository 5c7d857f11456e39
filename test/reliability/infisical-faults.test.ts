/**
 * Infisical faults (issue 6 §3) against a real daemon (`serve()` in this process, real HTTP on
 * 127.0.0.1) and the local Infisical-compatible server's fault injection. For every fault the
 * same story must hold:
 *
 *   (1) the daemon is ready with the files of version 1;
 *   (2) the secret changes in Infisical and the fault is armed;
 *   (3) a signed `secrets.modified` event arrives during the outage and is answered 200;
 *   (4) while the fault lasts, the files stay exactly version 1 (sampled every 20 ms);
 *   (5) with no further event or resync, the files reach version 2 once Infisical is back.
 *
 * Faults: 500 and 503 bursts longer than one request's retries, 429 with retry-after (the gap
 * before the next request is measured), answers slower than `infisical.timeout`, connection
 * resets, an expired token (403 TokenError → one login, one retry), a renew refused past the
 * max TTL (401 → fresh login), and Infisical not listening at all — at start with old files on
 * disk, and mid-run (a restarted Infisical whose tokens are new). `test/integration/daemon.test.ts`
 * already covers a reset-only outage at start and the TTL lifecycle; these extend it.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startLocalInfisical, type LocalInfisical } from '../../src/dev/local-infisical.js';
import type { FaultSpec } from '../../src/dev/faults.js';
import { parseSeed } from '../../src/dev/seed.js';
import { startInfisical, tempDir, waitFor } from '../helpers/harness.js';
import {
  addCanaries,
  modifiedEvent,
  record,
  requestsSince,
  secrecyReport,
  sleep,
  startInProcess,
  type InProcessDaemon,
} from './support.js';

const PW1 = 'canary-fault-pw1-71c3a9';
const PW2 = 'canary-fault-pw2-0be4d2';
const WEBHOOK_SECRET = 'canary-fault-whsec-5a8e21f0';
addCanaries(PW1, PW2, WEBHOOK_SECRET);

const LIST = 'GET /api/v4/secrets';
const LOGIN = 'POST /api/v1/auth/kubernetes-auth/login';
const RENEW = 'POST /api/v1/auth/token/renew';

function seed(password: string): string {
  return `
projects:
  - id: proj-f
    name: Faults
    environments:
      - slug: prod
        name: Production
        folders:
          /:
            DB_USER: app
            DB_PASSWORD: ${password}
identities:
  - id: ident-f
    name: reloader
    kubernetes: { allowedNamespaces: "apps", allowedNames: "reloader" }
`;
}

const v1 = `user=app password=${PW1}\n`;
const v2 = `user=app password=${PW2}\n`;

function specYaml(url: string, timeout = '400ms'): string {
  return `infisical:
  url: ${url}
  auth: { kubernetes: { identityId: ident-f, tokenPath: sa-token } }
  timeout: ${timeout}
sources:
  - { projectId: proj-f, environment: prod, path: / }
webhook:
  listen: 127.0.0.1:0
  secret: ${WEBHOOK_SECRET}
admin:
  listen: 127.0.0.1:0
defaults:
  wait: { min: 20ms, max: 200ms }
targets:
  - name: app
    files:
      - contents: "user={{secrets.DB_USER}} password={{secrets.DB_PASSWORD}}\\n"
        destination: out/app.env
`;
}

interface Rig {
  dir: string;
  local: LocalInfisical;
  d: InProcessDaemon;
  file(): Promise<string>;
}

/** Local Infisical + a ready daemon whose file holds version 1. */
async function rig(
  t: TestContext,
  opts: { ttl?: number; maxTtl?: number; timeout?: string } = {},
): Promise<Rig> {
  const dir = await tempDir(t, 'rld-faults-');
  const local = await startInfisical(t, seed(PW1), {
    webhookDelayMs: 10,
    accessTokenTTL: opts.ttl,
    accessTokenMaxTTL: opts.maxTtl,
  });
  const sa = local.mintServiceAccountToken({ namespace: 'apps', name: 'reloader' });
  addCanaries(sa);
  await writeFile(join(dir, 'sa-token'), sa, { mode: 0o600 });
  const d = await startInProcess(t, dir, specYaml(local.url, opts.timeout), WEBHOOK_SECRET);
  const file = () => readFile(join(dir, 'out', 'app.env'), 'utf8').catch(() => '');
  await waitFor(async () => (await d.get('/readyz')).status === 200, { what: 'ready' });
  assert.equal(await file(), v1);
  return { dir, local, d, file };
}

function rotate(local: LocalInfisical): void {
  local.setSecret({
    projectId: 'proj-f',
    environment: 'prod',
    path: '/',
    key: 'DB_PASSWORD',
    value: PW2,
  });
}

/**
 * (4) The file stays version 1 for as long as `during()` holds; returns the samples taken.
 * Polling is the point here: every sample is a check that the outage changed nothing.
 */
async function holdsLastGood(r: Rig, during: () => boolean, maxMs = 30_000): Promise<number> {
  const deadline = Date.now() + maxMs;
  let samples = 0;
  while (during()) {
    assert.equal(await r.file(), v1, 'the last good file is kept during the outage');
    samples++;
    assert.ok(Date.now() < deadline, 'the outage ended within the test window');
    await sleep(20);
  }
  return samples;
}

let recovered = 0;
const recoveries: string[] = [];

/** (3)–(5) for a fault armed on the local server; returns the recovery time in ms. */
async function outage(
  t: TestContext,
  r: Rig,
  name: string,
  faults: FaultSpec[],
): Promise<{ ms: number; from: number }> {
  const from = r.local.requests.length;
  rotate(r.local);
  for (const f of faults) r.local.faults.add(f);
  const started = Date.now();
  const res = await r.d.event(modifiedEvent('proj-f', 'prod'));
  assert.equal(res.status, 200, 'the event is acknowledged during the outage');
  // Until a listing succeeds again, the file must be exactly version 1.
  const listedOk = () => requestsSince(r.local, from, 'v4/secrets').some((x) => x.status === 200);
  const samples = await holdsLastGood(r, () => !listedOk());
  await waitFor(async () => (await r.file()) === v2, {
    what: `version 2 after the ${name} outage`,
    timeoutMs: 30_000,
  });
  const ms = Date.now() - started;
  recovered++;
  recoveries.push(`${name} ${ms} ms`);
  t.diagnostic(`${name}: recovered in ${ms} ms; file checked ${samples}× during the outage`);
  await collect(r);
  return { ms, from };
}

async function collect(r: Rig): Promise<void> {
  const status = await r.d.get('/status');
  const metrics = await r.d.get('/metrics');
  assert.equal(status.status, 200);
  assert.match(metrics.text, /reloader_fetches_total|reloader_renders_total/);
  const s = JSON.parse(status.text) as { infisical: { lastError?: unknown } };
  assert.equal(s.infisical.lastError, undefined, '/status shows no fetch error once recovered');
  record(...r.d.lines);
}

// The scenarios only wait on timers and sockets: run them side by side.
describe('Infisical faults', { concurrency: true }, () => {
  test('500 burst longer than one request’s retries: kept, then applied', async (t) => {
    const r = await rig(t);
    const { from } = await outage(t, r, '500 x6', [{ route: LIST, status: 500, times: 6 }]);
    const fails = requestsSince(r.local, from, 'v4/secrets').filter((x) => x.status === 500);
    assert.equal(fails.length, 6);
    assert.ok(
      r.d.lines.some((l) => l.includes('fetch failed; keeping the last good files')),
      'the daemon said it kept the last good files',
    );
    await r.d.stop();
  });

  test('503 burst: kept, then applied', async (t) => {
    const r = await rig(t);
    await outage(t, r, '503 x5', [{ route: LIST, status: 503, times: 5 }]);
    await r.d.stop();
  });

  test('429 with retry-after: the next request waits that long', async (t) => {
    const r = await rig(t);
    const { from } = await outage(t, r, '429 retry-after 1 s', [
      { route: LIST, status: 429, headers: { 'retry-after': '1' }, times: 1 },
    ]);
    const lists = requestsSince(r.local, from, 'v4/secrets');
    const i = lists.findIndex((x) => x.status === 429);
    const next = lists[i + 1];
    assert.ok(i >= 0 && next !== undefined, 'a 429 then another list request');
    const gap = next.atMs - (lists[i]?.atMs ?? 0);
    t.diagnostic(`429: gap before the next request ${gap} ms (retry-after: 1 s)`);
    assert.ok(gap >= 950, `retry-after honoured: ${gap} ms ≥ 1000 ms (minus clock slack)`);
    assert.ok(gap < 5000, `and not much longer: ${gap} ms`);
    await r.d.stop();
  });

  test('answers slower than infisical.timeout: timed out, retried, applied', async (t) => {
    const r = await rig(t, { timeout: '300ms' });
    await outage(t, r, 'slow 1.5 s vs timeout 300 ms x3', [
      { route: LIST, delayMs: 1500, times: 3 },
    ]);
    assert.ok(
      r.d.lines.some((l) => l.includes('RLD_ERR_INFISICAL_TIMEOUT')),
      'a timeout was reported',
    );
    await r.d.stop();
  });

  test('connection resets: kept, then applied', async (t) => {
    const r = await rig(t);
    const { from } = await outage(t, r, 'reset x5', [{ route: LIST, reset: true, times: 5 }]);
    assert.equal(
      requestsSince(r.local, from, 'v4/secrets').filter((x) => x.status === 0).length,
      5,
    );
    await r.d.stop();
  });

  test('expired token (403 TokenError): one fresh login, one retry, applied', async (t) => {
    const r = await rig(t);
    const loginsBefore = requestsSince(r.local, 0, 'kubernetes-auth/login').length;
    const { from } = await outage(t, r, '403 TokenError', [
      {
        route: LIST,
        status: 403,
        body: {
          reqId: 'req-expired',
          statusCode: 403,
          error: 'TokenError',
          message: 'Your token has expired. Please re-authenticate.',
        },
        times: 1,
      },
    ]);
    const since = r.local.requests.slice(from);
    const rejected = since.findIndex((x) => x.route === LIST && x.status === 403);
    const login = since.findIndex((x) => x.route === LOGIN && x.status === 200);
    const retried = since.findIndex((x, i) => i > login && x.route === LIST && x.status === 200);
    assert.ok(rejected >= 0 && login > rejected && retried > login, 'rejected → login → list');
    const logins = requestsSince(r.local, 0, 'kubernetes-auth/login').length - loginsBefore;
    assert.equal(logins, 1, 'exactly one fresh login');
    await r.d.stop();
  });

  test('renew refused past the max TTL (401): a fresh login, then events keep working', async (t) => {
    // TTL 2 s: the renew is due at 1.6 s (renewAt 0.8); the server refuses it once.
    const r = await rig(t, { ttl: 2, maxTtl: 3600 });
    const from = r.local.requests.length;
    r.local.faults.add({
      route: RENEW,
      status: 401,
      body: {
        reqId: 'req-maxttl',
        statusCode: 401,
        error: 'UnauthorizedError',
        message: 'Failed to renew MI access token past its Max TTL expiration',
      },
      times: 1,
    });
    await waitFor(() => r.local.faults.pending === 0, { what: 'the renew to be refused' });
    await waitFor(
      () => r.local.requests.slice(from).some((x) => x.route === LOGIN && x.status === 200),
      { what: 'a fresh login after the refused renew' },
    );
    const since = r.local.requests.slice(from);
    const refused = since.findIndex((x) => x.route === RENEW && x.status === 401);
    const login = since.findIndex((x) => x.route === LOGIN && x.status === 200);
    assert.ok(refused >= 0 && login > refused, 'refused renew → login');
    assert.equal(await r.file(), v1, 'files untouched by the token trouble');
    await outage(t, r, 'renew 401 → re-login', []);
    const badLists = r.local.requests
      .slice(from)
      .filter((x) => x.route === LIST && x.status >= 400);
    assert.equal(badLists.length, 0, 'no listing was sent with a refused token');
    await r.d.stop();
  });

  test('Infisical not listening at start: old files untouched, /readyz 503, then ready on its own', async (t) => {
    const dir = await tempDir(t, 'rld-faults-down-');
    // Learn a free port, then leave it closed.
    const probe = await startLocalInfisical({ seed: parseSeed(seed(PW2), 'seed.yaml') });
    const port = Number(new URL(probe.url).port);
    const sa = probe.mintServiceAccountToken({ namespace: 'apps', name: 'reloader' });
    await probe.close();
    await mkdir(join(dir, 'out'));
    const old = 'user=app password=from-an-earlier-run\n';
    await writeFile(join(dir, 'out', 'app.env'), old, { mode: 0o600 });
    await writeFile(join(dir, 'sa-token'), sa, { mode: 0o600 });
    addCanaries(sa);
    const d = await startInProcess(
      t,
      dir,
      specYaml(`http://127.0.0.1:${port}/api`),
      WEBHOOK_SECRET,
    );
    const file = () => readFile(join(dir, 'out', 'app.env'), 'utf8');
    const started = Date.now();
    const res = await d.event(modifiedEvent('proj-f', 'prod'));
    assert.equal(res.status, 200);
    // Down until the daemon has reported a failed fetch (after the client's own retries).
    let lastError: string | undefined;
    while (lastError === undefined) {
      assert.equal(await file(), old, 'the earlier file is kept while Infisical is down');
      assert.equal((await d.get('/readyz')).status, 503);
      assert.equal((await d.get('/healthz')).status, 200);
      const status = JSON.parse((await d.get('/status')).text) as {
        infisical: { lastError?: { code: string } };
      };
      lastError = status.infisical.lastError?.code;
      assert.ok(Date.now() - started < 15_000, 'a fetch failure is reported within 15 s');
      await sleep(50);
    }
    assert.equal(lastError, 'RLD_ERR_INFISICAL_NETWORK');
    const downMs = Date.now() - started;
    // A fresh server on the same port (a new signing key: the service-account token is re-minted).
    const local = await startLocalInfisical({ seed: parseSeed(seed(PW2), 'seed.yaml'), port });
    t.after(() => local.close());
    const sa2 = local.mintServiceAccountToken({ namespace: 'apps', name: 'reloader' });
    addCanaries(sa2);
    await writeFile(join(dir, 'sa-token'), sa2, { mode: 0o600 });
    await waitFor(async () => (await d.get('/readyz')).status === 200, {
      what: 'ready once Infisical listens',
      timeoutMs: 30_000,
    });
    assert.equal(await file(), v2);
    const ms = Date.now() - started;
    recovered++;
    recoveries.push(`down at start ${ms} ms`);
    t.diagnostic(
      `down at start (connection refused): ready ${ms} ms after start, ${downMs} ms of it down`,
    );
    record(...d.lines);
    await d.stop();
  });

  test('Infisical restarted mid-run (refused, then new tokens): the event of the outage is applied', async (t) => {
    const r = await rig(t);
    const port = Number(new URL(r.local.url).port);
    await r.local.close();
    const started = Date.now();
    const res = await r.d.event(modifiedEvent('proj-f', 'prod'));
    assert.equal(res.status, 200);
    await holdsLastGood(r, () => Date.now() - started < 1500);
    const local = await startLocalInfisical({ seed: parseSeed(seed(PW2), 'seed.yaml'), port });
    t.after(() => local.close());
    const sa2 = local.mintServiceAccountToken({ namespace: 'apps', name: 'reloader' });
    addCanaries(sa2);
    await writeFile(join(r.dir, 'sa-token'), sa2, { mode: 0o600 });
    await waitFor(async () => (await r.file()) === v2, {
      what: 'version 2 from the restarted Infisical',
      timeoutMs: 30_000,
    });
    const ms = Date.now() - started;
    const rejected = local.requests.filter((x) => x.route === LIST && x.status === 403).length;
    recovered++;
    recoveries.push(`restart mid-run ${ms} ms`);
    t.diagnostic(
      `restart mid-run: applied ${ms} ms after the event (1.5 s down); the old token was refused ${rejected}× by the new server`,
    );
    record(...r.d.lines);
    await r.d.stop();
  });
});

test('faults recovered (figure), and no canary in any output of this file', (t) => {
  t.diagnostic(`infisical faults recovered: ${recovered}/9 — ${recoveries.join('; ')}`);
  assert.equal(recovered, 9);
  secrecyReport(t, 'infisical-faults');
});
