/**
 * The template helpers, registered only on the reloader's own Handlebars instance.
 *
 *   {{secret "KEY"}}            the value of KEY; strict (any key name, e.g. "tls.crt", "db-pw")
 *   {{secretOr "KEY" "x"}}      the value of KEY if set and non-empty, else "x"
 *   {{default secrets.K "x"}}   K if set and non-empty, else "x" (works on env.X too)
 *   {{lookup secrets "K"}}      strict, unlike Handlebars' built-in lookup
 *   {{base64 v}} {{base64Decode v}} {{json v}} {{urlEncode v}} {{trim v}} {{lower v}}
 *   {{upper v}} {{sha256 v}}    text transforms; each also works as a block,
 *                               e.g. {{#base64}}{{secrets.U}}:{{secrets.P}}{{/base64}}
 *   {{indent N v}}              N spaces before every non-empty line (the first one too);
 *                               block form {{#indent N}}...{{/indent}}
 *   {{quote v}}                 "v" with inner " doubled: a pgbouncer userlist.txt field
 *   {{bcrypt v [cost]}}         a bcrypt hash ($2b$, cost 10 by default)
 *   {{htpasswd user v [cost]}}  `user:$2y$…`: a line of an nginx / Apache auth_basic_user_file
 *   {{scramSha256 v [iter]}}    a PostgreSQL SCRAM-SHA-256 verifier (4096 iterations by default)
 *                               (the three hashes use salts derived from the value, the key and
 *                               the target: an unchanged secret renders the same bytes)
 *   {{#if}} {{#unless}} {{#each}} {{#with}}   Handlebars' own block helpers
 *
 * Strictness: Handlebars' strict mode checks a path in *output* position (`{{secrets.K}}`) but
 * passes a missing path to a helper as `undefined`. So every helper that turns a value into text
 * rejects `undefined` itself and names the key it came from; only `default`, `secretOr` and the
 * built-in block helpers accept a missing value, which is what makes `{{default secrets.OPT "x"}}`
 * and `{{#if secrets.OPT}}` work. `{{default (secret "OPT") "x"}}` does not: `secret` is strict
 * and fails before `default` runs.
 *
 * A helper never puts a value in an error: reasons are built from helper names, argument
 * positions and key names (a key name computed at render time is checked against the values
 * first). Errors are thrown as `TemplateFault`; the engine adds the template name and turns
 * them into ReloaderErrors.
 */
import { createHash } from 'node:crypto';
import { viewOf, snapshotView, type RenderState } from './context.js';
import {
  BCRYPT_DEFAULT_COST,
  SCRAM_DEFAULT_ITERATIONS,
  bcryptHash,
  scramSha256,
  type SaltScope,
} from './password-hash.js';

/** The part of Handlebars' helper options we use (`loc` and `ids` are not in its typings). */
export interface HelperOptions {
  fn?: (context: unknown) => string;
  inverse?: (context: unknown) => string;
  hash: Record<string, unknown>;
  data?: { root?: unknown };
  loc?: { start: { line: number; column: number } };
  /** The source text of each argument (compile option `trackIds`), e.g. `secrets.DB_PASSWORD`. */
  ids?: unknown[];
}

export type FaultKind = 'missing-secret' | 'missing-env' | 'render';

/**
 * A failure inside a render, before the engine names the template. `reason` holds names only;
 * `cause` may be a foreign error whose message the engine redacts before showing it.
 */
export class TemplateFault extends Error {
  constructor(
    readonly kind: FaultKind,
    readonly reason: string,
    readonly info: { helper?: string; key?: string; line?: number; cause?: unknown } = {},
  ) {
    super(reason);
    this.name = 'TemplateFault';
  }
}

/** One helper call: its name, arguments and options, with the checks every helper shares. */
class Call {
  constructor(
    readonly helper: string,
    readonly args: unknown[],
    readonly options: HelperOptions,
  ) {}

  get state(): RenderState | undefined {
    return viewOf(this.options.data?.root)?.state;
  }

  fail(reason: string): never {
    throw new TemplateFault('render', `helper "${this.helper}": ${reason}`, {
      helper: this.helper,
    });
  }

