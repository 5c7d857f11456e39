/**
 * Structural validation of the raw spec against the JSON Schema that ships in
 * `schema/reloader.schema.json` (the same file editors use). Runs after `${VAR}` substitution.
 *
 * The schema also states the "exactly one of" rules (oneOf / not / min-maxProperties) so that
 * editors flag them, but ajv words those errors badly; they are skipped here and `build.ts`
 * reports the same rules with a sentence that names the keys involved.
 *
 * Start-up cost: loading ajv and compiling the schema took most of a cold `validate` or
 * `run --once` (≈ 0.3 s of ≈ 0.5 s on an idle 2-core machine, and ~12 MiB of RSS for the
 * daemon's whole life). So `npm run build` also writes ajv's *standalone* code for the schema,
 * `schema-validator.cjs`, next to the compiled module (`writeStandaloneValidator`): the same
 * generated function ajv would compile at run time, with the same options and the same
 * `errors`. It carries the sha256 of the schema text it came from; `specSchema` uses it only
 * when that matches the shipped schema, and otherwise (tsx, a stale build) compiles with ajv,
 * loaded on demand.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv, ErrorObject, Options, ValidateFunction } from 'ajv';
import { SpecError } from '../errors.js';
import { DURATION_HINT } from './duration.js';
import type { Segment, SpecSource } from './source.js';

type SchemaNode = Record<string, unknown>;

/**
 * Absolute path of the shipped schema. Found relative to this module, from `src/config/`
 * (tsx, tests) or `dist/src/config/` (the built package, where `schema/` sits at the root).
 */
