/**
 * pino factory with two layers of secrecy:
 *
 * 1. `redact` removes fields whose *names* hold credentials (`accessToken`, `jwt`, `secretValue`,
 *    `authorization`, ...) wherever they appear in a log object;
 * 2. the runtime's `Scrubber` (secrets/scrubber.ts) replaces any *known secret value* or held
 *    credential that slipped into a string (an error message from a helper, a command's
 *    stderr) with `[redacted]`. The engine registers every secret value and token it holds;
 *    the same scrubber is used on template errors and `/status`.
 *
 * Logs go to stderr as JSON lines, so `render` can print templates on stdout.
 */
import { createRequire } from 'node:module';
import { pino, type Logger, type DestinationStream } from 'pino';
import { Scrubber } from './secrets/scrubber.js';

export type { Logger } from 'pino';
export { Scrubber } from './secrets/scrubber.js';

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
  const scrub = options.scrubber ?? new Scrubber();
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

/**
 * Human-readable lines on stderr (pino-pretty, synchronous), for `dev` on a terminal. The lines
 * are scrubbed before they reach it, like the JSON ones. pino-pretty is a development
 * dependency: when it is not installed (an installed package), undefined, and JSON it is.
 */
export function prettyDestination(colorize: boolean): DestinationStream | undefined {
  try {
    const pretty = createRequire(import.meta.url)('pino-pretty') as (
      options: object,
    ) => DestinationStream;
    return pretty({
      destination: 2,
      sync: true,
      colorize,
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,name',
    });
  } catch {
    return undefined;
  }
}

/** A logger that drops everything (tests and library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
