/**
 * `infisical-reloader dev` as a newcomer runs it (`npm start`): the quickstart, a local
 * Infisical-compatible server, a real signed webhook when the secrets file is edited.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertNoSecrets, quickstartCopy, startCli, waitFor } from '../helpers/harness.js';
import { createServer } from 'node:net';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

test('dev: renders the quickstart, re-renders and reloads after an edit of the secrets file', async (t) => {
  const dir = await quickstartCopy(t);
  const port = await freePort();
  const proc = startCli(t, ['dev', '--config', join(dir, 'reloader.yaml')], {
    env: { RELOADER_PORT: String(port), RELOADER_ADMIN_PORT: '0' },
  });
  const appEnv = join(dir, 'out', 'app.env');
  await waitFor(
    async () => (await readFile(appEnv, 'utf8').catch(() => '')).includes('change-me-1'),
    { what: 'the first render', timeoutMs: 20_000 },
  );
  await waitFor(() => proc.output().stdout.includes('Edit '), { what: 'the banner' });
  assert.match(proc.output().stdout, /local Infisical\s+http:\/\/127\.0\.0\.1:\d+\/api/);
  const secrets = join(dir, 'secrets.yaml');
  await writeFile(
    secrets,
    (await readFile(secrets, 'utf8')).replace('change-me-1', 'rotated-in-dev-9d8c'),
  );
  const started = Date.now();
  await waitFor(async () => (await readFile(appEnv, 'utf8')).includes('rotated-in-dev-9d8c'), {
    what: 'the re-render after the edit',
    timeoutMs: 15_000,
  });
  t.diagnostic(
    `edit → file re-rendered: ${Date.now() - started} ms (includes Infisical's 1 s webhook delay)`,
  );
  await waitFor(() => (proc.output().stderr.match(/reloaded out\/app\.env/g) ?? []).length >= 2, {
    what: 'the reload command to run again',
  });
  // SIGHUP re-reads the spec and keeps dev's overrides (local server, minted token, secret)
  proc.child.kill('SIGHUP');
  await waitFor(() => proc.output().stderr.includes('SIGHUP: spec reloaded'), {
    what: 'the spec to be reloaded',
  });
  await writeFile(
    secrets,
    (await readFile(secrets, 'utf8')).replace('rotated-in-dev-9d8c', 'after-hup-7e6f'),
  );
  await waitFor(async () => (await readFile(appEnv, 'utf8')).includes('after-hup-7e6f'), {
    what: 'a re-render after SIGHUP',
    timeoutMs: 15_000,
  });
  // an invalid edit keeps the previous secrets
  await writeFile(secrets, 'DB_PASSWORD: [unclosed\n');
  await waitFor(() => proc.output().stderr.includes('secrets file is invalid'), {
    what: 'the invalid secrets file to be reported',
  });
  assert.match(await readFile(appEnv, 'utf8'), /after-hup-7e6f/);
  proc.child.kill('SIGINT');
  const { code } = await proc.exited;
  assert.equal(code, 0);
  assertNoSecrets(
    [proc.output().stderr],
    ['rotated-in-dev-9d8c', 'after-hup-7e6f', 'ak_live_quickstart'],
  );
});

test('dev: RELOADER_LOG_FORMAT=pretty gives human-readable lines, still scrubbed', async (t) => {
  const dir = await quickstartCopy(t);
  const port = await freePort();
  const proc = startCli(t, ['dev', '--config', join(dir, 'reloader.yaml')], {
    env: { RELOADER_PORT: String(port), RELOADER_ADMIN_PORT: '0', RELOADER_LOG_FORMAT: 'pretty' },
  });
  await waitFor(() => proc.output().stderr.includes('secrets fetched'), {
    what: 'the first fetch logged',
    timeoutMs: 20_000,
  });
  const lines = proc
    .output()
    .stderr.split('\n')
    .filter((l) => l.trim() !== '');
  const ready = lines.filter((l) => l.includes('ready to serve'));
  assert.equal(ready.length, 1, 'one ready line');
  assert.match(ready[0] as string, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: ready to serve/);
  assert.match(ready[0] as string, new RegExp(`"url":"http://127\\.0\\.0\\.1:${port}"`));
  assert.match(ready[0] as string, /"admin":"http:\/\/127\.0\.0\.1:\d+".*"targets":\["app"\]/);
  assert.ok(
    lines.every((l) => !l.startsWith('{')),
    `no JSON line: ${lines.find((l) => l.startsWith('{'))}`,
  );
  proc.child.kill('SIGINT');
  assert.equal((await proc.exited).code, 0);
  assertNoSecrets([proc.output().stderr], ['change-me-1', 'ak_live_quickstart']);
});
