/**
 * A rotated webhook `secretFile` (Kubernetes swaps a Secret volume's `..data` symlink): the new
 * secret is read when the file changes, the old one still verifies for `maxAge`; a missing file
 * refuses deliveries until it appears.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WebhookSecretFile } from '../../src/channels/webhook-secret.js';
import { WebhookSecrets } from '../../src/events/webhook-secrets.js';
import { silentLogger } from '../../src/logger.js';
import { Scrubber } from '../../src/secrets/scrubber.js';
import type { WebhookSpec } from '../../src/config/types.js';
import { request } from 'undici';
import { signWebhook } from '../../src/events/signature.js';
import { oneProjectSeed, startInfisical, tempDir, waitFor } from '../helpers/harness.js';
import { serveSpec } from '../helpers/serve.js';

function webhook(secretFile: string): WebhookSpec {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    path: '/infisical/webhook',
    secretFile,
    maxAgeMs: 60_000,
    allowUnsigned: false,
    payloadValues: 'refetch',
  };
}

/** A started WebhookSecretFile on `path` feeding `secrets`, stopped after the test. */
async function watchSecretFile(
  t: TestContext,
  path: string,
  secrets: WebhookSecrets,
): Promise<WebhookSecretFile> {
  const file = new WebhookSecretFile({ webhook: webhook(path), secrets, logger: silentLogger() });
  t.after(() => file.stop());
  await file.reread();
  file.start();
  return file;
}

test('a Secret volume update (..data swap) rotates the secret without a restart; the old one verifies for maxAge', async (t) => {
  const dir = await tempDir(t);
  // the kubelet layout: <dir>/..2026_a/webhook-secret, ..data → ..2026_a, webhook-secret → ..data/webhook-secret
  await mkdir(join(dir, '..2026_a'));
  await writeFile(join(dir, '..2026_a', 'webhook-secret'), 'whsec-first-1111\n');
  await symlink('..2026_a', join(dir, '..data'));
  await symlink('..data/webhook-secret', join(dir, 'webhook-secret'));
  let now = 1_000_000;
  const secrets = new WebhookSecrets({
    maxAgeMs: 60_000,
    scrubber: new Scrubber(),
    now: () => now,
  });
  await watchSecretFile(t, join(dir, 'webhook-secret'), secrets);
  assert.deepEqual(secrets.candidates(now), ['whsec-first-1111']);

  await mkdir(join(dir, '..2026_b'));
  await writeFile(join(dir, '..2026_b', 'webhook-secret'), 'whsec-second-2222\n');
  await symlink('..2026_b', join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  await waitFor(() => secrets.candidates(now)[0] === 'whsec-second-2222', {
    what: 'the rotated secret to be read',
  });
  assert.deepEqual(secrets.candidates(now), ['whsec-second-2222', 'whsec-first-1111']);
  now += 60_001;
  assert.deepEqual(
    secrets.candidates(now),
    ['whsec-second-2222'],
    'the old one is gone after maxAge',
  );
});

test('a secretFile that is not there yet: no secret, a problem for /status, then it is picked up', async (t) => {
  const dir = await tempDir(t);
  const secrets = new WebhookSecrets({ maxAgeMs: 60_000, scrubber: new Scrubber(), now: Date.now });
  const file = await watchSecretFile(t, join(dir, 'webhook-secret'), secrets);
  assert.equal(secrets.configured, false);
  assert.match(file.problem ?? '', /cannot read webhook\.secretFile .*webhook-secret \(ENOENT\)/);
  await writeFile(join(dir, 'webhook-secret'), 'whsec-late-3333');
  await waitFor(() => secrets.configured, { what: 'the late secret to be read' });
  assert.equal(file.problem, undefined);
});

test('SIGHUP re-reads the secretFile: deliveries signed with the new secret verify, and with the old one for maxAge', async (t) => {
  const dir = await tempDir(t);
  const local = await startInfisical(t, oneProjectSeed({ '/': '{ A: a1 }' }));
  const secretPath = join(dir, 'webhook-secret');
  await writeFile(secretPath, 'whsec-before-hup-1');
  const specFile = join(dir, 'reloader.yaml');
  await writeFile(
    specFile,
    `infisical:
  url: ${local.url}
  auth: { universal: { clientId: cid, clientSecret: csecret-123456 } }
sources: [ { projectId: p1, environment: prod, path: / } ]
webhook: { listen: 127.0.0.1:0, secretFile: ${secretPath}, maxAge: 1m }
admin: { listen: 127.0.0.1:0 }
targets:
  - name: a
    files: [ { contents: "{{secrets.A}}", destination: out/a } ]
`,
  );
  const served = await serveSpec(t, specFile);
  const deliver = async (secret: string): Promise<number> => {
    const ts = Date.now();
    const body = JSON.stringify({
      event: 'secrets.modified',
      project: { workspaceId: 'p1', projectId: 'p1', environment: 'prod', secretPath: '/' },
      timestamp: ts,
    });
    const res = await request(`${served.url}/infisical/webhook`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-infisical-signature': signWebhook(body, secret, ts),
      },
      body,
    });
    await res.body.dump();
    return res.statusCode;
  };
  assert.equal(await deliver('whsec-before-hup-1'), 200);
  assert.equal(await deliver('whsec-after-hup-2'), 401, 'not yet the new secret');
  await writeFile(secretPath, 'whsec-after-hup-2');
  assert.equal(await served.daemon.reload(), true, 'SIGHUP succeeds');
  assert.equal(await deliver('whsec-after-hup-2'), 200, 'the new secret verifies after SIGHUP');
  assert.equal(
    await deliver('whsec-before-hup-1'),
    200,
    'the old one still verifies within maxAge',
  );
  assert.equal(await deliver('whsec-never-was-3'), 401);
});
