/**
 * A PKCS#12 keystore for a real Java TLS server: the shipped target fragment
 * (templates/java/keystore-target.yaml) renders keystore.p12 and keystore.pass from TLS_CERT,
 * TLS_KEY and KEYSTORE_PASSWORD as one set; the JDK's `keytool -list` reads the keystore;
 * examples/java-tls/TlsServer.java (compiled with javac here) serves TLS from it, and after a
 * rotation (EC → RSA) and its SIGHUP a fresh handshake sees the new certificate — same pid.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertNoSecrets, repoRoot, tempDir, waitFor } from '../helpers/harness.js';
import { requireBinaries, run, selfSigned, spawnCollect, stopPid, tlsPeer } from './helpers.js';
import { startFilesRig } from './files-rig.js';

test('Java TLS server on a rendered PKCS#12 keystore: keytool reads it; a rotation reaches a handshake by SIGHUP', async (t) => {
  const bins = requireBinaries(t, ['java', 'javac', 'keytool', 'openssl']);
  if (!bins) return;
  const b = bins as Record<'java' | 'javac' | 'keytool', string>;
  const password = `canary-ks-${randomBytes(6).toString('hex')}`;
  const certs = await tempDir(t, 'rld-e2e-certs-');
  const v1 = await selfSigned(certs, 'v1'); // EC P-256
  const v2 = await selfSigned(certs, 'v2', 'rsa');
  const fragment = await readFile(join(repoRoot, 'templates/java/keystore-target.yaml'), 'utf8');
  const rig = await startFilesRig(
    t,
    { TLS_CERT: v1.cert, TLS_KEY: v1.key, KEYSTORE_PASSWORD: password },
    () => fragment,
    { KEYSTORE_DIR: 'tls', APP_PID_FILE: 'app.pid' },
  );
  const { dir } = rig;
  const keystore = join(dir, 'tls/keystore.p12');
  const list = await run(
    b.keytool,
    ['-list', '-keystore', keystore, '-storetype', 'PKCS12', '-storepass:env', 'KS_PW'],
    {
      env: { ...process.env, KS_PW: password },
    },
  );
  assert.equal(list.code, 0, `keytool -list: ${list.stderr}`);
  assert.match(list.stdout, /^server, .*PrivateKeyEntry,/m);
  assert.match(list.stdout, /Your keystore contains 1 entry/);

  const classes = join(dir, 'classes');
  const javac = await run(
    b.javac,
    ['-nowarn', '-d', classes, join(repoRoot, 'examples/java-tls/TlsServer.java')],
    {
      timeoutMs: 120_000,
    },
  );
  assert.equal(javac.code, 0, `javac: ${javac.stderr}`);
  const app = spawnCollect(
    b.java,
    [
      '-cp',
      classes,
      'TlsServer',
      '--keystore',
      'tls/keystore.p12',
      '--password-file',
      'tls/keystore.pass',
      '--port',
      '0',
      '--pid-file',
      'app.pid',
    ],
    { cwd: dir },
  );
  t.after(async () => {
    if (app.child.pid !== undefined) await stopPid(app.child.pid, 'SIGTERM', 5000);
    await Promise.race([app.exited, new Promise((r) => setTimeout(r, 2000))]);
  });
  const port = await waitFor(
    () => {
      if (app.child.exitCode !== null) throw new Error(`TlsServer exited: ${app.output()}`);
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(app.output());
      return m ? Number(m[1]) : undefined;
    },
    { what: 'TlsServer to listen', timeoutMs: 60_000 },
  );
  assert.equal(
    (await tlsPeer(port)).cn,
    'v1',
    'the server serves the EC certificate from the keystore',
  );
  assert.match(app.output(), /loaded CN=v1/);

  const started = performance.now();
  rig.rotate({ TLS_CERT: v2.cert, TLS_KEY: v2.key });
  await waitFor(async () => (await tlsPeer(port).catch(() => ({ cn: '' }))).cn === 'v2', {
    what: 'a handshake to see v2',
    timeoutMs: 20_000,
    intervalMs: 50,
  }).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; app: ${app.output()}`);
  });
  t.diagnostic(
    `rotation → first handshake with the RSA certificate: ${(performance.now() - started).toFixed(0)} ms`,
  );
  assert.match(app.output(), /reloaded CN=v2/);
  assert.equal(
    Number((await readFile(join(dir, 'app.pid'), 'utf8')).trim()),
    app.child.pid,
    'same process',
  );
  const state = await rig.daemon.target('java-keystore');
  assert.equal(state?.lastReload?.status, 'ok');
  assert.equal(state?.lastStatus, 'committed');
  const output = await rig.daemon.stop();
  assertNoSecrets(
    [output, app.output(), JSON.stringify(state), list.stdout],
    [password, ...v1.keyLines, ...v2.keyLines, ...rig.canaries],
  );
});
