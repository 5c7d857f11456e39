/**
 * `pkcs12:` files through real passes: RSA and EC keys, a chain, what OpenSSL reads back out of
 * the keystore, unchanged inputs → identical bytes (no write, no reload), and a bad input is a
 * render error naming the file that never writes and never shows the password.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { makeCert, newKey } from '../examples/x509.js';
import { requireBinary, run } from '../e2e/process.js';
import { COUNTING_RELOAD, passRig } from './pass.js';

const PASSWORD = 'canary-p12-password-4f1d';

const spec = () => `targets:
  - name: ks
    ${COUNTING_RELOAD}
    files:
      - pkcs12:
          certificate: "{{secrets.CRT}}"
          key: "{{secrets.KEY}}"
          chain: "{{default secrets.CHAIN \\"\\"}}"
          password: "{{secrets.PW}}"
        destination: out/keystore.p12
`;

/** Every certificate in the keystore (leaf first) and whether a private key is in it, by openssl. */
async function opensslRead(openssl: string, file: string, password: string) {
  const env = { ...process.env, P12_PW: password };
  const certs = await run(openssl, ['pkcs12', '-in', file, '-passin', 'env:P12_PW', '-nokeys'], {
    env,
  });
  assert.equal(certs.code, 0, `openssl reads the keystore: ${certs.stderr}`);
  const keys = await run(
    openssl,
    ['pkcs12', '-in', file, '-passin', 'env:P12_PW', '-nocerts', '-nodes'],
    { env },
  );
  assert.equal(keys.code, 0, keys.stderr);
  const pems =
    certs.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return {
    subjects: pems.map((p) => new X509Certificate(p).subject),
    friendlyName: /friendlyName: (.*)/.exec(certs.stdout)?.[1],
    key: /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(keys.stdout)?.[0],
  };
}

test('pkcs12: an EC key with a chain, and an RSA key; OpenSSL reads back the certificates and the key', async (t) => {
  const openssl = requireBinary(t, 'openssl');
  if (!openssl) return;
  const rig = await passRig(t, spec);
  const caKey = newKey();
  const ca = makeCert({ subject: 'test-ca', key: caKey });
  const leafKey = newKey();
  const leaf = makeCert({
    subject: 'ec-leaf',
    key: leafKey,
    issuer: { subject: 'test-ca', key: caKey },
  });
  const first = await rig.pass({ CRT: leaf, KEY: leafKey.pem, CHAIN: ca, PW: PASSWORD });
  assert.equal(first.status, 'committed', first.error?.message);
  const file = join(rig.dir, 'out/keystore.p12');
  assert.equal((await fsp.stat(file)).mode & 0o777, 0o600);
  const ec = await opensslRead(openssl, file, PASSWORD);
  assert.deepEqual(ec.subjects, ['CN=ec-leaf', 'CN=test-ca']);
  assert.equal(ec.friendlyName, 'ks', 'friendlyName defaults to the target name');
  assert.equal(ec.key?.replace(/\s/g, ''), leafKey.pem.trim().replace(/\s/g, ''));
  const wrong = await run(openssl, ['pkcs12', '-in', file, '-passin', 'pass:wrong', '-nokeys']);
  assert.notEqual(wrong.code, 0, 'the MAC refuses another password');

  const dir = rig.dir;
  const rsa = await run(openssl, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=rsa-leaf',
    '-keyout',
    join(dir, 'rsa.key'),
    '-out',
    join(dir, 'rsa.crt'),
  ]);
  assert.equal(rsa.code, 0, rsa.stderr);
  const rsaKey = await fsp.readFile(join(dir, 'rsa.key'), 'utf8');
  await rig.pass({
    CRT: await fsp.readFile(join(dir, 'rsa.crt'), 'utf8'),
    KEY: rsaKey,
    PW: PASSWORD,
  });
  const read = await opensslRead(openssl, file, PASSWORD);
  assert.deepEqual(read.subjects, ['CN=rsa-leaf']);
  assert.equal(read.key?.replace(/\s/g, ''), rsaKey.trim().replace(/\s/g, ''));
});

test('pkcs12: unchanged inputs write nothing and reload nothing; a new password is a change', async (t) => {
  const rig = await passRig(t, spec);
  const key = newKey();
  const crt = makeCert({ subject: 'same', key });
  const secrets = { CRT: crt, KEY: key.pem, PW: PASSWORD };
  await rig.pass(secrets);
  const file = join(rig.dir, 'out/keystore.p12');
  const before = await fsp.readFile(file);
  const st = await fsp.stat(file);
  for (let i = 0; i < 3; i++) assert.equal((await rig.pass(secrets)).status, 'unchanged');
  assert.equal((await fsp.stat(file)).ino, st.ino, 'not rewritten');
  assert.equal(await rig.reloads(), 1);
  const changed = await rig.pass({ ...secrets, PW: `${PASSWORD}-2` });
  assert.equal(changed.status, 'committed');
  assert.notDeepEqual(await fsp.readFile(file), before, 'salts and IV follow the inputs');
  assert.equal(await rig.reloads(), 2);
});

test("pkcs12: a key that is not the certificate's, or no certificate, is a render error naming the file; nothing written; no password in any line", async (t) => {
  const rig = await passRig(t, spec);
  const key = newKey();
  const crt = makeCert({ subject: 'good', key });
  await rig.pass({ CRT: crt, KEY: key.pem, PW: PASSWORD });
  const file = join(rig.dir, 'out/keystore.p12');
  const good = await fsp.readFile(file);
  const cases = [
    [
      { CRT: crt, KEY: newKey().pem, PW: PASSWORD },
      /pkcs12\.key does not belong to pkcs12\.certificate/,
    ],
    [
      { CRT: 'not a pem', KEY: key.pem, PW: PASSWORD },
      /pkcs12\.certificate holds no PEM certificate/,
    ],
    [{ CRT: crt, KEY: 'garbage', PW: PASSWORD }, /pkcs12\.key is not a PEM private key/],
  ] as const;
  for (const [secrets, message] of cases) {
    const result = await rig.pass(secrets);
    assert.equal(result.error?.code, 'RLD_ERR_RENDER');
    assert.match(result.error?.message ?? '', message);
    assert.match(result.error?.message ?? '', /targets\[0\]\.files\[0\]\.pkcs12/);
    assert.deepEqual(await fsp.readFile(file), good, 'the old keystore stays');
  }
  assert.ok(rig.lines.length > 0);
  for (const line of rig.lines)
    assert.ok(!line.includes(PASSWORD), `no password in: ${line.slice(0, 200)}`);
});
