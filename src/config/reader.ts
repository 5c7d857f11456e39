/**
 * `SpecReader`: typed access to the raw (schema-valid) spec data with the YAML location of every
 * path, so each conversion or cross-field rule fails with file, YAML path and line. Also holds
 * the one DEFAULTS literal and the wait-inheritance rule shared by `defaults` and targets.
 */
import { isAbsolute, resolve } from 'node:path';
import { SpecError } from '../errors.js';
import type { WaitSpec } from './types.js';
import { parseDuration } from './duration.js';
import type { EnvLike } from './env.js';
import type { Segment, SpecSource } from './source.js';
import { parseMode } from './validate.js';

/** Every default of the spec in one place. */
export const DEFAULTS = Object.freeze({
  url: 'http://infisical.infisical.svc.cluster.local:8080/api',
  tokenPath: '/var/run/secrets/kubernetes.io/serviceaccount/token',
  renewAt: 0.8,
  timeout: '10s',
  environment: 'dev',
  secretPath: '/',
  listen: '0.0.0.0:8080',
  webhookPath: '/infisical/webhook',
  maxAge: '5m',
  payloadValues: 'refetch' as const,
  adminListen: '0.0.0.0:9090',
  peersTimeout: '2s',
  heartbeatTimeout: '45s',
  reconnectMin: '1s',
  reconnectMax: '60s',
  mode: '0600',
  waitMin: '200ms',
  waitMax: '2s',
  commandTimeout: '10s',
  httpMethod: 'POST',
  verifyAttempts: 3,
  verifyInterval: '1s',
});

/** Reads and converts values of the raw spec, failing with the YAML location of a path. */
export class SpecReader {
  constructor(
    readonly source: SpecSource,
    readonly env: EnvLike,
    /** Folder of the spec file: relative paths resolve against it. */
    readonly dir: string,
  ) {}

  fail(path: readonly Segment[], problem: string): never {
    throw new SpecError(this.source.locate(path), problem);
  }

  /** The raw value at `path`; `null` blocks read as absent. */
  get<T = unknown>(path: readonly Segment[]): T | undefined {
    let node: unknown = this.source.data;
    for (const segment of path) {
      if (node === null || typeof node !== 'object') return undefined;
      node = (node as Record<string | number, unknown>)[segment];
    }
    return (node ?? undefined) as T | undefined;
  }

  /** True when the key at `path` is written, even with an empty (null) value. */
  has(path: readonly Segment[]): boolean {
    const parent = this.get<Record<string | number, unknown>>(path.slice(0, -1));
    const key = path[path.length - 1];
    return (
      key !== undefined &&
      typeof parent === 'object' &&
      Object.prototype.hasOwnProperty.call(parent, key) &&
      parent[key] !== undefined
    );
  }

  /** A non-empty environment variable, or undefined. */
  envVar(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value === '' ? undefined : value;
  }

  /** Runs a converter and reports its error at `path`. */
  convert<T>(path: readonly Segment[], fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof SpecError) throw err;
      const problem = err instanceof Error ? err.message : String(err);
      // A value from ${VAR} is never echoed: say which variable it came from instead.
      const names = this.source.envNames(path);
      const raw = this.get(path);
      const safe =
        names === undefined || raw === undefined
          ? problem
          : problem
              .split(String(raw))
              .join(`(value of ${names.map((n) => '${' + n + '}').join(', ')})`);
      throw new SpecError(this.source.locate(path), safe, { cause: names ? undefined : err });
    }
  }

  duration(path: readonly Segment[], fallback: string): number {
    const text = this.get<string>(path) ?? fallback;
    return this.convert(path, () => parseDuration(text));
  }

  mode(path: readonly Segment[], fallback: number): number {
    const text = this.get<string>(path);
    return text === undefined ? fallback : this.convert(path, () => parseMode(text));
  }

  /** An optional file path, made absolute against the spec's folder. */
  filePath(path: readonly Segment[]): string | undefined {
    const text = this.get<string>(path);
    return text === undefined
      ? undefined
      : isAbsolute(text)
        ? resolve(text)
        : resolve(this.dir, text);
  }

  /** Fails unless exactly one of `keys` is present in the mapping at `path`. */
  exactlyOne<K extends string>(path: readonly Segment[], keys: readonly K[], what: string): K {
    const present = keys.filter((k) => this.has([...path, k]));
    if (present.length !== 1) {
      const list = keys.join(', ');
      const problem =
        present.length === 0
          ? `${what} needs one of: ${list}`
          : `${what} takes exactly one of ${list}, but has ${present.join(' and ')}`;
      this.fail(path, problem);
    }
    return present[0] as K;
  }
}

/**
 * A wait block inheriting per field from `base`: `min` defaults to `base.minMs`; `max` defaults
 * to the larger of the effective `min` and `base.maxMs` (so `min: 5s` alone is not an error).
 */
export function buildWait(reader: SpecReader, path: Segment[], base: WaitSpec): WaitSpec {
  const minMs = reader.has([...path, 'min']) ? reader.duration([...path, 'min'], '') : base.minMs;
  const maxMs = reader.has([...path, 'max'])
    ? reader.duration([...path, 'max'], '')
    : Math.max(minMs, base.maxMs);
  if (minMs > maxMs)
    reader.fail(path, `wait.min (${minMs}ms) is greater than wait.max (${maxMs}ms)`);
  return { minMs, maxMs };
}
