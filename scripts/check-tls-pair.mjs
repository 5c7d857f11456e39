#!/usr/bin/env node
// check-tls-pair CERT KEY — a `check:` command for TLS targets (shipped in the image as
// `infisical-reloader-check-tls`). It runs inside the reloader's container, which has no nginx
// binary, and answers the question `nginx -t` would have answered about a rendered pair:
//
//   1. CERT holds one or more PEM certificates (the leaf first, then its chain) and KEY one
//      PEM private key, and both parse;
//   2. KEY is the private key of the leaf certificate (X509Certificate.checkPrivateKey);
//   3. each certificate of the chain is issued and signed by the next one (order matters:
//      nginx sends the chain as written);
//   4. the leaf has not expired (a certificate that is not valid yet is only a warning: a
//      clock a little behind the issuer's must not block a rotation).
//
// Exit 0: the pair is good (one line on stdout). Exit 1: the pair is bad; one line on stderr
// says why, and the reloader puts the previous pair back and does not reload. Exit 2: usage.
// Nothing from KEY is ever printed: only subjects, dates and SHA-256 fingerprints, which are
// public parts of a certificate.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Exit with `code` after one line on stderr. */
function fail(code, message) {
  process.stderr.write(`check-tls-pair: ${message}\n`);
  process.exit(code);
}

/** File contents, or exit 1 naming the file and the OS error code (never the contents). */
function read(file, what) {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    return fail(1, `cannot read the ${what} ${file} (${err.code ?? 'error'})`);
  }
}

const args = process.argv.slice(2);
if (args.length !== 2 || args[0].startsWith('-')) {
  fail(2, 'usage: check-tls-pair CERT_FILE KEY_FILE');
}
const [certFile, keyFile] = args;

// (1)
const blocks = read(certFile, 'certificate file').match(PEM_CERT) ?? [];
if (blocks.length === 0) fail(1, `${certFile} holds no PEM certificate`);
const certs = blocks.map((pem, i) => {
  try {
    return new X509Certificate(pem);
  } catch {
    return fail(1, `certificate #${i + 1} in ${certFile} does not parse`);
  }
});
let key;
try {
  key = createPrivateKey(read(keyFile, 'key file'));
} catch {
  // The parser's message can quote the input; say only what is wrong.
  fail(1, `${keyFile} does not hold a PEM private key (or it is encrypted)`);
}
const leaf = certs[0];

// (2)
if (!leaf.checkPrivateKey(key)) {
  const other = certs.findIndex((cert) => cert.checkPrivateKey(key));
  const hint = other > 0 ? `; it matches certificate #${other + 1}: put the leaf first` : '';
  fail(1, `the key in ${keyFile} does not match the certificate (${leaf.subject.trim()})${hint}`);
}

// (3)
for (let i = 0; i + 1 < certs.length; i += 1) {
  const cert = certs[i];
  const issuer = certs[i + 1];
  if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
    fail(
      1,
      `certificate #${i + 1} in ${certFile} is not issued by certificate #${i + 2} ` +
        '(chain out of order, or a certificate of another chain)',
    );
  }
}

// (4)
const now = Date.now();
if (Date.parse(leaf.validTo) < now) fail(1, `the certificate expired on ${leaf.validTo}`);
if (Date.parse(leaf.validFrom) > now) {
  process.stderr.write(
    `check-tls-pair: warning: the certificate is valid only from ${leaf.validFrom}\n`,
  );
}

const subject = leaf.subject.trim().replace(/\n/g, ', ');
process.stdout.write(
  `ok: ${subject}; key matches; ${certs.length - 1} chain certificate(s); ` +
    `expires ${leaf.validTo}; sha256 ${leaf.fingerprint256}\n`,
);
