/**
 * reloader.yaml → a frozen `ReloaderSpec`. The pipeline, in order:
 *
 * (1) parse YAML keeping every node's line (source.ts); syntax errors carry yaml's line;
 * (2) substitute `${VAR}` / `${VAR:-default}` in every string scalar (env.ts);
 * (3) give env-fed values the type their field wants (`renewAt: ${X:-0.8}` is a number);
 * (4) validate against the shipped JSON Schema — unknown keys, types, forms (schema.ts);
 * (5) apply defaults from the DEFAULTS literal and the environment, convert durations and modes,
 *     resolve relative paths, check the cross-field rules (build.ts, targets.ts);
 * (6) deep-freeze.
 *
 * Every failure is a SpecError naming the file, the dotted YAML path and the line. No network,
 * no template compilation, no check that files exist: `validate` and the daemon do those.
 *
 * Paths: template, destination, caFile, tokenPath, clientSecretFile, tokenFile, secretFile and
 * pidFile may be relative; they resolve against the spec file's folder (never the cwd), so a
 * spec and its templates can move together.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { SpecError } from '../errors.js';
import type { ReloaderSpec } from './types.js';
import { buildSpec } from './build.js';
import type { EnvLike } from './env.js';
import { SpecReader } from './reader.js';
import { coerceEnvValues, validateAgainstSchema } from './schema.js';
import { readSpecSource } from './source.js';
import type { SpecLocation } from '../errors.js';
import { deepFreeze } from './validate.js';

/**
 * Largest spec accepted, in bytes. A real reloader.yaml is a few KiB (templates live in their
 * own files). The YAML parser needs about 1 GB and ten seconds for 1 MiB of tiny nodes (and a
 * 10 MB document takes minutes), so a runaway file is refused up front; 256 KiB still parses
 * in about two seconds at worst, and leaves room for a hundred inline certificates.
 */
export const MAX_SPEC_BYTES = 262_144;

/** How a spec is read: the library reads the same format without any target. */
export interface ParseOptions {
  /**
   * The spec describes only the link to Infisical (`infisical`, `sources`, `webhook`, `admin`):
   * `targets` may be missing and is ignored when present; the result has no target.
   */
  withoutTargets?: boolean;
}

/** A target that satisfies the schema while the library's spec is checked; never kept. */
const PLACEHOLDER_TARGETS = [{ name: 'none', files: [{ contents: '', destination: 'none' }] }];

/** Where the `webhook` block of each loaded spec is, for requireWebhookSecret's error. */
const webhookLocations = new WeakMap<ReloaderSpec, SpecLocation>();

/**
 * Parses and validates spec text. `file` names the spec in errors and anchors relative paths
 * (made absolute with the cwd when it is relative). `env` feeds `${VAR}` and the defaults taken
 * from the guide's INFISICAL_* variables. Synchronous and pure apart from reading the schema once.
 */
export function parseSpec(
  text: string,
  file: string,
  env: EnvLike = process.env,
  options: ParseOptions = {},
): ReloaderSpec {
  const absolute = resolve(file);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_SPEC_BYTES) throw tooLarge(absolute, bytes);
  const source = readSpecSource(text, absolute, env); // (1) (2)
  if (options.withoutTargets) {
    if (source.data === null) source.data = {};
    if (typeof source.data === 'object' && !Array.isArray(source.data)) {
      (source.data as Record<string, unknown>)['targets'] = PLACEHOLDER_TARGETS;
    }
  }
  coerceEnvValues(source); // (3)
  validateAgainstSchema(source); // (4)
  const reader = new SpecReader(source, env, dirname(absolute));
  const spec = buildSpec(reader, absolute); // (5)
  if (options.withoutTargets) spec.targets = [];
  webhookLocations.set(spec, source.locate(['webhook']));
  return deepFreeze(spec); // (6)
}

function tooLarge(file: string, bytes: number): SpecError {
  return new SpecError(
    { file, yamlPath: '', line: 0 },
    `spec file is too large (${bytes} bytes; at most ${MAX_SPEC_BYTES})`,
  );
}

/**
 * `bytes` as UTF-8 text. Invalid UTF-8 is a SpecError naming the first bad line: a lenient
 * decode would turn the bad bytes into U+FFFD and quietly write a file at a path nobody named.
 */
function decodeUtf8(bytes: Buffer, file: string): string {
  const strict = new TextDecoder('utf-8', { fatal: true });
  try {
    return strict.decode(bytes);
  } catch {
    let line = 1;
    let start = 0;
    for (;;) {
      const nl = bytes.indexOf(0x0a, start);
      const end = nl === -1 ? bytes.length : nl;
      try {
        strict.decode(bytes.subarray(start, end));
      } catch {
        break;
      }
      if (nl === -1) break;
      line += 1;
      start = nl + 1;
    }
    throw new SpecError({ file, yamlPath: '', line }, 'the spec file is not valid UTF-8 text');
  }
}

/**
 * Reads `file` and parses it; an unreadable file, one over MAX_SPEC_BYTES or one that is not
 * UTF-8 is a SpecError (exit code 2) naming it.
 */
export async function loadSpec(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  options: ParseOptions = {},
): Promise<ReloaderSpec> {
  const absolute = resolve(file);
  let bytes: Buffer;
  try {
    bytes = await readFile(absolute);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const problem =
      code === 'ENOENT' ? 'spec file not found' : `cannot read spec file (${code ?? 'error'})`;
    throw new SpecError({ file: absolute, yamlPath: '', line: 0 }, problem, { cause: err });
  }
  if (bytes.length > MAX_SPEC_BYTES) throw tooLarge(absolute, bytes.length);
  return parseSpec(decodeUtf8(bytes, absolute), absolute, env, options);
}

/** The spec path the CLI uses: `--config`, else `$RELOADER_CONFIG`, else `./reloader.yaml`; absolute. */
export function resolveConfigPath(flag: string | undefined, env: EnvLike = process.env): string {
  const chosen =
    flag !== undefined && flag !== '' ? flag : env['RELOADER_CONFIG'] || './reloader.yaml';
  return resolve(chosen);
}

/**
 * The daemon's extra rule: webhooks must be verifiable, so a spec without `webhook.secret`,
 * `webhook.secretFile` or `$INFISICAL_WEBHOOK_SECRET` is refused unless `allowUnsigned: true`.
 * Kept out of parseSpec on purpose: `--once`, `validate` and `render` never listen for webhooks
 * and must not demand a secret they would not use.
 */
export function requireWebhookSecret(spec: ReloaderSpec): void {
  const { webhook } = spec;
  if (webhook.allowUnsigned || webhook.secret !== undefined || webhook.secretFile !== undefined)
    return;
  const location = webhookLocations.get(spec) ?? { file: spec.file, yamlPath: 'webhook', line: 0 };
  throw new SpecError(
    { ...location, yamlPath: 'webhook' },
    'the webhook needs a signing secret: set webhook.secretFile, webhook.secret or INFISICAL_WEBHOOK_SECRET ' +
      '(or allowUnsigned: true, for local experiments only)',
  );
}