export function schemaPath(): string {
  for (const up of ['../../schema/', '../../../schema/']) {
    const candidate = fileURLToPath(new URL(`${up}reloader.schema.json`, import.meta.url));
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('schema/reloader.schema.json is missing from the package');
}

const require = createRequire(import.meta.url);

/** The build-time validator's file name; it lives next to this module (dist/src/config/). */
export const STANDALONE_VALIDATOR = 'schema-validator.cjs';

const AJV_OPTIONS: Options = {
  allErrors: true,
  strict: true,
  strictRequired: false, // oneOf branches name keys declared in the parent's properties
  allowUnionTypes: true,
};

/** How a validator was obtained: the build-time file, or ajv at run time. */
export type ValidatorSource = 'standalone' | 'ajv';

let cached: { schema: SchemaNode; validate: ValidateFunction; source: ValidatorSource } | undefined;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function standalonePath(): string {
  return fileURLToPath(new URL(`./${STANDALONE_VALIDATOR}`, import.meta.url));
}

/** The build-time validator, when it exists and was generated from exactly `schemaText`. */
function loadStandalone(schemaText: string, file = standalonePath()): ValidateFunction | undefined {
  if (!existsSync(file)) return undefined;
  let fn: ValidateFunction & { schemaHash?: unknown };
  try {
    fn = require(file) as typeof fn;
  } catch {
    return undefined; // unreadable or damaged: ajv at run time still gives the right answer
  }
  return typeof fn === 'function' && fn.schemaHash === sha256(schemaText) ? fn : undefined;
}

/** ajv, loaded only here (not at module load: the built package does not need it at all). */
function compileWithAjv(
  schema: SchemaNode,
  options: Options = {},
): { ajv: Ajv; validate: ValidateFunction } {
  const { Ajv: AjvClass } = require('ajv') as typeof import('ajv');
  const ajv = new AjvClass({ ...AJV_OPTIONS, ...options });
  return { ajv, validate: ajv.compile(schema) };
}

/**
 * The parsed schema and its validator, obtained once per process: the build-time standalone
 * validator when it matches the schema, else ajv's compilation (`source` says which).
 */
export function specSchema(): {
  schema: SchemaNode;
  validate: ValidateFunction;
  source: ValidatorSource;
} {
  if (cached === undefined) {
    const text = readFileSync(schemaPath(), 'utf8');
    const schema = JSON.parse(text) as SchemaNode;
    const standalone = loadStandalone(text);
    cached = standalone
      ? { schema, validate: standalone, source: 'standalone' }
      : { schema, validate: compileWithAjv(schema).validate, source: 'ajv' };
  }
  return cached;
}

/**
 * Build step (`npm run build`): write ajv's standalone code for the shipped schema to `file`
 * (default: `schema-validator.cjs` next to this module), tagged with the schema's sha256.
 * The code needs only `ajv/dist/runtime/*` at run time. Returns the path written.
 */
export function writeStandaloneValidator(file = standalonePath()): string {
  const text = readFileSync(schemaPath(), 'utf8');
  const { ajv, validate } = compileWithAjv(JSON.parse(text) as SchemaNode, {
    code: { source: true, esm: false },
  });
  const standaloneCode = (
    require('ajv/dist/standalone') as { default: (ajv: Ajv, fn: ValidateFunction) => string }
  ).default;
  writeFileSync(
    file,
    '// Generated by `npm run build` (writeStandaloneValidator in src/config/schema.ts) from\n' +
      '// schema/reloader.schema.json. Do not edit: it is rebuilt, and ignored when stale.\n' +
      `${standaloneCode(ajv, validate)}\n` +
      `module.exports.schemaHash = ${JSON.stringify(sha256(text))};\n`,
  );
  return file;
}

/** For tests: load the validator written by `writeStandaloneValidator(file)` if it matches. */
export function loadStandaloneValidator(file: string): ValidateFunction | undefined {
  return loadStandalone(readFileSync(schemaPath(), 'utf8'), file);
}

/** The schema node that describes the value at `path` (following `$ref` and `items`). */
export function schemaAt(path: readonly Segment[]): SchemaNode | undefined {
  const { schema } = specSchema();
  const deref = (node: SchemaNode | undefined): SchemaNode | undefined => {
    const ref = node?.['$ref'];
    if (typeof ref !== 'string') return node;
    const name = ref.replace('#/definitions/', '');
    return (schema['definitions'] as Record<string, SchemaNode>)[name];
  };
  let node = deref(schema);
  for (const segment of path) {
    if (node === undefined) return undefined;
    const props = node['properties'] as Record<string, SchemaNode> | undefined;
    if (typeof segment === 'string' && props?.[segment] !== undefined) node = deref(props[segment]);
    else if (typeof segment === 'number' && node['items'] !== undefined)
      node = deref(node['items'] as SchemaNode);
    else if (typeof node['additionalProperties'] === 'object')
      node = deref(node['additionalProperties'] as SchemaNode);
    else return undefined;
  }
  return node;
}

function typesOf(node: SchemaNode | undefined): string[] {
  const type = node?.['type'];
  return Array.isArray(type) ? (type as string[]) : typeof type === 'string' ? [type] : [];
}

/**
 * Gives values that came from `${VAR}` the type their field wants: env values are always text,
 * but `renewAt: ${RENEW_AT:-0.8}` or `recursive: ${RECURSIVE:-false}` must work. Only fields whose
 * schema does not accept a string are converted, so a numeric-looking secret stays a string.
 */
export function coerceEnvValues(
  source: SpecSource,
  value: unknown = source.data,
  path: Segment[] = [],
): unknown {
  if (Array.isArray(value)) {
    value.forEach(
      (item, index) => (value[index] = coerceEnvValues(source, item, [...path, index])),
    );
    return value;
  }
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record))
      record[key] = coerceEnvValues(source, record[key], [...path, key]);
    return value;
  }
  if (typeof value !== 'string' || source.envNames(path) === undefined) return value;
  const types = typesOf(schemaAt(path));
  if (types.length === 0 || types.includes('string')) return value;
  if ((types.includes('number') || types.includes('integer')) && /^-?\d+(\.\d+)?$/.test(value)) {
    return Number(value);
  }
  if (types.includes('boolean') && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

/** Keywords whose rule build.ts re-checks with a clearer message. */
const DEFERRED = new Set(['oneOf', 'anyOf', 'not', 'minProperties', 'maxProperties']);
const PRIORITY: Record<string, number> = { additionalProperties: 0, required: 1, type: 2 };
/** An unknown key is reported first wherever it is: a typo also causes "missing required key". */
const rank = (error: ErrorObject): number => (error.keyword === 'additionalProperties' ? 0 : 1);

/**
 * Validates `source.data` against the schema and throws a SpecError for the first problem in
 * file order, naming its file, YAML path and line. An unknown key points at the key's own line.
 */
export function validateAgainstSchema(source: SpecSource): void {
  const { validate } = specSchema();
  if (source.data === null) {
    throw new SpecError(source.locate([]), 'the spec is empty; it needs at least a `targets` list');
  }
  if (validate(source.data)) return;
  const errors = (validate.errors ?? [])
    .filter((e) => !DEFERRED.has(e.keyword) && !/\/(oneOf|anyOf|not)\//.test(e.schemaPath))
    .map((e) => ({ error: e, path: errorPath(e, source.data) }))
    .map((item) => ({ ...item, location: source.locate(item.path) }))
    .sort(
      (a, b) =>
        rank(a.error) - rank(b.error) ||
        a.location.line - b.location.line ||
        (PRIORITY[a.error.keyword] ?? 9) - (PRIORITY[b.error.keyword] ?? 9),
    );
  const first = errors[0];
  if (first === undefined) return; // only deferred rules failed: build.ts words them
  throw new SpecError(first.location, describe(first.error, first.path, source));
}

/** instancePath (a JSON pointer) → path segments, plus the unknown key for additionalProperties. */
function errorPath(error: ErrorObject, data: unknown): Segment[] {
  const path: Segment[] = [];
  let node = data;
  const parts = error.instancePath === '' ? [] : error.instancePath.slice(1).split('/');
  for (const raw of parts) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const segment: Segment = Array.isArray(node) ? Number(part) : part;
    path.push(segment);
    node = (node as Record<string, unknown> | undefined)?.[part];
  }
  if (error.keyword === 'additionalProperties') {
    path.push(String((error.params as { additionalProperty: string }).additionalProperty));
  }
  return path;
}

function shown(source: SpecSource, path: readonly Segment[], value: unknown): string {
  const names = source.envNames(path);
  if (names !== undefined) return `(value of ${names.map((n) => '${' + n + '}').join(', ')})`;
  return JSON.stringify(value);
}

function valueAt(data: unknown, path: readonly Segment[]): unknown {
  let node = data;
  for (const segment of path)
    node = (node as Record<string | number, unknown> | undefined)?.[segment];
  return node;
}

const TYPE_WORDS: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true or false',
  null: 'empty',
};

