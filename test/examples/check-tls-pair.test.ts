/**
 * scripts/check-tls-pair.mjs — the `check:` command of the nginx example (in the image as
 * `infisical-reloader-check-tls`), run as a real process on real PEM files: a good pair passes;
 * a key of another certificate, a chain out of order or from another CA, an expired
 * certificate and unreadable files fail with exit 1 and a reason; no key material is printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertNoSecrets, repoRoot, tempDir } from '../helpers/harness.js';
import { makeCert, newKey, type TestKey } from './x509.js';

const script = join(repoRoot, 'scripts', 'check-tls-pair.mjs');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function check(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The base64 lines of a private key PEM: none of them may ever be printed. */
function keyLines(key: TestKey): string[] {
  return key.pem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));
}

const day = 86_400_000;
const ca = { subject: 'Example Test CA', key: newKey() };
const otherCa = { subject: 'Other Test CA', key: newKey() };
const leafKey = newKey();
const strangerKey = newKey();
const leaf = makeCert({ subject: 'www.example.test', key: leafKey, issuer: ca });
const caCert = makeCert({ subject: ca.subject, key: ca.key });
const otherCaCert = makeCert({ subject: otherCa.subject, key: otherCa.key });

test('check-tls-pair', async (t) => {
  const dir = await tempDir(t, 'rld-tls-');
  const file = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };
  const key = await file('tls.key', leafKey.pem);
  const canaries = [...keyLines(leafKey), ...keyLines(strangerKey)];

  await t.test('a leaf with its chain and its own key passes', async () => {
    const r = await check([await file('full.crt', leaf + caCert), key]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^ok: CN=www\.example\.test; key matches; 1 chain certificate\(s\); expires .+; sha256 [0-9A-F:]{95}\n$/,
    );
    assert.equal(r.stderr, '');
    assertNoSecrets([r.stdout, r.stderr], canaries);
  });

  await t.test('a leaf alone passes', async () => {
    const r = await check([await file('leaf.crt', leaf), key]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /0 chain certificate/);
  });

  await t.test('the key of another certificate fails', async () => {
    const r = await check([
      await file('leaf2.crt', leaf),
      await file('stranger.key', strangerKey.pem),
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /the key in .*stranger\.key does not match the certificate \(CN=www\.example\.test\)/,
    );
    assert.equal(r.stdout, '');
    assertNoSecrets([r.stdout, r.stderr], canaries);
  });

  await t.test('a chain written CA first fails and says to put the leaf first', async () => {
    const r = await check([await file('reversed.crt', caCert + leaf), key]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /it matches certificate #2: put the leaf first/);
  });

  await t.test('a chain certificate of another CA fails', async () => {
    const r = await check([await file('foreign.crt', leaf + otherCaCert), key]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /certificate #1 in .* is not issued by certificate #2/);
  });

  await t.test('an expired certificate fails', async () => {
    const expired = makeCert({
      subject: 'old.example.test',
      key: leafKey,
      notBefore: new Date(Date.now() - 60 * day),
      notAfter: new Date(Date.now() - day),
    });
    const r = await check([await file('expired.crt', expired), key]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the certificate expired on /);
  });

  await t.test('a certificate valid only from tomorrow passes with a warning', async () => {
    const early = makeCert({
      subject: 'early.example.test',
      key: leafKey,
      notBefore: new Date(Date.now() + day),
      notAfter: new Date(Date.now() + 30 * day),
    });
    const r = await check([await file('early.crt', early), key]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: the certificate is valid only from /);
  });

  await t.test(
    'unreadable inputs fail with exit 1 and name the file, not its contents',
    async () => {
      const garbage = await file('garbage.pem', 'not a pem file\n');
      const missing = join(dir, 'missing.key');
      const cases: Array<[string[], RegExp]> = [
        [[garbage, key], /garbage\.pem holds no PEM certificate/],
        [[await file('l3.crt', leaf), garbage], /garbage\.pem does not hold a PEM private key/],
        [
          [await file('l4.crt', leaf), missing],
          /cannot read the key file .*missing\.key \(ENOENT\)/,
        ],
        [
          [
            await file(
              'broken.crt',
              '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
            ),
            key,
          ],
          /certificate #1 in .*broken\.crt does not parse/,
        ],
      ];
      for (const [args, reason] of cases) {
        const r = await check(args);
        assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, reason);
      }
      // A private key passed as the certificate is not echoed back.
      const swapped = await check([key, key]);
      assert.equal(swapped.code, 1);
      assertNoSecrets([swapped.stdout, swapped.stderr], canaries);
    },
  );

  await t.test('wrong arguments are a usage error (exit 2)', async () => {
    for (const args of [[], [key], ['--help', key], [key, key, key]]) {
      const r = await check(args);
      assert.equal(r.code, 2, `args ${JSON.stringify(args)}`);
      assert.match(r.stderr, /usage: check-tls-pair CERT_FILE KEY_FILE/);
    }
  });
});
