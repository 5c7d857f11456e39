/**
 * pino factory with two layers of secrecy:
 *
 * 1. `redact` removes fields whose *names* hold credentials (`accessToken`, `jwt`, `secretValue`,
 *    `authorization`, ...) wherever they appear in a log object;
 * 2. a `Scrubber` replaces any *known secret value* that slipped into a string (an error message
 *    from a helper, a command's stderr) with `[redacted]`. The engine registers every secret
 *    value and token it holds; the scrubber is also used on template errors and `/status`.
 *
 * Logs go to stderr as JSON lines, so `render` can print templates on stdout.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/** Field names that are always censored, at any depth the paths below reach. */
const REDACT_PATHS = [
  'accessToken',
  'token',
  'jwt',
  'secret',
  'secretValue',
  'clientSecret',
  'password',
  'authorization',
  'headers.authorization',
  'headers["x-infisical-signature"]',
  '*.accessToken',
  '*.token',
  '*.jwt',
  '*.secret',
  '*.secretValue',
  '*.clientSecret',
  '*.password',
  '*.authorization',
];

/** Values shorter than this are not scrubbed: replacing "1" or "on" everywhere hides more than it protects. */
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
 * Holds the secret values currently known to the process and removes them from strings.
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

  /** Remember `value` so that it is censored from now on (short values are ignored). */
  add(value: string | undefined): void {
    if (value === undefined || value.length < MIN_SCRUB_LENGTH || this.values.has(value)) return;
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

  /** Remember many values (after a fetch; rotated-away values stay censored too). */
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
      out[k] = this.scrubDeep(v, depth + 1);
    }
    return out;
  }
}

/** The process-wide scrubber: the engine and the Infisical client register values in it. */
export const scrubber = new Scrubber();

export interface LoggerOptions {
  level?: string;
  /** Where JSON lines go; default stderr (fd 2), synchronous so nothing is lost at exit. */
  destination?: DestinationStream;
  scrubber?: Scrubber;
}

/** Serialize errors as `{ type, code, message, ...details }`: no stack of values, no cause chain. */
function serializeError(err: unknown): Record<string, unknown> {
  if (err && typeof err === 'object' && !(err instanceof Error) && 'type' in err) {
    return err as Record<string, unknown>; // already serialized by formatters.log
  }
  if (err && typeof err === 'object') {
    const e = err as { name?: string; code?: unknown; message?: unknown; details?: unknown };
    const details = e.details && typeof e.details === 'object' ? e.details : {};
    // The OS-level code of the cause (ECONNREFUSED, EACCES, UND_ERR_*) helps an operator; its
    // message is left out on purpose (it can quote input).
    const cause = (err as { cause?: { code?: unknown } }).cause;
    const causeCode = cause && typeof cause.code === 'string' ? cause.code : undefined;
    return {
      type: e.name ?? 'Error',
      code: typeof e.code === 'string' ? e.code : undefined,
      message: typeof e.message === 'string' ? e.message : String(err),
      ...(causeCode ? { causeCode } : {}),
      ...(details as Record<string, unknown>),
    };
  }
  return { message: String(err) };
}

/** Build the reloader's logger. Every string in every line passes through the scrubber. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const scrub = options.scrubber ?? scrubber;
  return pino(
    {
      level: options.level ?? 'info',
      base: { name: 'infisical-reloader' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: serializeError, error: serializeError },
      formatters: {
        level: (label) => ({ level: label }),
        // Runs before the serializers: turn errors into plain objects first (their `message`
        // is not enumerable and would be lost by the deep copy), then scrub every string.
        log: (obj) => {
          const plain: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(obj))
            plain[k] = v instanceof Error ? serializeError(v) : v;
          return scrub.scrubDeep(plain) as Record<string, unknown>;
        },
      },
      hooks: {
        logMethod(args, method) {
          // Scrub the message string too (formatters.log only sees the merge object).
          const scrubbed = args.map((a) => (typeof a === 'string' ? scrub.scrub(a) : a));
          return method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that drops everything (tests and library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