/** One readable sentence for an ajv error. */
function describe(error: ErrorObject, path: Segment[], source: SpecSource): string {
  const params = error.params as Record<string, unknown>;
  const def = /^#\/definitions\/(\w+)\//.exec(error.schemaPath)?.[1];
  const value = valueAt(source.data, path);
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params['additionalProperty']);
      const known = Object.keys(
        (schemaAt(path.slice(0, -1))?.['properties'] as object | undefined) ?? {},
      );
      const near = known.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
      return `unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ''}`;
    }
    case 'required':
      return `missing required key "${String(params['missingProperty'])}"`;
    case 'type': {
      if (def === 'duration' && typeof value === 'number') {
        return `a duration needs a unit: write "${value}s" or "${value}ms", not ${value} (${DURATION_HINT})`;
      }
      if (def === 'duration') return `must be a duration string (${DURATION_HINT})`;
      if (def === 'mode' && typeof value === 'number') {
        const text = source.sourceText(path) ?? String(value);
        return `YAML reads the unquoted mode ${text} as a number; quote it as an octal string, e.g. "0${text.replace(/^0o?/, '')}"`;
      }
      const wanted = String(params['type'])
        .split(',')
        .filter((t) => t !== 'null');
      if (
        wanted.includes('string') &&
        (typeof value === 'boolean' ||
          value === null ||
          (typeof value === 'number' && !wanted.includes('number')))
      ) {
        // `command: [true]`, `[echo, null]`: YAML read an unquoted word as a boolean, a number
        // or null where a string was meant.
        const text = source.sourceText(path) ?? String(value);
        return `YAML reads the unquoted ${text} as ${value === null ? 'null' : typeof value === 'boolean' ? 'a boolean' : 'a number'}; quote it: "${text}"`;
      }
      return `must be ${wanted.map((t) => TYPE_WORDS[t] ?? t).join(' or ')}`;
    }
    case 'pattern':
      if (def === 'duration')
        return `invalid duration ${shown(source, path, value)}; ${DURATION_HINT}`;
      if (def === 'mode')
        return `invalid mode ${shown(source, path, value)}; use an octal string such as "0600" or "0644"`;
      if (path.at(-1) === 'signal') return `invalid signal name ${shown(source, path, value)}`;
      if (path.at(-1) === 'name') return 'target names use letters, digits, ".", "_" and "-" only';
      if (path.at(-1) === 'path') return 'must start with "/"';
      return `has an invalid format (${shown(source, path, value)})`;
    case 'enum':
      return `must be one of: ${(params['allowedValues'] as unknown[]).join(', ')}`;
    case 'minItems':
      return 'must not be empty';
    case 'minLength':
      return 'must not be empty';
    case 'maxLength':
      if (path.at(-1) === 'processName') {
        return `processName is matched against /proc/<pid>/comm, which holds at most ${String(params['limit'])} characters`;
      }
      return `must be at most ${String(params['limit'])} characters`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      if (path.at(-1) === 'renewAt') return 'must be between 0 and 1 (exclusive), e.g. 0.8';
      return `must be ${String(params['comparison'])} ${String(params['limit'])}`;
    default:
      return error.message ?? `failed schema rule ${error.keyword}`;
  }
}

/** Levenshtein distance, for "did you mean" on unknown keys. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + cost,
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
