/**
 * The scrubber: replaces every known secret value and credential in a string with
 * `[redacted]`. One per runtime (a daemon, a `--once` run, a library subscriber): it is created
 * with the runtime's logger and handed to every part that produces text (the Infisical client,
 * the token manager, template errors, check and reload output, `/status`), so two runtimes in
 * one process never see each other's values and a test never inherits another test's.
 *
 * Two kinds of entries:
 * - `add(value)`: a secret value. Kept for the life of the runtime: a rotated-away password can
 *   still appear in an app's output after the rotation, and must stay censored.
 * - `hold(slot, value)`: a credential the runtime holds now — the access token, the
 *   service-account JWT, the client secret, the webhook secret. A new value for the same slot
 *   replaces the old one, which is forgotten (unless it is also known otherwise): a daemon that
 *   renews its token every few hours for 180 days does not keep a thousand dead tokens, and
 *   `release(slot)` drops a credential the runtime gave up.
 *
 * Values shorter than 4 characters are never scrubbed: replacing "1" or "on" everywhere hides
 * more than it protects.
 *
 * Fields the reloader owns. `scrubDeep` leaves a few named fields as they are when their value
 * has the one shape that field can have (`OWNED_FIELDS`): the client address of a request
 * (`remote`, an IP address read from the socket) and the Infisical base URL (`infisical`,
 * `baseUrl`, an http(s) URL without credentials or query, from the spec). Their values never
 * come from secret data, so printing them tells a reader nothing about any secret, even when
 * some secret happens to have the same value (a `BIND_ADDRESS` of `127.0.0.1` blanked the
 * client address of every webhook log line). The shape check keeps the guarantee for anything
 * else that might land in such a field: a value of another shape is scrubbed as usual, and
 * every other field, message text included, always is.
 */
import { isIP } from 'node:net';

/** An http(s) URL without user info, query or fragment, at most 300 characters. */
const PLAIN_URL = /^https?:\/\/[A-Za-z0-9.\-[\]:]+(?:\/[A-Za-z0-9._~\-/]*)?$/;
const isPlainUrl = (v: string): boolean => v.length <= 300 && PLAIN_URL.test(v);

/**
 * Fields whose value never comes from secret data, with the only shape it may have to be left
 * unscrubbed (see the module comment).
 */
export const OWNED_FIELDS: Readonly<Record<string, (value: string) => boolean>> = {
  remote: (v) => isIP(v) !== 0,
  infisical: isPlainUrl,
  baseUrl: isPlainUrl,
};

/** Values shorter than this are not scrubbed (see the module comment). */
const MIN_SCRUB_LENGTH = 4;

/** Size of the Scrubber's start filter, in bits (a power of two). */
const FILTER_BITS = 1 << 20;

/** A hash of the three characters of `text` at `i`, in [0, FILTER_BITS). */
function startHash(text: string, i: number): number {
  const h =
    Math.imul(text.charCodeAt(i), 0x9e3779b1) ^
    Math.imul(text.charCodeAt(i + 1), 0x85ebca6b) ^
    Math.imul(text.charCodeAt(i + 2), 0xc2b2ae35);
  return (h ^ (h >>> 15)) & (FILTER_BITS - 1);
}

/**
 * Holds the secret values and credentials known to one runtime and removes them from strings.
 *
 * Memory: the index is one Set of the values plus one Map entry per distinct 4-character
 * prefix, whose value is the length of the values with that prefix (a number) or, when they
 * differ, the distinct lengths longest first. 10,000 random values cost ≈ 1 MiB, where a
 * bucket object + Map + Set per prefix cost ≈ 6 MiB (bench 5).
 */
export class Scrubber {
  private readonly values = new Set<string>();
  /**
   * First MIN_SCRUB_LENGTH characters → the distinct lengths of the values that start with them
   * (a number for one length, an array longest first for several). Values often share a prefix
   * (`postgres://…`), so a position is probed with one `values` lookup per distinct length,
   * never value by value.
   */
  private readonly lengthsByPrefix = new Map<string, number | number[]>();
  /**
   * One bit per hash of a value's first three characters (2^20 bits, 128 KiB): a position
   * whose bit is clear cannot start a known value, so it is skipped without the slice and the
   * Map lookup of `matchAt` — most positions of a log line, even with 10,000 values (≈ 1 % of
   * the bits set). A set bit proves nothing; `matchAt` decides.
   */
  private readonly startFilter = new Uint32Array(FILTER_BITS >>> 5);

  /** Credentials held now, by slot. */
  private readonly held = new Map<string, string>();
  /** Values known only as held credentials (not also added as secret values): forgettable. */
  private readonly heldOnly = new Set<string>();
  /** A value was forgotten: the index is rebuilt before the next scrub. */
  private stale = false;

