/**
 * PKCS#12 keystores (`pkcs12:` files): the certificate, its chain and the private key in one
 * password-protected file, as Java (natively since 9), Kafka, Tomcat, Elasticsearch and .NET
 * read it.
 *
 * Layout (RFC 7292), the one OpenSSL 3 and Java 17 write by default:
 *   PFX v3 → AuthenticatedSafe of two `data` ContentInfos:
 *     1. the certificates as CertBags (leaf first, with localKeyId and friendlyName; then the chain);
 *     2. the key as a pkcs8ShroudedKeyBag: PKCS#8 encrypted with PBES2 (PBKDF2-HMAC-SHA-256,
 *        10000 iterations, AES-256-CBC), same localKeyId and friendlyName;
 *   → MacData: HMAC-SHA-256 over the AuthenticatedSafe, key from the PKCS#12 key derivation
 *     (SHA-256, 10000 iterations).
 *
 * node-forge supplies the DER encoder and the PKCS#12 key derivation for the MAC. Its own
 * `toPkcs12Asn1` is not used: it accepts only RSA keys and certificates (EC ones fail to parse),
 * so the bags are assembled here from DER that node:crypto produces for any key type (RSA, EC,
 * Ed25519), and the PBES2 encryption is node:crypto's PBKDF2 and AES.
 *
 * Determinism: a keystore carries salts and an IV. Random ones would make every render
 * differ, so every render would write the file and reload the app although nothing changed.
 * They are derived instead — HMAC-SHA-256 keyed with the password over the purpose and a
 * SHA-256 of every input — so unchanged inputs give identical bytes (no write, no reload, also
 * across restarts), and any changed input (certificate, key, chain, name or password) gives
 * new salts and a new IV. The IV repeats only with the same key and the same plaintext.
 *
 * Secrecy: error messages name the file and the part (`certificate`, `key`, …), never a value.
 */
import {
  createCipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  pbkdf2Sync,
  X509Certificate,
} from 'node:crypto';
import { createRequire } from 'node:module';
import { ReloaderError } from '../errors.js';

// node-forge is CommonJS typed with `export =`; required the way handlebars is (see
// template/engine.ts), and only at the first keystore: loading it costs ≈ 85 ms, which a spec
// without `pkcs12` files (and every `--once` start) never pays.
const requireCjs = createRequire(import.meta.url);
let forgeModule: typeof import('node-forge') | undefined;
function forge(): typeof import('node-forge') {
  return (forgeModule ??= requireCjs('node-forge') as typeof import('node-forge'));
}
type Asn1 = import('node-forge').asn1.Asn1;

/** The rendered parts of a keystore. */
export interface Pkcs12Inputs {
  /** PEM: the leaf certificate, possibly followed by chain certificates. */
  certificate: string;
  /** PEM private key (PKCS#8, PKCS#1 or SEC1). */
  key: string;
  /** PEM CA certificates, stored after the leaf. */
  chain?: string;
  password: string;
  friendlyName: string;
}

const ITERATIONS = 10_000;

/**
 * Keystores built lately, by a keyed digest of their inputs: building one costs two 10000-round
 * key derivations (≈ 70 ms here), and an unchanged target is re-rendered on every change to any
 * key it reads. The same inputs give the same bytes anyway (see the module comment).
 */
const built = new Map<string, Buffer>();
const CACHE_LIMIT = 64;

const OID = {
  data: '1.2.840.113549.1.7.1',
  certBag: '1.2.840.113549.1.12.10.1.3',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSha256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  sha256: '2.16.840.1.101.3.4.2.1',
};

/** A universal-class node of `type` (the type names of forge's `asn1.Type`). */
const node = (
  type: keyof typeof import('node-forge').asn1.Type,
  constructed: boolean,
  value: string | Asn1[],
): Asn1 => {
  const { asn1 } = forge();
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type[type], constructed, value);
};
const bin = (b: Buffer): string => b.toString('binary');
const seq = (items: Asn1[]): Asn1 => node('SEQUENCE', true, items);
const set = (items: Asn1[]): Asn1 => node('SET', true, items);
const oid = (id: string): Asn1 => node('OID', false, forge().asn1.oidToDer(id).getBytes());
const octets = (b: Buffer): Asn1 => node('OCTETSTRING', false, bin(b));
const int = (n: number): Asn1 => node('INTEGER', false, forge().asn1.integerToDer(n).getBytes());
const nul = (): Asn1 => node('NULL', false, '');
const explicit0 = (inner: Asn1): Asn1 =>
  forge().asn1.create(forge().asn1.Class.CONTEXT_SPECIFIC, 0, true, [inner]);
const der = (node: Asn1): Buffer => Buffer.from(forge().asn1.toDer(node).getBytes(), 'binary');