  /** Throw for argument `i` having no value, naming the secret or env var it was read from. */
  missing(i: number): never {
    const id = this.options.ids?.[i];
    const state = this.state;
    if (typeof id === 'string' && state !== undefined) {
      const path = id.replace(/^@root\./, '');
      const rest = path.startsWith('secrets.') ? path.slice('secrets.'.length) : path;
      for (const key of [rest, rest.split('.')[0] ?? rest]) {
        if (state.missedSecrets.has(key)) {
          throw new TemplateFault('missing-secret', `secret "${key}"`, {
            helper: this.helper,
            key,
          });
        }
      }
      if (path.startsWith('env.')) {
        const key = path.slice('env.'.length);
        if (state.missedEnv.has(key)) {
          throw new TemplateFault('missing-env', `env "${key}"`, { helper: this.helper, key });
        }
      }
      return this.fail(`argument ${i + 1} (${id}) has no value`);
    }
    return this.fail(`argument ${i + 1} has no value`);
  }

  /** Argument `i` as text: strings as they are, numbers and booleans printed, others rejected. */
  text(i: number): string {
    const v = this.args[i];
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (v === undefined || v === null) return this.missing(i);
    const view = viewOf(v);
    return this.fail(
      `argument ${i + 1} is ${view ? `the ${view.kind} object` : 'an object'}, not a text value`,
    );
  }

  /** Argument `i` as a whole number, or `fallback` when absent. */
  count(i: number, fallback: number): number {
    const v = this.args[i];
    if (v === undefined) return fallback;
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    return this.fail(`argument ${i + 1} must be a whole number`);
  }

  /** What a salt is derived from besides the value: helper, target, argument `i`'s source. */
  saltScope(i: number, user?: string): SaltScope {
    const id = this.options.ids?.[i];
    return {
      helper: this.helper,
      target: this.state?.ctx.target.name ?? '',
      key: typeof id === 'string' ? id.replace(/^@root\./, '') : '',
      ...(user === undefined ? {} : { user }),
    };
  }

  /** Runs `f`, turning its RangeError (a reason without values) into a helper failure. */
  guarded<T>(f: () => T): T {
    try {
      return f();
    } catch (err) {
      if (err instanceof RangeError) return this.fail(err.message);
      throw err;
    }
  }

  /** Argument `i` as a key name. */
  key(i: number): string {
    const v = this.args[i];
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
    return this.fail(`argument ${i + 1} must be a key name in quotes, e.g. "DB_PASSWORD"`);
  }

  /** A name computed at render time, safe to show: `[redacted]` if it equals a secret value. */
  safe(name: string): string {
    return this.state?.safeName(name) ?? '[redacted]';
  }

  secret(key: string): string {
    const value = this.state?.readSecret(key);
    if (value === undefined) {
      const shown = this.safe(key);
      throw new TemplateFault('missing-secret', `secret "${shown}"`, {
        helper: this.helper,
        key: shown,
      });
    }
    return value;
  }
}

/**
 * How a helper may be called, checked at compile time: `inline` and `block` give the allowed
 * number of arguments (absent: that form is not allowed). In block form the rendered block is
 * passed as `body`.
 */
export interface HelperSpec {
  inline?: readonly [number, number];
  block?: readonly [number, number];
  run(call: Call, body: string | undefined): unknown;
}

/** A helper `name value` that also works as `{{#name}}text{{/name}}` on the rendered block. */
function transform(f: (text: string, call: Call) => string): HelperSpec {
  return {
    inline: [1, 1],
    block: [0, 0],
    run: (call, body) => f(body ?? call.text(0), call),
  };
}

const STRICT_BASE64 = /^[A-Za-z0-9+/\-_]*$/;

/** Decode standard or URL-safe base64 (whitespace and padding optional) to UTF-8, or fail. */
function decodeBase64(text: string, call: Call): string {
  const compact = text.replace(/\s+/g, '').replace(/={1,2}$/, '');
  if (!STRICT_BASE64.test(compact) || compact.length % 4 === 1) {
    return call.fail('the value is not valid base64');
  }
  const bytes = Buffer.from(compact.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return call.fail('the decoded bytes are not UTF-8 text (binary data cannot go in a text file)');
  }
}

/** Indent every non-empty line by `n` spaces; empty lines stay empty (no trailing blanks). */
function indentLines(n: unknown, text: string, call: Call): string {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 1000) {
    return call.fail('the first argument must be a number of spaces, e.g. {{indent 4 value}}');
  }
  const pad = ' '.repeat(n);
  return text
    .split('\n')
    .map((line) => (line === '' || line === '\r' ? line : pad + line))
    .join('\n');
}