  /** Remember the secret value `value` for the life of this scrubber (short values are ignored). */
  add(value: string | undefined): void {
    if (value === undefined || value.length < MIN_SCRUB_LENGTH) return;
    this.heldOnly.delete(value);
    this.index(value);
  }

  /**
   * Hold `value` as the credential of `slot` (e.g. `access-token`): censored from now on,
   * and forgotten again when the slot gets another value or is released.
   */
  hold(slot: string, value: string | undefined): void {
    const before = this.held.get(slot);
    if (before === value) return;
    if (value === undefined || value.length < MIN_SCRUB_LENGTH) this.held.delete(slot);
    else {
      this.held.set(slot, value);
      if (!this.values.has(value)) {
        this.heldOnly.add(value);
        this.index(value);
      }
    }
    if (before !== undefined) this.forget(before);
  }

  /** Forget the credential of `slot`. */
  release(slot: string): void {
    this.hold(slot, undefined);
  }

  /** Drops `value` from the index unless it is still known through `add` or another slot. */
  private forget(value: string): void {
    if (!this.heldOnly.has(value)) return;
    for (const v of this.held.values()) if (v === value) return;
    this.heldOnly.delete(value);
    this.values.delete(value);
    this.stale = true;
  }

  /** Rebuilds the prefix index and the start filter from the values still known. */
  private rebuild(): void {
    this.stale = false;
    this.lengthsByPrefix.clear();
    this.startFilter.fill(0);
    const known = [...this.values];
    this.values.clear();
    for (const v of known) this.index(v);
  }

  /** Puts `value` in the index. */
  private index(value: string): void {
    if (this.values.has(value)) return;
    this.values.add(value);
    const bit = startHash(value, 0);
    this.startFilter[bit >>> 5] = (this.startFilter[bit >>> 5] as number) | (1 << (bit & 31));
    const prefix = value.slice(0, MIN_SCRUB_LENGTH);
    const lengths = this.lengthsByPrefix.get(prefix);
    if (lengths === undefined) this.lengthsByPrefix.set(prefix, value.length);
    else if (typeof lengths === 'number') {
      if (lengths !== value.length)
        this.lengthsByPrefix.set(prefix, [
          Math.max(lengths, value.length),
          Math.min(lengths, value.length),
        ]);
    } else if (!lengths.includes(value.length)) {
      lengths.push(value.length);
      lengths.sort((a, b) => b - a);
    }
  }

  /** Remember many secret values (after a fetch; rotated-away values stay censored too). */
  addAll(values: Iterable<string>): void {
    for (const v of values) this.add(v);
  }

  get size(): number {
    return this.values.size;
  }

  /** Length of the longest known value found in `text` at `i`, or 0. */
  private matchAt(text: string, i: number): number {
    const lengths = this.lengthsByPrefix.get(text.slice(i, i + MIN_SCRUB_LENGTH));
    if (lengths === undefined) return 0;
    if (typeof lengths === 'number') {
      return i + lengths <= text.length && this.values.has(text.slice(i, i + lengths))
        ? lengths
        : 0;
    }
    for (const len of lengths) {
      if (i + len <= text.length && this.values.has(text.slice(i, i + len))) return len;
    }
    return 0;
  }

  /**
   * `text` with every known value replaced by `[redacted]`. One pass over the text with a
   * prefix index, so the cost grows with the text, not with the number of known values
   * (10,000 secrets must not make every log line slow). At each position the longest known
   * value that matches wins.
   */
  scrub(text: string): string {
    if (this.stale) this.rebuild();
    if (this.values.size === 0 || text.length < MIN_SCRUB_LENGTH) return text;
    let out = '';
    let copied = 0;
    const filter = this.startFilter;
    for (let i = 0; i <= text.length - MIN_SCRUB_LENGTH;) {
      const bit = startHash(text, i);
      if (((filter[bit >>> 5] as number) & (1 << (bit & 31))) === 0) {
        i++;
        continue;
      }
      const hit = this.matchAt(text, i);
      if (hit === 0) {
        i++;
        continue;
      }
      out += `${text.slice(copied, i)}[redacted]`;
      i += hit;
      copied = i;
    }
    return copied === 0 ? text : out + text.slice(copied);
  }

  /** Deep copy of a JSON-like value with every string scrubbed. */
  scrubDeep(value: unknown, depth = 0): unknown {
    if (typeof value === 'string') return this.scrub(value);
    if (depth > 8 || value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map((v) => this.scrubDeep(v, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const owned = Object.hasOwn(OWNED_FIELDS, k) ? OWNED_FIELDS[k] : undefined;
      out[k] = typeof v === 'string' && owned?.(v) ? v : this.scrubDeep(v, depth + 1);
    }
    return out;
  }
}
