/**
 * Webhook signatures, exactly as Infisical makes them (Infisical's `triggerWebhookRequest`; docs/infisical-api.md):
 *
 *   x-infisical-signature: t=<ms>;<lowercase hex HMAC-SHA256(raw body, webhook secret)>
 *
 * The HMAC covers the raw body only, never the header's `t`. Infisical's body carries the same
 * `Date.now()` in its `timestamp` field, so for Infisical the timestamp *is* signed; we therefore
 * cross-check the two. A body without a numeric `timestamp` (the integration guide's value events)
 * has an unsigned `t`: the freshness check still applies, but a captured body can be replayed by
 * anyone who rewrites `t`. Only the secret protects such senders; see `verifyWebhook`.
 *
 * Pure functions, no I/O, never a secret or a signature in an error message.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ReloaderError } from '../errors.js';

/** The header Infisical puts its signature in (lower case, as node exposes headers). */
export const SIGNATURE_HEADER = 'x-infisical-signature';

/** Longest header we look at; Infisical's is `t=` + 13 digits + `;` + 64 hex = 80 characters. */
const MAX_HEADER_LENGTH = 256;

/** `t=<digits>` then `;` (Infisical) or `,` (hand-written senders), then hex. Case-insensitive hex. */
const HEADER_RE = /^t=(\d{1,16})[ \t]*[;,][ \t]*([0-9a-fA-F]+)$/;

export type VerifyFailure = 'missing' | 'malformed' | 'mismatch' | 'stale';

export type VerifyResult =
  { ok: true; timestampMs: number; signature: string } | { ok: false; reason: VerifyFailure };

function hmacHex(body: string | Buffer, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/**
 * The header value Infisical would send for `body`: `t=<timestampMs>;<hex>`. Used by the `dev`
 * server and by tests. `body` must be the exact bytes that will be POSTed (a string is UTF-8).
 * Throws RLD_ERR_INTERNAL for a timestamp that is not a non-negative safe integer (a caller bug).
 */
export function signWebhook(body: string | Buffer, secret: string, timestampMs: number): string {
  if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) {
    throw new ReloaderError('RLD_ERR_INTERNAL', 'signWebhook: timestamp must be integer ms');
  }
  return `t=${timestampMs};${hmacHex(body, secret)}`;
}

/**
 * Reads the numeric top-level `timestamp` of a JSON body, or undefined when the body is not
 * UTF-8 JSON, not an object, or has no numeric `timestamp`. Never throws.
 */
function bodyTimestamp(rawBody: Buffer): number | undefined {
  if (rawBody.length === 0) return undefined;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(rawBody);
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    const ts = (value as Record<string, unknown>)['timestamp'];
    return typeof ts === 'number' ? ts : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Verifies one delivery. Never throws, whatever the header and body (a property test holds it
 * to that). Steps, in order:
 *
 * (1) no header (undefined, empty, or an empty array) → `missing`; several headers → `malformed`.
 * (2) parse leniently but safely: surrounding whitespace is ignored, `t=` must be 1–16 digits
 *     (a safe integer), the separator is `;` as Infisical sends it — `,` is accepted too because
 *     it costs nothing (the HMAC decides, not the syntax) and hand-written senders use it — and
 *     the signature must be hex. Anything else → `malformed`.
 * (3) hex of the wrong length (not 64) → `mismatch`; otherwise a constant-time compare of the
 *     32 decoded bytes with HMAC-SHA256(rawBody, secret) → `mismatch` when they differ. An empty
 *     secret never verifies (anyone could compute that HMAC).
 * (4) when the body is JSON with a numeric top-level `timestamp` that differs from `t` →
 *     `mismatch`: Infisical sets both from one `Date.now()`, and the body's copy is the signed one,
 *     so this stops an old signed body from being replayed under a fresh `t`.
 * (5) `t` more than `maxAgeMs` before or after `nowMs` → `stale`. Checked after the HMAC so that
 *     `stale` always means "genuine but old (or clocks skewed)", which is what an operator needs.
 *
 * On success returns `t` and the lowercase signature, for `ReplayCache.checkAndRemember`.
 */
export function verifyWebhook(
  rawBody: Buffer,
  header: string | readonly string[] | undefined,
  secret: string,
  opts: { nowMs: number; maxAgeMs: number },
): VerifyResult {
  // (1)
  let value: string | undefined;
  if (Array.isArray(header)) {
    if (header.length > 1) return { ok: false, reason: 'malformed' };
    value = header[0];
  } else {
    value = header as string | undefined;
  }
  if (typeof value !== 'string') return { ok: false, reason: 'missing' };
  const trimmed = value.trim();
  if (trimmed === '') return { ok: false, reason: 'missing' };

  // (2)
  if (trimmed.length > MAX_HEADER_LENGTH) return { ok: false, reason: 'malformed' };
  const match = HEADER_RE.exec(trimmed);
  if (match === null) return { ok: false, reason: 'malformed' };
  const timestampMs = Number(match[1]);
  const signature = (match[2] ?? '').toLowerCase();
  if (!Number.isSafeInteger(timestampMs)) return { ok: false, reason: 'malformed' };

  // (3)
  if (signature.length !== 64 || secret === '') return { ok: false, reason: 'mismatch' };
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'mismatch' };
  }

  // (4)
  const signedTs = bodyTimestamp(rawBody);
  if (signedTs !== undefined && signedTs !== timestampMs) return { ok: false, reason: 'mismatch' };

  // (5)
  // Written so that a NaN `nowMs` or `maxAgeMs` fails closed.
  if (!(Math.abs(opts.nowMs - timestampMs) <= opts.maxAgeMs)) return { ok: false, reason: 'stale' };

  return { ok: true, timestampMs, signature };
}

