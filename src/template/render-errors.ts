/**
 * Turning whatever a render throws into a TemplateRenderError (RLD_ERR_MISSING_KEY or
 * RLD_ERR_RENDER) that names the template, the line, and the key or helper — and never a value.
 *
 * Sources of errors, and how each is read:
 * (1) a `TemplateFault` from one of our helpers: already names its helper, key and line;
 * (2) Handlebars' strict-mode miss `"NAME" not defined in <object> - L:C`: the object part is a
 *     view marker (secrets / env / target / root) or, for anything else, possibly a value — so
 *     it is never shown; the path expression at L:C explains the miss;
 * (3) a TypeError from a lookup through a text value or a missing parent: rewritten by shape;
 * (4) anything else: its message, redacted of every secret value, and a redacted copy as cause.
 */
import { ReloaderError } from '../errors.js';
import { createRedactor, markerKindAtEnd, type RenderState } from './context.js';
import { TemplateFault } from './helpers.js';

/** A render failure; `keysRead` lets the daemon retry the target when one of those keys changes. */
export class TemplateRenderError extends ReloaderError {
  declare readonly keysRead: ReadonlySet<string>;
  constructor(
    code: 'RLD_ERR_MISSING_KEY' | 'RLD_ERR_RENDER',
    message: string,
    init: { details: Record<string, unknown>; cause?: unknown; keysRead: ReadonlySet<string> },
  ) {
    super(code, message, { details: init.details, cause: init.cause });
    this.name = 'TemplateRenderError';
    // Not enumerable: kept out of util.inspect and JSON, which need only the details.
    Object.defineProperty(this, 'keysRead', { value: init.keysRead, enumerable: false });
  }
}

/** Where a path expression sits in the template and what it says (from the AST). */
export interface PathInfo {
  original: string;
  parts: string[];
  data: boolean;
  depth: number;
  loc?: { start: { line: number; column: number } } | null;
}

interface Located {
  lineNumber?: unknown;
  column?: unknown;
}

/** `template "name"` or `template "name" line N`: how every template message starts. */
export function where(name: string, line: number | undefined): string {
  return line === undefined ? `template "${name}"` : `template "${name}" line ${line}`;
}

/** A copy of a foreign error with its message and stack redacted (the original is dropped). */
function sanitized(err: unknown, redact: (s: string) => string): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const copy = new Error(redact(e.message));
  copy.name = e.name;
  copy.stack = redact(e.stack ?? '');
  return copy;
}

const STRICT_MISS = /^"([\s\S]*?)" not defined in /;
const IN_ON_PRIMITIVE = /^Cannot use 'in' operator to search for '([\s\S]*?)' in /;
const READ_OF_NOTHING = /^Cannot read properties of (?:undefined|null) \(reading '([\s\S]*?)'\)/;

/** Anything a render threw → a TemplateRenderError naming template, line, key or helper. */
export function renderError(
  name: string,
  err: unknown,
  state: RenderState,
  paths: ReadonlyMap<string, PathInfo>,
): ReloaderError {
  const redact = createRedactor(state.ctx);
  const keysRead = state.keysRead;
  const missing = (
    kind: 'secret' | 'env',
    key: string,
    line: number | undefined,
    helper?: string,
    hint = '',
  ): ReloaderError => {
    const what =
      kind === 'secret'
        ? `secret "${key}", which is not set in any source`
        : `environment variable "${key}", which is not set`;
    const details: Record<string, unknown> = {
      template: name,
      [kind === 'secret' ? 'key' : 'env']: key,
    };
    if (line !== undefined) details.line = line;
    if (helper !== undefined) details.helper = helper;
    return new TemplateRenderError(
      'RLD_ERR_MISSING_KEY',
      `${where(name, line)} reads ${what}${hint}`,
      { details, keysRead },
    );
  };
  const failed = (
    reason: string,
    line: number | undefined,
    extra: Record<string, unknown> = {},
    cause?: unknown,
  ): ReloaderError => {
    const details: Record<string, unknown> = { template: name, ...extra };
    if (line !== undefined) details.line = line;
    return new TemplateRenderError('RLD_ERR_RENDER', `${where(name, line)}: ${reason}`, {
      details,
      keysRead,
      cause: cause === undefined ? undefined : sanitized(cause, redact),
    });
  };

  // (1) our helpers' faults
  if (err instanceof TemplateFault) {
    const { line, helper, key, cause } = err.info;
    if (err.kind === 'missing-secret' && key !== undefined)
      return missing('secret', key, line, helper);
    if (err.kind === 'missing-env' && key !== undefined) return missing('env', key, line, helper);
    const reason =
      cause === undefined ? err.reason : `${err.reason}: ${sanitized(cause, redact).message}`;
    return failed(reason, line, helper === undefined ? {} : { helper }, cause);
  }

  const e = (err ?? {}) as Error & Located;
  const message = typeof e.message === 'string' ? e.message : String(err);
  const line = typeof e.lineNumber === 'number' ? e.lineNumber : undefined;
  // (2) a strict-mode miss
  const strict = STRICT_MISS.exec(message);
  if (strict && line !== undefined) {
    const body = message.replace(/ - \d+:\d+$/, '');
    const kind = markerKindAtEnd(body);
    // With a marker the name is everything between the first quote and the fixed tail.
    const prop = kind ? body.slice(1, body.lastIndexOf('" not defined in ')) : (strict[1] ?? '');
    if (kind === 'secrets') return missing('secret', prop, line);
    if (kind === 'env') return missing('env', prop, line);
    // The object lacking `prop` was not a view: find the path to explain it.
    const path = paths.get(`${line}:${typeof e.column === 'number' ? e.column : -1}`);
    if (path && !path.data && path.depth === 0 && path.parts.length >= 3) {
      const [head, key] = path.parts;
      const dotted = `${path.parts.slice(1).join('.')}`;
      if (head === 'secrets' && key !== undefined && state.missedSecrets.has(key)) {
        return missing(
          'secret',
          key,
          line,
          undefined,
          ` (for a key with dots write secrets.[${dotted}] or secret "${dotted}")`,
        );
      }
      if (head === 'env' && key !== undefined && state.missedEnv.has(key))
        return missing('env', key, line);
    }
    const context = kind === 'root' ? ' (the context has only secrets, env and target)' : '';
    const shown = path ? ` in {{${path.original}}}` : '';
    return failed(`"${redact(prop)}" is not defined${shown}${context}`, line);
  }
  // (3) lookups through a text value or through nothing (no line: Handlebars gives none)
  const onPrimitive = IN_ON_PRIMITIVE.exec(message);
  // (a property name computed at render time can be a secret value: redacted like the rest)
  if (onPrimitive) {
    return failed(`"${redact(onPrimitive[1] ?? '')}" cannot be read from a text value`, undefined);
  }
  const ofNothing = READ_OF_NOTHING.exec(message);
  if (ofNothing) {
    return failed(
      `"${redact(ofNothing[1] ?? '')}" cannot be read: the value before it does not exist`,
      undefined,
    );
  }
  // (4) anything else
  return failed(`failed: ${redact(message.replace(/ - \d+:\d+$/, ''))}`, line, {}, err);
}
