/**
 * `infisical-reloader dev` as a newcomer runs it (`npm start`): the quickstart, a local
 * Infisical-compatible server, a real signed webhook when the secrets file is edited.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertNoSecrets, repoRoot, startCli, tempDir, waitFor } from '../helpers/harness.js';
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
  const dir = await tempDir(t);
  await cp(join(repoRoot, 'examples/quickstart'), dir, {
    recursive: true,
    filter: (src) => !src.includes('/out'),
  });
  const port = await freePort();
  const proc = startCli(t, ['dev', '--config', join(dir, 'reloader.yaml')], {
    env: { RELOADER_PORT: String(port) },
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
  // an invalid edit keeps the previous secrets
  await writeFile(secrets, 'DB_PASSWORD: [unclosed\n');
  await waitFor(() => proc.output().stderr.includes('secrets file is invalid'), {
    what: 'the invalid secrets file to be reported',
  });
  assert.match(await readFile(appEnv, 'utf8'), /rotated-in-dev-9d8c/);
  proc.child.kill('SIGINT');
  const { code } = await proc.exited;
  assert.equal(code, 0);
  assertNoSecrets([proc.output().stderr], ['rotated-in-dev-9d8c', 'ak_live_quickstart']);
});
