/**
 * Password hashes for config files: bcrypt (`$2b$`, and `$2y$` for htpasswd files) and
 * PostgreSQL's SCRAM-SHA-256 verifier.
 *
 * A hash needs a salt, and a random one would make every render differ: every pass would write
 * the file and reload the app although no secret changed. So the salt is derived: the first
 * 16 bytes of HMAC-SHA256 keyed with the value over the helper name, the target name and the
 * key the value was read from (plus the user name for htpasswd). An unchanged secret renders
 * the same bytes (no write, no reload); a changed secret, or the same password in another
 * target or under another key, gets another salt. The salt is not a secret in either format; it
 * only has to differ between accounts, which it does, and to be unpredictable to someone who
 * does not know the password, which a keyed hash of the password is.
 *
 * bcrypt is bcryptjs (pure JavaScript, no native build). It reads only the first 72 bytes of a
 * password, so a longer value is refused rather than silently cut. Hashing is slow on purpose
 * (cost 10 ≈ 70 ms here), so results are kept in a small cache keyed by a SHA-256 of the inputs:
 * a re-render of an unchanged target does not pay it again.
 *
 * SCRAM-SHA-256 follows RFC 5802 and RFC 7677 the way PostgreSQL stores it:
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64), with
 * SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations), ClientKey =
 * HMAC(SaltedPassword, "Client Key"), StoredKey = SHA-256(ClientKey), ServerKey =
 * HMAC(SaltedPassword, "Server Key"). The password is prepared as PostgreSQL prepares it
 * (`saslPrep`).
 */
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { createRequire } from 'node:module';

// bcryptjs is required at the first bcrypt hash, not at start: a spec without the helper never
// loads it.
const requireCjs = createRequire(import.meta.url);
let bcryptModule: typeof import('bcryptjs') | undefined;
function bcrypt(): typeof import('bcryptjs') {
  return (bcryptModule ??= requireCjs('bcryptjs') as typeof import('bcryptjs'));
}

/** The inputs a salt is derived from, besides the value. */
export interface SaltScope {
  helper: string;
  target: string;
  /** The expression the value came from, e.g. `secrets.DB_PASSWORD`; '' when unknown. */
  key: string;
  /** The htpasswd user name, if any. */
  user?: string;
}

/** 16 bytes of HMAC-SHA256(value, scope): the same inputs always give the same salt. */
export function derivedSalt(value: string, scope: SaltScope): Buffer {
  const parts = [scope.helper, scope.target, scope.key, scope.user ?? ''];
  return createHmac('sha256', value).update(parts.join('\u0000')).digest().subarray(0, 16);
}

export const BCRYPT_DEFAULT_COST = 10;
export const BCRYPT_MAX_BYTES = 72;
export const SCRAM_DEFAULT_ITERATIONS = 4096;

const CACHE_LIMIT = 256;
const cache = new Map<string, string>();

function cached(parts: readonly (string | number)[], compute: () => string): string {
  const id = createHash('sha256').update(parts.join('\u0000')).digest('base64');
  const hit = cache.get(id);
  if (hit !== undefined) return hit;
  const out = compute();
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(id, out);
  return out;
}

/**
 * A bcrypt hash of `value` at `cost` (4–31) with the salt derived from `scope`; `prefix` is
 * `2b` (the default) or `2y` (Apache's spelling of the same algorithm). Throws a plain Error
 * with a reason that holds no value when `value` is over 72 bytes or `cost` is out of range.
 */
export function bcryptHash(
  value: string,
  cost: number,
  scope: SaltScope,
  prefix: '2b' | '2y' = '2b',
): string {
  if (!Number.isInteger(cost) || cost < 4 || cost > 31) {
    throw new RangeError('the cost must be a whole number from 4 to 31');
  }
  if (Buffer.byteLength(value, 'utf8') > BCRYPT_MAX_BYTES) {
    throw new RangeError(
      `the value is longer than ${BCRYPT_MAX_BYTES} bytes; bcrypt would ignore the rest`,
    );
  }
  const salt = derivedSalt(value, scope);
  const hash = cached(['bcrypt', cost, salt.toString('hex'), value], () =>
    bcrypt().hashSync(
      value,
      `$2b$${String(cost).padStart(2, '0')}$${bcrypt().encodeBase64(salt, 16)}`,
    ),
  );
  return prefix === '2b' ? hash : `$2y$${hash.slice(4)}`;
}

/** Ranges of code points, inclusive. */
type Ranges = readonly (readonly [number, number])[];
const inRanges = (cp: number, ranges: Ranges): boolean =>
  ranges.some(([lo, hi]) => cp >= lo && cp <= hi);

/** Mapped to nothing by SASLprep (RFC 3454 table B.1). */
const MAPPED_TO_NOTHING: Ranges = [
  [0xad, 0xad],
  [0x34f, 0x34f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];
/** Non-ASCII spaces (table C.1.2), mapped to U+0020. */
const NON_ASCII_SPACE: Ranges = [
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
];
/** Prohibited by SASLprep: controls, private use, surrogates, non-characters, bidi controls. */
const PROHIBITED: Ranges = [
  [0x0, 0x1f],
  [0x7f, 0x9f],
  [0x6dd, 0x6dd],
  [0x70f, 0x70f],
  [0x180e, 0x180e],
  [0x200c, 0x200f],
  [0x2028, 0x202e],
  [0x2060, 0x2063],
  [0x206a, 0x206f],
  [0xd800, 0xf8ff],
  [0xfff9, 0xfffd],
  [0xf0000, 0x10ffff],
];

/**
 * The password as PostgreSQL hashes it: SASLprep (soft hyphens and zero-width characters
 * mapped to nothing, non-ASCII spaces to a space, then NFKC), or the text as it is when the
 * result holds a code point SASLprep prohibits (PostgreSQL then also uses the raw bytes).
 * Printable ASCII is unchanged either way.
 */
export function saslPrep(password: string): string {
  if (/^[ -~]*$/.test(password)) return password;
  let mapped = '';
  for (const ch of password) {
    const cp = ch.codePointAt(0) as number;
    if (inRanges(cp, MAPPED_TO_NOTHING)) continue;
    mapped += inRanges(cp, NON_ASCII_SPACE) ? ' ' : ch;
  }
  const prepared = mapped.normalize('NFKC');
  for (const ch of prepared) {
    if (inRanges(ch.codePointAt(0) as number, PROHIBITED)) return password;
  }
  return prepared;
}

/** A PostgreSQL SCRAM-SHA-256 verifier of `value`, salt derived from `scope`. */
export function scramSha256(
  value: string,
  scope: SaltScope,
  iterations = SCRAM_DEFAULT_ITERATIONS,
): string {
  if (!Number.isInteger(iterations) || iterations < 4096 || iterations > 10_000_000) {
    throw new RangeError('the iteration count must be a whole number from 4096 to 10000000');
  }
  const salt = derivedSalt(value, scope);
  return cached(['scram', iterations, salt.toString('hex'), value], () =>
    scramVerifier(value, salt, iterations),
  );
}

/** The SCRAM-SHA-256 verifier of `password` with an explicit `salt` (the module comment's formula). */
export function scramVerifier(password: string, salt: Buffer, iterations: number): string {
  const salted = pbkdf2Sync(
    Buffer.from(saslPrep(password), 'utf8'),
    salt,
    iterations,
    32,
    'sha256',
  );
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return (
    `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}` +
    `$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
  );
}
