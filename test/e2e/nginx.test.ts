/**
 * Real nginx serving HTTPS with a certificate and key rendered by the reloader daemon (a real
 * process) from the shipped templates, rotated through a real signed Infisical webhook from the
 * local Infisical-compatible server.
 *
 * Order, as in a pod: the reloader renders first (its first reload finds no nginx and is
 * skipped), then nginx starts on the rendered files. nginx cannot start without them, so
 * starting it first would need a `--once` pass anyway — this way the test also covers the
 * daemon's first-render rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertNoSecrets, repoRoot, startInfisical, tempDir, waitFor } from '../helpers/harness.js';
import {
  childrenOf,
  freePort,
  isAlive,
  logTimeline,
  nginxArgv,
  nginxConf,
  requireBinaries,
  seedYaml,
  specHeader,
  selfSigned,
  startDaemon,
  startNginx,
  tlsPeer,
  waitForSingleWorker,
} from './helpers.js';

const WEBHOOK_SECRET = 'canary-e2e-nginx-webhook-5c1d9e';
const PROJECT = 'proj-nginx';
const ENV = 'prod';

test('nginx: the daemon renders cert+key, a webhook rotates them with one HUP, a mismatched pair is rolled back', async (t) => {
  const bins = requireBinaries(t, ['nginx', 'openssl']);
  if (!bins) return;
  const nginx = bins.nginx as string;
  const dir = await tempDir(t, 'rld-e2e-nginx-');
  for (const sub of ['logs', 'tmp', 'html', 'certs']) await mkdir(join(dir, sub));
  const [v1, v2, v3] = await Promise.all(
    ['v1', 'v2', 'v3'].map((cn) => selfSigned(join(dir, 'certs'), cn)),
  );
  assert.ok(v1 && v2 && v3);
  const port = await freePort();

  const local = await startInfisical(
    t,
    seedYaml({
      projectId: PROJECT,
      environment: ENV,
      identityId: 'ident-nginx',
      secrets: { TLS_CERT: v1.cert, TLS_KEY: v1.key },
    }),
    { webhookDelayMs: 20 },
  );
  const saToken = local.mintServiceAccountToken({ namespace: 'apps', name: 'reloader' });
  await writeFile(join(dir, 'sa-token'), saToken, { mode: 0o600 });
  await writeFile(join(dir, 'webhook-secret'), `${WEBHOOK_SECRET}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'nginx.conf'), nginxConf(dir, `${dir}/conf.d/tls-server.conf`));
  const check = [...nginxArgv(nginx, dir), '-t', '-q'];
  const tpl = (name: string) => join(repoRoot, 'templates', 'nginx', name);
  const spec = join(dir, 'reloader.yaml');
  await writeFile(
    spec,
    `${specHeader({ url: local.url, identityId: 'ident-nginx', projectId: PROJECT, environment: ENV })}targets:
  - name: nginx-tls
    files:
      - template: ${tpl('tls.crt.hbs')}
        destination: tls/tls.crt
        mode: "0644"
      - template: ${tpl('tls.key.hbs')}
        destination: tls/tls.key
      - template: ${tpl('tls-server.conf.hbs')}
        destination: conf.d/tls-server.conf
        mode: "0644"
    check:
      command: ${JSON.stringify(check)}
      timeout: 10s
    reload: { signal: HUP, pidFile: nginx.pid }
`,
  );
  const daemon = await startDaemon(t, spec, {
    NGINX_LISTEN: `127.0.0.1:${port} ssl`,
    NGINX_SERVER_NAME: 'localhost',
    NGINX_TLS_DIR: join(dir, 'tls'),
    NGINX_ROOT: join(dir, 'html'),
  });
  const first = await daemon.target('nginx-tls');
  assert.equal(first?.lastStatus, 'committed');
  assert.equal(first?.lastReload?.status, 'skipped', 'no nginx yet: the first reload is skipped');
  assert.equal((await stat(join(dir, 'tls/tls.key'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, 'tls/tls.crt'))).mode & 0o777, 0o644);

  // nginx starts on the files the daemon rendered
  const server = await startNginx(t, nginx, dir, port);
  assert.equal((await tlsPeer(port)).cn, 'v1');
  const worker1 = await waitForSingleWorker(server.pid);

  local.addWebhook({
    projectId: PROJECT,
    environment: ENV,
    secretPath: '/**',
    url: `${daemon.url}/infisical/webhook`,
    secretKey: WEBHOOK_SECRET,
  });

  // rotation: one folder change → one webhook → one pass → one HUP
  const started = performance.now();
  const startedWall = Date.now();
  local.replaceFolder({
    projectId: PROJECT,
    environment: ENV,
    path: '/',
    secrets: { TLS_CERT: v2.cert, TLS_KEY: v2.key },
  });
  let seen = '';
  await waitFor(
    async () => {
      seen = (await tlsPeer(port)).cn;
      return seen === 'v2';
    },
    { what: 'a TLS handshake with CN=v2', timeoutMs: 10_000, intervalMs: 5 },
  );
  const toFirstV2 = performance.now() - started;
  t.diagnostic(`rotation (replaceFolder) → first handshake with v2: ${toFirstV2.toFixed(0)} ms`);
  const worker2 = await waitForSingleWorker(server.pid, worker1);
  t.diagnostic(`rotation → old worker gone: ${(performance.now() - started).toFixed(0)} ms`);
  t.diagnostic(
    `daemon timeline: ${logTimeline(daemon.proc.output().stderr, startedWall, ['webhook', 'secrets fetched', 'files committed', 'reloaded'])}`,
  );
  for (let i = 0; i < 5; i++) {
    assert.equal((await tlsPeer(port)).cn, 'v2', `handshake ${i + 1} after the old worker exited`);
  }
  assert.ok(isAlive(server.pid), 'the master is still running');
  assert.equal(
    Number((await readFile(join(dir, 'nginx.pid'), 'utf8')).trim()),
    server.pid,
    'the master pid is unchanged: reloaded, not restarted',
  );
  assert.notEqual(worker2, worker1);
  const v2Files = {
    crt: await readFile(join(dir, 'tls/tls.crt')),
    key: await readFile(join(dir, 'tls/tls.key')),
  };
  assert.equal(v2Files.crt.toString().trim(), v2.cert.trim());
  assert.equal(v2Files.key.toString().trim(), v2.key.trim());
  const afterRotation = await waitFor(
    async () => {
      const s = await daemon.target('nginx-tls');
      return s?.lastReload?.status === 'ok' ? s : undefined;
    },
    { what: '/status to show the HUP reload' },
  );
  assert.equal(afterRotation.lastStatus, 'committed');
  assert.equal(
    local.deliveries.filter((d) => d.status === 200).length,
    1,
    'one webhook delivery, answered 200',
  );
  let metrics = await daemon.metrics();
  assert.match(metrics, /reloader_reloads_total\{target="nginx-tls",outcome="ok"\} 1\b/);

  // torn update: cert v3 with key v2 → nginx -t fails → v2 files back, nginx untouched
  const errorLogBefore = (await readFile(join(dir, 'logs/error.log'), 'utf8')).length;
  local.replaceFolder({
    projectId: PROJECT,
    environment: ENV,
    path: '/',
    secrets: { TLS_CERT: v3.cert, TLS_KEY: v2.key },
  });
  const failed = await waitFor(
    async () => {
      const s = await daemon.target('nginx-tls');
      return s?.lastStatus === 'failed' ? s : undefined;
    },
    { what: 'the nginx-tls target to fail its check', timeoutMs: 10_000 },
  );
  assert.equal(failed.lastError?.code, 'RLD_ERR_CHECK');
  assert.deepEqual(
    await readFile(join(dir, 'tls/tls.crt')),
    v2Files.crt,
    'v2 cert back, byte for byte',
  );
  assert.deepEqual(
    await readFile(join(dir, 'tls/tls.key')),
    v2Files.key,
    'v2 key back, byte for byte',
  );
  for (let i = 0; i < 5; i++) {
    assert.equal((await tlsPeer(port)).cn, 'v2', `nginx still serves v2 (handshake ${i + 1})`);
  }
  assert.deepEqual(childrenOf(server.pid), [worker2], 'no reload happened: same single worker');
  const errorLog = (await readFile(join(dir, 'logs/error.log'), 'utf8')).slice(errorLogBefore);
  assert.doesNotMatch(errorLog, /reconfiguring/, 'nginx received no HUP for the torn pair');
  metrics = await daemon.metrics();
  assert.match(metrics, /reloader_renders_total\{target="nginx-tls",outcome="failed"\} 1\b/);
  assert.match(metrics, /reloader_reloads_total\{target="nginx-tls",outcome="ok"\} 1\b/);
  assert.match(metrics, /reloader_target_up\{target="nginx-tls"\} 0\b/);

  const output = await daemon.stop();
  const canaries = [...v1.keyLines, ...v2.keyLines, ...v3.keyLines, WEBHOOK_SECRET, saToken];
  const status = JSON.stringify(failed);
  assertNoSecrets([output, status, metrics], canaries);
});