function fail(name: string, problem: string, cause?: unknown): never {
  throw new ReloaderError('RLD_ERR_RENDER', `${name}: ${problem}; nothing was written`, {
    cause,
    details: { template: name },
  });
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function certificates(pem: string, name: string, part: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      return fail(name, `pkcs12.${part}: PEM certificate ${i + 1} cannot be read`, err);
    }
  });
}

/**
 * Build the keystore's bytes. Throws RLD_ERR_RENDER naming `name` (the file) and the part when
 * a certificate or the key cannot be read, the password is empty, or the key does not belong
 * to the certificate.
 */
export function buildPkcs12(inputs: Pkcs12Inputs, name: string): Buffer {
  const certs = certificates(inputs.certificate, name, 'certificate');
  const leaf = certs[0];
  if (leaf === undefined) fail(name, 'pkcs12.certificate holds no PEM certificate');
  const chain = [...certs.slice(1), ...certificates(inputs.chain ?? '', name, 'chain')];
  if (inputs.password === '') fail(name, 'pkcs12.password renders empty');
  let keyDer: Buffer;
  let key;
  try {
    key = createPrivateKey(inputs.key);
    keyDer = key.export({ type: 'pkcs8', format: 'der' });
  } catch (err) {
    return fail(name, 'pkcs12.key is not a PEM private key that can be read', err);
  }
  if (!leaf.checkPrivateKey(key)) fail(name, 'pkcs12.key does not belong to pkcs12.certificate');

  const inputsHash = createHash('sha256');
  for (const part of [leaf.raw, ...chain.map((c) => c.raw), keyDer]) {
    inputsHash.update(createHash('sha256').update(part).digest());
  }
  inputsHash.update(inputs.friendlyName, 'utf8');
  const digest = inputsHash.digest();
  const cacheKey = createHmac('sha256', inputs.password).update(digest).digest('base64');
  const hit = built.get(cacheKey);
  if (hit !== undefined) return hit;
  const derived = (purpose: string, bytes: number): Buffer =>
    createHmac('sha256', inputs.password)
      .update(purpose)
      .update(digest)
      .digest()
      .subarray(0, bytes);

  const localKeyId = createHash('sha1').update(leaf.raw).digest();
  const attributes = set([
    seq([oid(OID.localKeyId), set([octets(localKeyId)])]),
    seq([oid(OID.friendlyName), set([node('BMPSTRING', false, inputs.friendlyName)])]),
  ]);
  const certBag = (cert: X509Certificate, withAttributes: boolean): Asn1 =>
    seq([
      oid(OID.certBag),
      explicit0(seq([oid(OID.x509Certificate), explicit0(octets(cert.raw))])),
      ...(withAttributes ? [attributes] : []),
    ]);
  const certContents = seq([certBag(leaf, true), ...chain.map((c) => certBag(c, false))]);

  // (PBES2) the key, encrypted under PBKDF2-HMAC-SHA-256 and AES-256-CBC
  const keySalt = derived('pbes2-salt', 16);
  const iv = derived('pbes2-iv', 16);
  const aesKey = pbkdf2Sync(
    Buffer.from(inputs.password, 'utf8'),
    keySalt,
    ITERATIONS,
    32,
    'sha256',
  );
  const cipher = createCipheriv('aes-256-cbc', aesKey, iv);
  const encrypted = Buffer.concat([cipher.update(keyDer), cipher.final()]);
  const encryptedKeyInfo = seq([
    seq([
      oid(OID.pbes2),
      seq([
        seq([
          oid(OID.pbkdf2),
          seq([octets(keySalt), int(ITERATIONS), seq([oid(OID.hmacWithSha256), nul()])]),
        ]),
        seq([oid(OID.aes256Cbc), octets(iv)]),
      ]),
    ]),
    octets(encrypted),
  ]);
  const keyContents = seq([
    seq([oid(OID.shroudedKeyBag), explicit0(encryptedKeyInfo), attributes]),
  ]);

  const dataInfo = (content: Asn1): Asn1 => seq([oid(OID.data), explicit0(octets(der(content)))]);
  const authSafe = der(seq([dataInfo(certContents), dataInfo(keyContents)]));

  // (MAC) HMAC-SHA-256 over the AuthenticatedSafe; the key from the PKCS#12 derivation (id 3)
  const macSalt = derived('mac-salt', 16);
  const macKey = forge().pkcs12.generateKey(
    inputs.password,
    forge().util.createBuffer(bin(macSalt)),
    3,
    ITERATIONS,
    32,
    forge().md.sha256.create(),
  );
  const mac = createHmac('sha256', Buffer.from(macKey.getBytes(), 'binary'))
    .update(authSafe)
    .digest();
  const bytes = der(
    seq([
      int(3),
      seq([oid(OID.data), explicit0(octets(authSafe))]),
      seq([seq([seq([oid(OID.sha256), nul()]), octets(mac)]), octets(macSalt), int(ITERATIONS)]),
    ]),
  );
  if (built.size >= CACHE_LIMIT) built.delete(built.keys().next().value as string);
  built.set(cacheKey, bytes);
  return bytes;
}
