/**
 * `encoding: base64` and `reloadOnChange: false` through real passes: the decoded bytes are
 * what lands on disk, a render that is not base64 writes nothing and names the file, and a
 * change to a file that does not ask for a reload is written without one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { parseSpec } from '../../src/config/load.js';
import { SpecError } from '../../src/errors.js';
import { COUNTING_RELOAD, SPEC_ENV, passRig } from './pass.js';

const spec =
  (files: string, extra = ''): ((dir: string) => string) =>
  () =>
    `targets:\n  - name: app\n    ${COUNTING_RELOAD}\n${extra}    files:\n${files}`;

test('encoding: base64 writes the decoded bytes (binary, any byte), and only a change writes', async (t) => {
  const rig = await passRig(
    t,
    spec(
      `      - contents: "{{secrets.DER}}"\n        destination: out/cert.der\n        encoding: base64\n`,
    ),
  );
  const bytes = Buffer.concat([Buffer.from([0, 0xff, 0x80, 0x0a, 0x0d]), randomBytes(3000)]);
  // a base64 value as Infisical holds it: wrapped in 64-column lines
  const wrapped = bytes.toString('base64').replace(/.{64}/g, '$&\n');
  const first = await rig.pass({ DER: wrapped });
  assert.equal(first.status, 'committed', first.error?.message);
  assert.deepEqual(await fsp.readFile(join(rig.dir, 'out/cert.der')), bytes);
  const again = await rig.pass({ DER: bytes.toString('base64') });
  assert.equal(again.status, 'unchanged', 'same bytes in another wrapping: no write');
  const urlSafe = randomBytes(100);
  assert.equal((await rig.pass({ DER: urlSafe.toString('base64url') })).status, 'committed');
  assert.deepEqual(await fsp.readFile(join(rig.dir, 'out/cert.der')), urlSafe);
  assert.equal(await rig.reloads(), 2);
});

test('a render that is not valid base64 is a render error naming the file; nothing is written', async (t) => {
  const rig = await passRig(
    t,
    spec(
      `      - contents: "v={{secrets.V}}\\n"\n        destination: out/a.conf\n` +
        `      - contents: "{{secrets.DER}}"\n        destination: out/cert.der\n        encoding: base64\n`,
    ),
  );
  assert.equal((await rig.pass({ V: '1', DER: 'AAEC' })).status, 'committed');
  for (const bad of ['AAE*', 'AAECA', 'AA=C', 'not base64!', 'AAEC===']) {
    const result = await rig.pass({ V: '2', DER: bad });
    assert.equal(result.status, 'failed', `"${bad}" is refused`);
    assert.equal(result.error?.code, 'RLD_ERR_RENDER');
    assert.match(
      result.error?.message ?? '',
      /targets\[0\]\.files\[1\]\.contents: .*not valid base64/,
    );
    assert.doesNotMatch(result.error?.message ?? '', new RegExp(bad.replace(/[*!=]/g, '\\$&')));
    assert.equal(await fsp.readFile(join(rig.dir, 'out/a.conf'), 'utf8'), 'v=1\n', 'old file kept');
    assert.deepEqual(await fsp.readFile(join(rig.dir, 'out/cert.der')), Buffer.from([0, 1, 2]));
  }
  assert.equal(await rig.reloads(), 1, 'no reload after a failed render');
});

test('reloadOnChange: false — a change to that file alone is written without a reload', async (t) => {
  const rig = await passRig(
    t,
    spec(
      `      - contents: "main={{secrets.MAIN}}\\n"\n        destination: out/main.conf\n` +
        `      - contents: "note={{secrets.NOTE}}\\n"\n        destination: out/note.txt\n        reloadOnChange: false\n`,
    ),
  );
  await rig.pass({ MAIN: 'a', NOTE: 'x' });
  assert.equal(await rig.reloads(), 1, 'the first render reloads (main.conf was written)');
  const quiet = await rig.pass({ MAIN: 'a', NOTE: 'y' });
  assert.equal(quiet.status, 'committed');
  assert.deepEqual(quiet.written, [join(rig.dir, 'out/note.txt')]);
  assert.equal(quiet.reload, undefined);
  assert.equal(await fsp.readFile(join(rig.dir, 'out/note.txt'), 'utf8'), 'note=y\n');
  assert.equal(await rig.reloads(), 1, 'no reload for note.txt alone');
  await rig.pass({ MAIN: 'b', NOTE: 'z' });
  assert.equal(await rig.reloads(), 2, 'a change to main.conf (with note.txt) reloads once');
});

test('spec rules: encoding on a pkcs12 file, atomic: set across folders, verify without reload', () => {
  const bad = [
    [
      `targets:\n  - name: a\n    files:\n      - pkcs12: { certificate: c, key: k, password: p }\n        destination: /x/ks.p12\n        encoding: base64\n`,
      /pkcs12 file is binary already/,
    ],
    [
      `targets:\n  - name: a\n    atomic: set\n    files:\n      - { contents: x, destination: /x/a }\n      - { contents: y, destination: /y/b }\n`,
      /atomic: set needs every file of the target in one directory \(\/x\)/,
    ],
    [
      `targets:\n  - name: a\n    verify: { command: [check-app] }\n    files:\n      - { contents: x, destination: /x/a }\n`,
      /verify runs after the reload/,
    ],
    [
      `targets:\n  - name: a\n    files:\n      - { contents: x, template: t.hbs, destination: /x/a }\n`,
      /exactly one of template, contents, pkcs12/,
    ],
  ] as const;
  for (const [yaml, message] of bad) {
    assert.throws(
      () => parseSpec(yaml, '/tmp/reloader.yaml', SPEC_ENV),
      (err: unknown) => err instanceof SpecError && message.test(err.message),
      yaml,
    );
  }
});