/**
 * Remembers verified deliveries so that a replay inside the freshness window has no effect
 * ("a replayed signature inside the window is answered 200 without effect").
 *
 * Identity is `t` + signature, not the signature alone: for Infisical (signed timestamp) the two
 * are equivalent, and for bodies without a timestamp it keeps a legitimate A → B → A sequence of
 * identical bodies sent at different times from being dropped as a replay.
 *
 * Memory is bounded twice: an entry is forgotten once `t + maxAgeMs` has passed (after that
 * `verifyWebhook` rejects the delivery as `stale` anyway), and at most `maxEntries` are held —
 * beyond that the oldest inserted is evicted. Only verified deliveries are remembered, so filling
 * the cache needs the webhook secret.
 */
export class ReplayCache {
  readonly maxAgeMs: number;
  readonly maxEntries: number;
  /** key → expiry (ms). A Map iterates in insertion order, which gives "oldest first" for free. */
  private readonly entries = new Map<string, number>();
  /** Smallest expiry held (or +Infinity): lets most calls skip the sweep. */
  private nextExpiry = Number.POSITIVE_INFINITY;

  constructor(opts: { maxAgeMs: number; maxEntries?: number }) {
    const maxEntries = opts.maxEntries ?? 10_000;
    if (!(opts.maxAgeMs >= 0) || !Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new ReloaderError('RLD_ERR_INTERNAL', 'ReplayCache: bad maxAgeMs or maxEntries');
    }
    this.maxAgeMs = opts.maxAgeMs;
    this.maxEntries = maxEntries;
  }

  /** Number of deliveries currently remembered (for tests and /metrics). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Returns true when this delivery was already seen and has not aged out (a replay: answer 200,
   * do nothing); otherwise remembers it and returns false.
   */
  checkAndRemember(signature: string, timestampMs: number, nowMs: number): boolean {
    this.sweep(nowMs);
    const key = `${timestampMs}:${signature.toLowerCase()}`;
    const expiry = this.entries.get(key);
    if (expiry !== undefined && expiry >= nowMs) return true;
    this.entries.delete(key);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
    const newExpiry = timestampMs + this.maxAgeMs;
    this.entries.set(key, newExpiry);
    if (newExpiry < this.nextExpiry) this.nextExpiry = newExpiry;
    return false;
  }

  /** Drops every entry whose expiry has passed; a full scan only when one is known to be due. */
  private sweep(nowMs: number): void {
    if (nowMs <= this.nextExpiry) return;
    let next = Number.POSITIVE_INFINITY;
    for (const [key, expiry] of this.entries) {
      if (expiry < nowMs) this.entries.delete(key);
      else if (expiry < next) next = expiry;
    }
    this.nextExpiry = next;
  }
}
