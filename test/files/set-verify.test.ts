/**
 * `atomic: set` (the kubelet layout, one rename per version, one swap back on a failed check)
 * and `verify` (after the reload; a failure puts the last good files back and reloads again,
 * RLD_ERR_VERIFY) through real passes.
 */
import { test, type TestContext } from 'node:test';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { join } from 'node:path';
import { removeCrashLeftovers } from '../../src/output/cleanup.js';
import { makeCert, newKey } from '../examples/x509.js';
import { COUNTING_RELOAD, passRig } from './pass.js';

const DATA_DIR = /^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{3}\.[0-9a-f]{8}$/;

const setSpec =
  (extra = ''): ((dir: string) => string) =>
  () =>
    `targets:
  - name: pair
    atomic: set
    ${COUNTING_RELOAD}
${extra}    files:
      - { contents: "crt={{secrets.V}}\\n", destination: out/tls.crt, mode: "0644" }
      - { contents: "key={{secrets.V}}\\n", destination: out/tls.key }
`;

async function layout(dir: string): Promise<{ data: string; dirs: string[]; links: string[] }> {
  const out = join(dir, 'out');
  const names = await fsp.readdir(out);
  return {
    data: await fsp.readlink(join(out, '..data')),
    dirs: names.filter((n) => DATA_DIR.test(n)).sort(),
    links: await Promise.all(['tls.crt', 'tls.key'].map((n) => fsp.readlink(join(out, n)))),
  };
}

/** Listen on 127.0.0.1 port 0 (closed after the test); the port. */
async function listenLocal(t: TestContext, server: Server | TlsServer): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as AddressInfo).port;
}

const read = (dir: string, name: string) => fsp.readFile(join(dir, 'out', name), 'utf8');

test('atomic: set — a hidden data dir per version, one ..data symlink, destinations link into it; old dirs removed', async (t) => {
  const rig = await passRig(t, setSpec());
  assert.equal((await rig.pass({ V: '1' })).status, 'committed');
  const first = await layout(rig.dir);
  assert.deepEqual(first.links, ['..data/tls.crt', '..data/tls.key']);
  assert.deepEqual(first.dirs, [first.data], 'one data directory, the live one');
  assert.equal(await read(rig.dir, 'tls.crt'), 'crt=1\n');
  const modes = await Promise.all(
    ['tls.crt', 'tls.key'].map(async (n) => (await fsp.stat(join(rig.dir, 'out', n))).mode & 0o777),
  );
  assert.deepEqual(modes, [0o644, 0o600]);

  const same = await rig.pass({ V: '1' });
  assert.equal(same.status, 'unchanged');
  assert.equal((await layout(rig.dir)).data, first.data, 'unchanged: no new data dir');

  const second = await rig.pass({ V: '2' });
  assert.equal(second.status, 'committed');
  const now = await layout(rig.dir);
  assert.notEqual(now.data, first.data);
  assert.deepEqual(now.dirs, [now.data], 'the previous data dir is removed after the swap');
  assert.equal(await read(rig.dir, 'tls.key'), 'key=2\n');
  assert.equal(await rig.reloads(), 2);
});

test('atomic: set over plain files of an earlier version turns them into links without a visible change', async (t) => {
  const rig = await passRig(t, setSpec());
  await fsp.mkdir(join(rig.dir, 'out'));
  await fsp.writeFile(join(rig.dir, 'out/tls.crt'), 'crt=0\n');
  await fsp.writeFile(join(rig.dir, 'out/tls.key'), 'key=0\n');
  await rig.pass({ V: '1' });
  const now = await layout(rig.dir);
  assert.deepEqual(now.links, ['..data/tls.crt', '..data/tls.key']);
  assert.equal(await read(rig.dir, 'tls.crt'), 'crt=1\n');
  assert.deepEqual(now.dirs, [now.data]);
});

test('atomic: set — a failed check is one swap back; crash leftovers are removed by the next commit', async (t) => {
  const rig = await passRig(
    t,
    setSpec(
      `    check: { command: [sh, -c, "grep -q 'crt=bad' out/tls.crt && exit 1 || exit 0"] }\n`,
    ),
  );
  await rig.pass({ V: 'good' });
  const before = await layout(rig.dir);
  const failed = await rig.pass({ V: 'bad' });
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error?.code, 'RLD_ERR_CHECK');
  const after = await layout(rig.dir);
  assert.equal(after.data, before.data, '..data names the old directory again');
  assert.deepEqual(after.dirs, [before.data], 'the rejected data dir is removed');
  assert.equal(await read(rig.dir, 'tls.crt'), 'crt=good\n');
  assert.equal(await rig.reloads(), 1, 'no reload after a failed check');

  // what a killed run leaves: a data dir ..data never named, a half-made ..data_tmp link
  const out = join(rig.dir, 'out');
  await fsp.mkdir(join(out, '..2020_01_01_00_00_00.000.deadbeef'));
  await fsp.writeFile(join(out, '..2020_01_01_00_00_00.000.deadbeef/tls.crt'), 'torn');
  await fsp.symlink('..2020_01_01_00_00_00.000.deadbeef', join(out, '..data_tmp'));
  await rig.pass({ V: 'good' }); // unchanged: still cleans up under the lock
  const names = await fsp.readdir(out);
  assert.deepEqual(names.filter((n) => n.startsWith('..')).sort(), ['..data', before.data].sort());
  assert.ok(rig.lines.some((l) => l.includes('removed what a crash left of a file set')));
});

