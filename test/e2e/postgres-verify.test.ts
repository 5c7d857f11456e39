/**
 * `verify` catches a reload that exits 0 without taking effect: PostgreSQL with ssl=on serves a
 * certificate/key pair rendered as an `atomic: set`; `pg_ctl reload` exits 0 even when the new
 * pair does not load (here: a certificate that does not match the key, which no `check` is
 * configured to catch) and PostgreSQL keeps serving the old certificate. `verify: { tls, startTls:
 * postgres }` sees the old certificate, the set is swapped back, PostgreSQL reloaded again, and
 * /status and /metrics say RLD_ERR_VERIFY.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chown, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { servedCertificate } from '../../src/reload/verify.js';
import { assertNoSecrets, waitFor } from '../helpers/harness.js';
import {
  postgresDir,
  postgresIds,
  psql,
  requireBinaries,
  requireRoot,
  selfSigned,
  startPostgres,
} from './helpers.js';
import { startFilesRig } from './files-rig.js';

test('PostgreSQL ssl=on: a pair it refuses on reload (pg_ctl reload exits 0) is caught by verify tls and rolled back', async (t) => {
  const bins = requireBinaries(t, ['initdb', 'pg_ctl', 'psql', 'runuser']);
  if (!bins || !requireRoot(t)) return;
  const b = bins as Record<'initdb' | 'pg_ctl' | 'psql' | 'runuser', string>;
  const pg = await startPostgres(t, b);
  const certDir = await postgresDir(t, 'rld-e2e-pgssl-');
  const { uid, gid } = await postgresIds();
  const [v0, v1, v2] = await Promise.all(['v0', 'v1', 'v2'].map((cn) => selfSigned(pg.dir, cn)));
  if (!v0 || !v1 || !v2) throw new Error('no certificates');
  // PostgreSQL starts TLS on v0, as plain files (the reloader turns them into a set)
  for (const [name, text] of [
    ['tls.crt', v0.cert],
    ['tls.key', v0.key],
  ] as const) {
    await writeFile(join(certDir, name), text, { mode: 0o600 });
    await chown(join(certDir, name), uid, gid);
  }
  const on = await psql(
    b.psql,
    pg.admin,
    `alter system set ssl_cert_file = '${certDir}/tls.crt';
alter system set ssl_key_file = '${certDir}/tls.key';
alter system set ssl = on;
select pg_reload_conf();
`,
  );
  assert.equal(on.code, 0, on.stderr);
  const served = async (): Promise<string> => {
    const der = await servedCertificate(
      { host: '127.0.0.1', port: pg.port, startTls: 'postgres' },
      3000,
    );
    return new X509Certificate(der).subject;
  };
  await waitFor(async () => (await served().catch(() => '')) === 'CN=v0', {
    what: 'PostgreSQL to serve v0 over TLS',
    timeoutMs: 10_000,
  });

  const reload = [
    b.runuser,
    '-u',
    'postgres',
    '--',
    b.pg_ctl,
    '-D',
    join(pg.dir, 'data'),
    'reload',
  ];
  const rig = await startFilesRig(
    t,
    { TLS_CERT: v1.cert, TLS_KEY: v1.key },
    () => `  - name: pg-tls
    atomic: set
    files:
      - { contents: "{{secrets.TLS_CERT}}", destination: ${certDir}/tls.crt, mode: "0600", uid: ${uid}, gid: ${gid} }
      - { contents: "{{secrets.TLS_KEY}}", destination: ${certDir}/tls.key, mode: "0600", uid: ${uid}, gid: ${gid} }
    reload: { command: ${JSON.stringify(reload)} }
    verify:
      tls: { address: "127.0.0.1:${pg.port}", startTls: postgres }
      attempts: 10
      interval: 200ms
      timeout: 3s
`,
  );
  const first = await rig.daemon.target('pg-tls');
  assert.equal(first?.lastStatus, 'committed', first?.lastError?.message);
  assert.equal(await served(), 'CN=v1', 'the first pass: PostgreSQL took v1, verify passed');
  const goodData = await readlink(join(certDir, '..data'));
  assert.equal(await readlink(join(certDir, 'tls.crt')), '..data/tls.crt');

  // v2's certificate with v1's key: PostgreSQL's reload keeps v1 and pg_ctl still exits 0
  rig.rotate({ TLS_CERT: v2.cert });
  const state = await waitFor(
    async () => {
      const s = await rig.daemon.target('pg-tls');
      return s?.lastError?.code === 'RLD_ERR_VERIFY' ? s : undefined;
    },
    { what: '/status to say RLD_ERR_VERIFY', timeoutMs: 20_000 },
  );
  assert.match(
    state.lastError?.message ?? '',
    /serves certificate .*, not the rendered .*; the previous files were put back and reloaded \(ok\)/,
  );
  assert.equal(state.lastReload?.status, 'ok', 'pg_ctl reload exited 0 both times');
  assert.equal(
    await readlink(join(certDir, '..data')),
    goodData,
    'one swap back to the last good set',
  );
  assert.equal(await readFile(join(certDir, 'tls.crt'), 'utf8'), v1.cert);
  assert.equal(await served(), 'CN=v1', 'PostgreSQL still serves v1');
  const log = await readFile(join(pg.dir, 'postgres.log'), 'utf8');
  assert.match(
    log,
    /private key does not match the certificate|key values mismatch/,
    'PostgreSQL refused the pair',
  );
  const metrics = await rig.daemon.metrics();
  assert.match(metrics, /reloader_verifications_total\{target="pg-tls",outcome="failed"\} 1\b/);
  assert.match(metrics, /reloader_target_error\{target="pg-tls",code="RLD_ERR_VERIFY"\} 1\b/);
  assert.match(metrics, /reloader_target_up\{target="pg-tls"\} 0\b/);
  const output = await rig.daemon.stop();
  assert.match(output, /verify failed; rolled back to the last good files/);
  assertNoSecrets(
    [output, JSON.stringify(state), metrics],
    [...v1.keyLines, ...v2.keyLines, ...rig.canaries],
  );
});
