/**
 * The example apps (examples/python-app, examples/java-app) as real processes, driven by the
 * daemon running their shipped reloader.yaml (only `${VAR}` overrides from the environment):
 * the app reports the SHA-256 of the credential in use, a rotation reaches it by SIGHUP, and it
 * reports the new fingerprint without a restart (same pid, one reload).
 *
 * The Python app is rotated the real Infisical way (secret changed → signed `secrets.modified`
 * webhook → refetch); the Java app by a signed value-carrying `secret.rotated` event.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { assertNoSecrets, repoRoot, startInfisical, tempDir, waitFor } from '../helpers/harness.js';
import { requireBinary, seedYaml, startApp, startDaemon, isAlive } from './helpers.js';

const WEBHOOK_SECRET = 'canary-e2e-apps-webhook-0b9e44';
const PROJECT = 'proj-apps';
const ENV = 'prod';
const IDENTITY = 'ident-apps';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

interface Fingerprint {
  key: string;
  sha256: string;
  pid: number;
  reloads: number;
}

async function fingerprint(base: string): Promise<Fingerprint | undefined> {
  const res = await request(`${base}/fingerprint`);
  const text = await res.body.text();
  return res.statusCode === 200 ? (JSON.parse(text) as Fingerprint) : undefined;
}

interface Scenario {
  binary: 'python3' | 'java';
  example: 'python-app' | 'java-app';
  target: string;
  configFile: string;
  argv(config: string, pidFile: string): string[];
  rotate: 'webhook' | 'value-event';
  /** JVM start compiles App.java in memory: seconds on a busy 2-core machine. */
  startTimeoutMs: number;
}