test('atomic: set — the start-up clean-up (removeCrashLeftovers) removes unfinished data dirs under the lock', async (t) => {
  const rig = await passRig(t, setSpec());
  await rig.pass({ V: '1' });
  const out = join(rig.dir, 'out');
  const live = await fsp.readlink(join(out, '..data'));
  await fsp.mkdir(join(out, '..2021_02_03_04_05_06.007.0badc0de'));
  await fsp.symlink('..2021_02_03_04_05_06.007.0badc0de', join(out, '..data_tmp'));
  const removed = await removeCrashLeftovers(rig.target.spec.files.map((f) => f.destination));
  assert.equal(removed, 2);
  const left = (await fsp.readdir(out)).filter((n) => n.startsWith('..')).sort();
  assert.deepEqual(left, ['..data', live].sort());
  assert.equal(await read(rig.dir, 'tls.crt'), 'crt=1\n', 'the live set is untouched');
});

for (const atomic of ['', 'set'] as const) {
  test(`verify command${atomic ? ' (atomic: set)' : ''}: a failure puts the last good files back, reloads again, RLD_ERR_VERIFY`, async (t) => {
    const rig = await passRig(
      t,
      () => `targets:
  - name: app
${atomic ? '    atomic: set\n' : ''}    ${COUNTING_RELOAD}
    verify: { command: [sh, -c, "! grep -q broken out/app.conf"], attempts: 2, interval: 10ms }
    files:
      - { contents: "v={{secrets.V}}\\n", destination: out/app.conf }
`,
    );
    const ok = await rig.pass({ V: 'one' });
    assert.equal(ok.status, 'committed');
    assert.equal(ok.verify?.ok, true);
    assert.equal(await rig.reloads(), 1);
    const hashBefore = rig.state.files[join(rig.dir, 'out/app.conf')];
    const bad = await rig.pass({ V: 'broken' });
    assert.equal(bad.status, 'failed');
    assert.equal(bad.error?.code, 'RLD_ERR_VERIFY');
    assert.match(
      bad.error?.message ?? '',
      /verify failed after 2 attempt\(s\): sh exited 1; the previous files were put back and reloaded \(ok\)/,
    );
    assert.equal(await fsp.readFile(join(rig.dir, 'out/app.conf'), 'utf8'), 'v=one\n');
    assert.equal(
      await rig.reloads(),
      3,
      'the reload of the new files, then the reload of the old ones',
    );
    assert.equal(rig.state.lastError?.code, 'RLD_ERR_VERIFY');
    assert.equal(rig.state.lastVerify?.ok, false);
    assert.equal(
      rig.state.files[join(rig.dir, 'out/app.conf')],
      hashBefore,
      '/status shows the files on disk',
    );
    if (atomic)
      assert.deepEqual(
        (await fsp.readdir(join(rig.dir, 'out'))).filter((n) => DATA_DIR.test(n)).length,
        1,
      );
    // the next change that the app does take goes through
    assert.equal((await rig.pass({ V: 'two' })).status, 'committed');
    assert.equal(rig.state.lastError, undefined);
  });
}

test('verify http: the status must match; a wrong one rolls back', async (t) => {
  let answer = 200;
  const server = createServer((_req, res) => res.writeHead(answer).end());
  const port = await listenLocal(t, server);
  const rig = await passRig(
    t,
    () => `targets:
  - name: app
    ${COUNTING_RELOAD}
    verify: { http: { url: "http://127.0.0.1:${port}/healthz", status: 200 }, attempts: 1, timeout: 2s }
    files:
      - { contents: "v={{secrets.V}}\\n", destination: out/app.conf }
`,
  );
  assert.equal((await rig.pass({ V: '1' })).status, 'committed');
  answer = 503;
  const bad = await rig.pass({ V: '2' });
  assert.equal(bad.error?.code, 'RLD_ERR_VERIFY');
  assert.match(
    bad.error?.message ?? '',
    /GET http:\/\/127\.0\.0\.1:\d+\/healthz answered 503, not 200/,
  );
  assert.equal(await fsp.readFile(join(rig.dir, 'out/app.conf'), 'utf8'), 'v=1\n');
});

test('verify tls: the certificate served must be the rendered one', async (t) => {
  const key = newKey();
  const served = makeCert({ subject: 'served', key });
  const other = makeCert({ subject: 'other', key });
  const server = createTlsServer({ cert: served, key: key.pem }, (s) => s.end());
  server.on('tlsClientError', () => undefined);
  const port = await listenLocal(t, server);
  const rig = await passRig(
    t,
    () => `targets:
  - name: tls
    ${COUNTING_RELOAD}
    verify: { tls: { address: "127.0.0.1:${port}", serverName: localhost }, attempts: 2, interval: 10ms }
    files:
      - { contents: "{{secrets.CRT}}", destination: out/tls.crt }
`,
  );
  const ok = await rig.pass({ CRT: served });
  assert.equal(ok.status, 'committed', ok.error?.message);
  assert.match(ok.verify?.detail ?? '', /serves the rendered certificate/);
  const bad = await rig.pass({ CRT: other });
  assert.equal(bad.error?.code, 'RLD_ERR_VERIFY');
  assert.match(
    bad.error?.message ?? '',
    /serves certificate [0-9A-F:]+…, not the rendered [0-9A-F:]+…/,
  );
  assert.equal(await fsp.readFile(join(rig.dir, 'out/tls.crt'), 'utf8'), served);
});
