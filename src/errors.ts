/**
 * The one catalogue of failures. Every error the reloader raises is a `ReloaderError` with a
 * stable `code` (`RLD_ERR_*`); callers match on `code`, never on `instanceof` or the message
 * (the undici / fastify habit). `cause` is always passed through.
 *
 * Contract on secrecy: a message is built only from names (keys, targets, files, routes),
 * numbers and Infisical's own `message` field — never from a secret value, an access token,
 * a service-account token or a webhook secret. `test/errors.test.ts` keeps this catalogue and
 * the README's table of codes in step.
 */

/** What each code means and which exit code `--once` / the CLI uses for it. */
export const ERROR_CODES = {
  RLD_ERR_USAGE: { exit: 2, summary: 'bad command line (unknown flag, missing value)' },
  RLD_ERR_SPEC: { exit: 2, summary: 'reloader.yaml is invalid (names file, YAML path, line)' },
  RLD_ERR_TEMPLATE: { exit: 2, summary: 'a template does not compile (names the template)' },
  RLD_ERR_MISSING_KEY: { exit: 1, summary: 'a template reads a secret key that does not exist' },
  RLD_ERR_RENDER: { exit: 1, summary: 'a template failed while rendering (helper error)' },
  RLD_ERR_AUTH: {
    exit: 1,
    summary: 'login to Infisical was refused, or the credential is unreadable',
  },
  RLD_ERR_TOKEN: { exit: 1, summary: 'Infisical rejected the access token (expired, revoked)' },
  RLD_ERR_INFISICAL_HTTP: { exit: 1, summary: 'Infisical answered with an error status' },
  RLD_ERR_INFISICAL_NETWORK: {
    exit: 1,
    summary: 'Infisical could not be reached (connection, TLS)',
  },
  RLD_ERR_INFISICAL_TIMEOUT: { exit: 1, summary: 'Infisical did not answer within `timeout`' },
  RLD_ERR_INFISICAL_RESPONSE: { exit: 1, summary: 'Infisical answered with a body we cannot read' },
  RLD_ERR_SOURCE: {
    exit: 1,
    summary: 'a source the target may read has not answered yet; nothing was written',
  },
  RLD_ERR_WRITE: { exit: 1, summary: 'a destination could not be written atomically' },
  RLD_ERR_LOCK: { exit: 1, summary: 'the lock on a destination could not be taken' },
  RLD_ERR_CHECK: {
    exit: 1,
    summary: '`check` failed or timed out; the previous files were put back',
  },
  RLD_ERR_RELOAD: { exit: 1, summary: 'the reload action failed or timed out' },
  RLD_ERR_VERIFY: {
    exit: 1,
    summary:
      '`verify` found the app did not take the reload; the last good files were put back and reloaded',
  },
  RLD_ERR_LISTEN: { exit: 1, summary: 'the HTTP server could not bind its address (port in use)' },
  RLD_ERR_WEBHOOK: { exit: 1, summary: 'a webhook request was rejected (400/401/413)' },
  RLD_ERR_INTERNAL: { exit: 1, summary: 'a bug: an unexpected exception' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class. `details` carries structured, secret-free fields for logs and `/status`. */
export class ReloaderError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ReloaderError';
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  /** The process exit code this failure maps to (1 runtime, 2 usage/spec/template). */
  get exitCode(): 1 | 2 {
    return ERROR_CODES[this.code].exit;
  }

  /** A plain, secret-free object for pino and `/status` (no stack, no cause chain values). */
  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...this.details };
  }
}

/** Where in reloader.yaml a problem is: `file`, dotted YAML path, 1-based line (0 if unknown). */
export interface SpecLocation {
  file: string;
  yamlPath: string;
  line: number;
}

/** reloader.yaml is invalid. The message reads `file:line: path: problem`. */
export class SpecError extends ReloaderError {
  readonly location: SpecLocation;
  constructor(location: SpecLocation, problem: string, options: { cause?: unknown } = {}) {
    const where = `${location.file}:${location.line}`;
    const path = location.yamlPath === '' ? '(root)' : location.yamlPath;
    super('RLD_ERR_SPEC', `${where}: ${path}: ${problem}`, {
      cause: options.cause,
      details: { file: location.file, yamlPath: location.yamlPath, line: location.line },
    });
    this.name = 'SpecError';
    this.location = location;
  }
}

/**
 * An HTTP error answer from Infisical: `status`, Infisical's `error` name and its `message`
 * (Infisical's message never holds a secret value; a 422 message array is joined to text).
 */
export class InfisicalHttpError extends ReloaderError {
  readonly status: number;
  readonly infisicalError: string | undefined;
  constructor(
    code: 'RLD_ERR_INFISICAL_HTTP' | 'RLD_ERR_AUTH' | 'RLD_ERR_TOKEN',
    init: { status: number; route: string; infisicalError?: string; infisicalMessage?: string },
  ) {
    const what = init.infisicalMessage ? `: ${init.infisicalMessage}` : '';
    const name = init.infisicalError ? ` ${init.infisicalError}` : '';
    super(code, `Infisical ${init.route} answered ${init.status}${name}${what}`, {
      details: { status: init.status, route: init.route, infisicalError: init.infisicalError },
    });
    this.name = 'InfisicalHttpError';
    this.status = init.status;
    this.infisicalError = init.infisicalError;
  }
}

/** True when `err` is a ReloaderError with one of the given codes. */
export function hasCode(err: unknown, ...codes: ErrorCode[]): err is ReloaderError {
  return err instanceof ReloaderError && codes.includes(err.code);
}

/** Wraps anything thrown into a ReloaderError, keeping the original as `cause`. */
export function asReloaderError(
  err: unknown,
  fallback: ErrorCode = 'RLD_ERR_INTERNAL',
): ReloaderError {
  if (err instanceof ReloaderError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ReloaderError(fallback, message, { cause: err });
}