/** Value helpers; `lookup` replaces Handlebars' lenient built-in with a strict one. */
export const HELPERS: Readonly<Record<string, HelperSpec>> = {
  secret: { inline: [1, 1], run: (call) => call.secret(call.key(0)) },
  secretOr: {
    inline: [2, 2],
    run: (call) => {
      const value = call.state?.readSecret(call.key(0));
      if (value !== undefined && value !== '') return value;
      return call.args[1] ?? call.missing(1);
    },
  },
  default: {
    inline: [2, 2],
    run: (call) => {
      const [value, fallback] = call.args;
      if (value !== undefined && value !== null && value !== '') return value;
      return fallback ?? call.missing(1);
    },
  },
  lookup: {
    inline: [2, 2],
    run: (call) => {
      const obj = call.args[0];
      const field = call.key(1);
      if (obj === undefined || obj === null) return call.missing(0);
      const view = viewOf(obj);
      if (view?.kind === 'secrets') return call.secret(field);
      if (view?.kind === 'env') {
        const value = view.state.readEnv(field);
        if (value !== undefined) return value;
        const shown = call.safe(field);
        throw new TemplateFault('missing-env', `env "${shown}"`, { helper: 'lookup', key: shown });
      }
      const holder = Object(obj) as Record<string, unknown>;
      if (Object.prototype.hasOwnProperty.call(holder, field)) return holder[field];
      return call.fail(`"${call.safe(field)}" is not defined`);
    },
  },
  base64: transform((t) => Buffer.from(t, 'utf8').toString('base64')),
  base64Decode: transform(decodeBase64),
  json: {
    inline: [1, 1],
    block: [0, 0],
    run: (call, body) => {
      if (body !== undefined) return JSON.stringify(body);
      const v = call.args[0];
      if (v === undefined || v === null) return call.missing(0);
      if (typeof v === 'object') {
        const snapshot = snapshotView(v);
        if (snapshot === undefined && viewOf(v) !== undefined)
          return call.fail('cannot print the whole context');
        return JSON.stringify(snapshot ?? v);
      }
      return JSON.stringify(v);
    },
  },
  urlEncode: transform((t) => encodeURIComponent(t)),
  trim: transform((t) => t.trim()),
  lower: transform((t) => t.toLowerCase()),
  upper: transform((t) => t.toUpperCase()),
  sha256: transform((t) => createHash('sha256').update(t, 'utf8').digest('hex')),
  quote: transform((t, call) => {
    if (/[\r\n]/.test(t))
      return call.fail('the value contains a line break and cannot be quoted on one line');
    return `"${t.replace(/"/g, '""')}"`;
  }),
  bcrypt: {
    inline: [1, 2],
    run: (call) =>
      call.guarded(() =>
        bcryptHash(call.text(0), call.count(1, BCRYPT_DEFAULT_COST), call.saltScope(0)),
      ),
  },
  htpasswd: {
    inline: [2, 3],
    run: (call) => {
      const user = call.text(0);
      if (user === '' || /[:\r\n]/.test(user)) {
        return call.fail('the user name must be non-empty, without ":" or a line break');
      }
      const hash = call.guarded(() =>
        bcryptHash(call.text(1), call.count(2, BCRYPT_DEFAULT_COST), call.saltScope(1, user), '2y'),
      );
      return `${user}:${hash}`;
    },
  },
  scramSha256: {
    inline: [1, 2],
    run: (call) =>
      call.guarded(() =>
        scramSha256(call.text(0), call.saltScope(0), call.count(1, SCRAM_DEFAULT_ITERATIONS)),
      ),
  },
  indent: {
    inline: [2, 2],
    block: [1, 1],
    run: (call, body) => indentLines(call.args[0], body ?? call.text(1), call),
  },
};

/** Handlebars' built-in block helpers we keep, with their argument count (always exactly one). */
export const BUILTIN_BLOCK_HELPERS: ReadonlySet<string> = new Set(['if', 'unless', 'each', 'with']);

/**
 * The Handlebars function for `name`: collects the arguments, renders a block body *outside*
 * the error wrapper (an error inside the block belongs to the block, not to this helper), and
 * turns anything the helper itself throws into a TemplateFault carrying the helper and line.
 */
export function wrapHelper(name: string, spec: HelperSpec): (...args: unknown[]) => unknown {
  return function (this: unknown, ...args: unknown[]): unknown {
    const options = args.pop() as HelperOptions;
    const line = options.loc?.start.line;
    const body = options.fn ? options.fn(this) : undefined;
    try {
      return spec.run(new Call(name, args, options), body);
    } catch (err) {
      if (err instanceof TemplateFault) {
        if (err.info.line === undefined && line !== undefined) {
          throw new TemplateFault(err.kind, err.reason, { ...err.info, line });
        }
        throw err;
      }
      throw new TemplateFault('render', `helper "${name}" failed`, {
        helper: name,
        line,
        cause: err,
      });
    }
  };
}