async function runScenario(t: TestContext, s: Scenario): Promise<void> {
  const bin = requireBinary(t, s.binary);
  if (!bin) return;
  // random per run: a leak cannot hide behind a value printed for another reason
  const v1 = `canary-${s.example}-v1-${randomBytes(6).toString('hex')}`;
  const v2 = `canary-${s.example}-v2-${randomBytes(6).toString('hex')}`;
  const dir = await tempDir(t, `rld-e2e-${s.example}-`);
  const local = await startInfisical(
    t,
    seedYaml({
      projectId: PROJECT,
      environment: ENV,
      identityId: IDENTITY,
      secrets: { DB_USER: 'app', DB_PASSWORD: v1 },
    }),
    { webhookDelayMs: 20 },
  );
  const saToken = local.mintServiceAccountToken({ namespace: 'apps', name: 'reloader' });
  await writeFile(join(dir, 'sa-token'), saToken, { mode: 0o600 });
  await writeFile(join(dir, 'webhook-secret'), `${WEBHOOK_SECRET}\n`, { mode: 0o600 });
  const config = join(dir, s.configFile);
  const pidFile = join(dir, 'app.pid');

  // the shipped example spec, pointed at the test's Infisical and temp dir
  const daemon = await startDaemon(t, join(repoRoot, 'examples', s.example, 'reloader.yaml'), {
    INFISICAL_API_URL: local.url,
    INFISICAL_IDENTITY_ID: IDENTITY,
    INFISICAL_TOKEN_PATH: join(dir, 'sa-token'),
    INFISICAL_PROJECT_ID: PROJECT,
    INFISICAL_ENVIRONMENT: ENV,
    RELOADER_LISTEN: '127.0.0.1:0',
    RELOADER_ADMIN_LISTEN: '127.0.0.1:0',
    RELOADER_WEBHOOK_SECRET_FILE: join(dir, 'webhook-secret'),
    APP_CONFIG: config,
    APP_PID_FILE: pidFile,
  });
  assert.equal((await daemon.target(s.target))?.lastReload?.status, 'skipped', 'no app yet');

  // the app starts on the rendered file
  const started = performance.now();
  const { app, base } = await startApp(t, bin, s.argv(config, pidFile), {
    cwd: dir,
    what: `the ${s.example} to listen`,
    timeoutMs: s.startTimeoutMs,
  });
  t.diagnostic(`${s.example} start → listening: ${(performance.now() - started).toFixed(0)} ms`);
  const before = await waitFor(() => fingerprint(base), { what: 'a first fingerprint' });
  assert.equal(before.sha256, sha256(v1), 'the app uses v1');
  assert.equal(before.key, 'DB_PASSWORD');
  assert.equal(before.reloads, 0);
  assert.equal(before.pid, app.child.pid, 'the app reports its own pid');
  assert.equal(Number((await readFile(pidFile, 'utf8')).trim()), before.pid);

  const rotated = performance.now();
  if (s.rotate === 'webhook') {
    local.addWebhook({
      projectId: PROJECT,
      environment: ENV,
      secretPath: '/**',
      url: `${daemon.url}/infisical/webhook`,
      secretKey: WEBHOOK_SECRET,
    });
    local.setSecret({
      projectId: PROJECT,
      environment: ENV,
      path: '/',
      key: 'DB_PASSWORD',
      value: v2,
    });
  } else {
    // The integration guide's value event, taken as a notification (payloadValues: refetch,
    // the default): the new value is read from Infisical, never from the body.
    local.setSecret({
      projectId: PROJECT,
      environment: ENV,
      path: '/',
      key: 'DB_PASSWORD',
      value: v2,
    });
    const status = await daemon.signedEvent(
      {
        event: 'secret.rotated',
        timestamp: Date.now(),
        payload: { secretKey: 'DB_PASSWORD', secretValue: 'not-the-value-0000', rotation: true },
      },
      WEBHOOK_SECRET,
    );
    assert.equal(status, 200);
  }
  let last: Fingerprint | undefined;
  const after = await waitFor(
    async () => {
      last = await fingerprint(base);
      return last?.sha256 === sha256(v2) ? last : undefined;
    },
    { what: `the ${s.example} to report v2`, timeoutMs: 10_000, intervalMs: 10 },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; app said: ${JSON.stringify(last)}`);
  });
  t.diagnostic(
    `${s.example}: rotation (${s.rotate}) → app reports v2: ${(performance.now() - rotated).toFixed(0)} ms (wait.min 100 ms)`,
  );
  assert.equal(after.pid, before.pid, 'same pid: reloaded, not restarted');
  assert.equal(after.reloads, 1, 'exactly one reload');
  assert.ok(isAlive(before.pid) && app.child.exitCode === null, 'the app kept running');
  const state = await waitFor(
    async () => {
      const st = await daemon.target(s.target);
      return st?.lastReload?.status === 'ok' ? st : undefined;
    },
    { what: '/status to show the SIGHUP reload' },
  );
  assert.equal(state.lastStatus, 'committed');

  const output = await daemon.stop();
  assertNoSecrets([output, app.output(), JSON.stringify(state)], [v1, v2, WEBHOOK_SECRET, saToken]);
}

test('python example app: a rotation via a real Infisical webhook reaches the app by SIGHUP, same pid', async (t) => {
  await runScenario(t, {
    binary: 'python3',
    example: 'python-app',
    target: 'python-app',
    configFile: 'config.json',
    argv: (config, pidFile) => [
      join(repoRoot, 'examples', 'python-app', 'app.py'),
      '--config',
      config,
      '--pid-file',
      pidFile,
      '--port',
      '0',
    ],
    rotate: 'webhook',
    startTimeoutMs: 15_000,
  });
});

test('java example app: a signed secret.rotated event reaches the app by SIGHUP (sun.misc.Signal), same pid', async (t) => {
  await runScenario(t, {
    binary: 'java',
    example: 'java-app',
    target: 'java-app',
    configFile: 'app.env',
    argv: (config, pidFile) => [
      join(repoRoot, 'examples', 'java-app', 'App.java'),
      '--config',
      config,
      '--pid-file',
      pidFile,
      '--port',
      '0',
    ],
    rotate: 'value-event',
    startTimeoutMs: 40_000,
  });
});
