/**
 * A small stand-in for the zod v3 schemas on Infisical's routes. Each reader checks one field in
 * schema order and, on failure, pushes the issue zod would produce (same keys, same key order,
 * same messages), so a 422 from this server reads byte-for-byte like Infisical's
 * `{"error":"ValidationFailure","message":[...issues]}`.
 *
 * Covered: required/optional trimmed strings, `"true"|"false"` enums with a default, native enums,
 * `z.coerce.number()`, and the top-level `z.object` check on request bodies.
 */
import { validationFailure, type ZodIssue } from './api-error.js';

type Bag = Record<string, unknown>;

/** zod's `getParsedType` names. */
function parsedType(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isNaN(value) ? 'nan' : 'number';
  return typeof value;
}

function invalidType(expected: string, value: unknown, path: (string | number)[]): ZodIssue {
  const received = parsedType(value);
  const message =
    received === 'undefined' ? 'Required' : `Expected ${expected}, received ${received}`;
  return { code: 'invalid_type', expected, received, path, message };
}

const joinValues = (values: readonly string[]) => values.map((v) => `'${v}'`).join(' | ');

/** Collects issues while reading fields; `done()` throws the 422 when any were found. */
export class Validator {
  readonly issues: ZodIssue[] = [];
  private readonly bag: Bag;
  private readonly notObject: boolean = false;

  /** `source` is the parsed query or body; a body that is not an object fails at path `[]`. */
  constructor(source: unknown, kind: 'query' | 'body') {
    if (typeof source === 'object' && source !== null && !Array.isArray(source)) {
      this.bag = source as Bag;
    } else {
      this.bag = {};
      if (kind === 'body') {
        this.issues.push(invalidType('object', source, []));
        this.notObject = true;
      }
    }
  }

  /** `z.string().trim()` (required unless `optional`). */
  string(key: string, optional: true): string | undefined;
  string(key: string, optional?: false): string;
  string(key: string, optional = false): string | undefined {
    const value = this.bag[key];
    if (value === undefined && optional) return undefined;
    if (typeof value !== 'string') {
      this.issues.push(invalidType('string', value, [key]));
      return optional ? undefined : '';
    }
    return value.trim();
  }

  /** `z.string().trim().default("/").transform(removeTrailingSlash)` for `secretPath`. */
  secretPath(key = 'secretPath'): string {
    const value = this.bag[key] === undefined ? '/' : this.string(key);
    return removeTrailingSlash(value);
  }

  /** `z.enum(values).default(def)`. */
  enumValue<T extends string>(key: string, values: readonly T[], def: T): T {
    const value = this.bag[key];
    if (value === undefined) return def;
    if (typeof value !== 'string') {
      const received = parsedType(value);
      this.issues.push({
        expected: joinValues(values),
        received,
        code: 'invalid_type',
        path: [key],
        message: `Expected ${joinValues(values)}, received ${received}`,
      });
      return def;
    }
    if (!(values as readonly string[]).includes(value)) {
      this.issues.push({
        received: value,
        code: 'invalid_enum_value',
        options: [...values],
        path: [key],
        message: `Invalid enum value. Expected ${joinValues(values)}, received '${value}'`,
      });
      return def;
    }
    return value as T;
  }

  /** Infisical's `convertStringBoolean(def)`: only the strings "true" / "false". */
  bool(key: string, def: boolean): boolean {
    return this.enumValue(key, ['true', 'false'], def ? 'true' : 'false') === 'true';
  }

  /** `z.coerce.number().optional()`. */
  optionalNumber(key: string): number | undefined {
    const value = this.bag[key];
    if (value === undefined) return undefined;
    const n = Number(value);
    if (Number.isNaN(n)) {
      this.issues.push(invalidType('number', n, [key]));
      return undefined;
    }
    return n;
  }

  /**
   * Throw Infisical's 422 when any field failed. A body that is not an object is one issue
   * (zod's `z.object` stops there), not one more per field that was then read.
   */
  done(): void {
    if (this.notObject) throw validationFailure(this.issues.slice(0, 1));
    if (this.issues.length > 0) throw validationFailure(this.issues);
  }
}

/** Infisical's `removeTrailingSlash`: `/a/b/` → `/a/b`, `/` stays `/`. */
export function removeTrailingSlash(path: string): string {
  if (path === '/') return path;
  return path.endsWith('/') ? path.slice(0, -1) : path;
}

/** Infisical's `isValidSecretPath`: every segment is `[a-zA-Z0-9-_]+`. */
export function isValidSecretPath(path: string): boolean {
  return path
    .split('/')
    .filter((el) => el.length > 0)
    .every((name) => /^[a-zA-Z0-9-_]+$/.test(name));
}
