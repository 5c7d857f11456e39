/**
 * Minimal X.509 certificates for tests, built with node:crypto alone (no openssl binary, any
 * validity period, including one that ended in the past). ECDSA P-256, version 3, no
 * extensions: enough for `X509Certificate` to parse, check a key, check an issuer and verify a
 * signature, which is all `scripts/check-tls-pair.mjs` does.
 */
import { createSign, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';

/** DER length octets. */
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a + b];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128))
      chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** RFC 5280: UTCTime before 2050, GeneralizedTime from 2050 on. */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return date.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(iso.slice(2)))
    : tlv(0x18, Buffer.from(iso));
}

const name = (cn: string): Buffer =>
  seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));

const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

export interface TestKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** PKCS#8 PEM of the private key. */
  pem: string;
}

/** A fresh P-256 key pair. */
export function newKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKey,
    publicKey,
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

export interface CertOptions {
  subject: string;
  key: TestKey;
  /** Issuer name and key; default: self-signed. */
  issuer?: { subject: string; key: TestKey };
  notBefore?: Date;
  notAfter?: Date;
}

/** A PEM certificate for `key`, signed by `issuer.key` (or by itself). */
export function makeCert(opts: CertOptions): string {
  const day = 86_400_000;
  const notBefore = opts.notBefore ?? new Date(Date.now() - day);
  const notAfter = opts.notAfter ?? new Date(Date.now() + 30 * day);
  const issuer = opts.issuer ?? { subject: opts.subject, key: opts.key };
  const serial = randomBytes(8);
  // A positive INTEGER in minimal DER: the first byte in 0x40..0x7f (a leading 0x00 followed by a
  // byte below 0x80 is not minimal, and OpenSSL 3 refuses such a certificate, 1 in 128 times).
  serial[0] = ((serial[0] ?? 0) & 0x3f) | 0x40;
  const spki = opts.key.publicKey.export({ type: 'spki', format: 'der' });
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // version v3
    tlv(0x02, serial),
    ECDSA_SHA256,
    name(issuer.subject),
    seq(time(notBefore), time(notAfter)),
    name(opts.subject),
    spki,
  );
  const signature = createSign('sha256').update(tbs).sign(issuer.key.privateKey); // DER ECDSA
  const der = seq(tbs, ECDSA_SHA256, tlv(0x03, Buffer.from([0]), signature));
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}
