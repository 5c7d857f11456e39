/**
 * Targets as the engine holds them: every file's template compiled once (at start and on
 * SIGHUP), so that `validate`, `--once` and the daemon find template errors before any network
 * call (exit 2). Rendering a target renders every file in memory first; one failing
 * file means nothing of that target is written.
 */
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import type { FileSpec, Pkcs12Spec, ReloaderSpec, TargetSpec } from '../config/types.js';
import { ReloaderError, asReloaderError } from '../errors.js';
import type { RenderedFile } from '../output/commit.js';
import type { SecretMap } from '../secrets/snapshot.js';
import { compileTemplate, type CompiledTemplate } from '../template/engine.js';
import { buildPkcs12, type Pkcs12Inputs } from '../output/pkcs12.js';
import { firstCertificate } from '../reload/verify.js';

/**
 * The bytes of a file with `encoding: base64`: standard or URL-safe alphabet, padding and
 * whitespace (line breaks of a PEM-style body) allowed, anything else a render error naming
 * the file — never a partial decode (Node's decoder would silently skip a bad character).
 */
export function decodeFileBase64(text: string, name: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  const body = compact.replace(/={1,2}$/, '');
  const padded = compact.length !== body.length;
  if (
    !/^[A-Za-z0-9+/_-]*$/.test(body) ||
    body.length % 4 === 1 ||
    (padded && compact.length % 4 !== 0)
  ) {
    throw new ReloaderError(
      'RLD_ERR_RENDER',
      `${name}: the rendered text is not valid base64 (the file has encoding: base64); nothing was written`,
      { details: { template: name } },
    );
  }
  return Buffer.from(body.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

export interface CompiledFile {
  spec: FileSpec;
  /** The name errors report the file under (template path or YAML path). */
  name: string;
  /** The file's template; absent for a pkcs12 file, whose parts are in `pkcs12`. */
  template?: CompiledTemplate;
  pkcs12?: Pkcs12Templates;
}

/** The compiled parts of a pkcs12 file (`chain` and `friendlyName` are optional). */
export type Pkcs12Templates = Record<keyof Pkcs12Spec, CompiledTemplate | undefined>;

export interface CompiledTarget {
  spec: TargetSpec;
  files: CompiledFile[];
}

export interface RenderedTarget {
  files: RenderedFile[];
  /** Every secret key any file of the target read. */
  keysRead: Set<string>;
}

/** The name a template is reported under: its path relative to the spec, or the YAML path. */
export function templateName(spec: ReloaderSpec, file: FileSpec): string {
  if (file.template !== undefined) return relative(spec.dir, file.template) || file.template;
  return `${file.origin.yamlPath}.${file.pkcs12 ? 'pkcs12' : 'contents'}`;
}

/** Decodes template files, refusing bytes that are not UTF-8 (they would render as U+FFFD). */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Template files read at the same time (bounded: a spec may name hundreds). */
const PARALLEL_READS = 32;

/** Read every template file, `PARALLEL_READS` at a time; a failure is kept, not thrown. */
async function readSources(
  paths: readonly string[],
): Promise<Map<string, string | { error: unknown }>> {
  const unique = [...new Set(paths)];
  const out = new Map<string, string | { error: unknown }>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < unique.length) {
      const path = unique[next++] as string;
      try {
        out.set(path, STRICT_UTF8.decode(await readFile(path)));
      } catch (error) {
        out.set(path, { error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, unique.length) }, worker));
  return out;
}

/**
 * Read and compile every template of every target. Throws RLD_ERR_TEMPLATE (or RLD_ERR_SPEC for
 * an unreadable template file) naming the template; never touches the network. The files are
 * read concurrently (one after another, 50 templates waited ≈ 0.1 s on reads at a cold start),
 * then compiled in declared order, so the error reported is still the first in the spec.
 */
/** Compiles one template; a syntax error says where it is used: the spec file and line, the target. */
function compileAt(
  spec: ReloaderSpec,
  target: TargetSpec,
  file: FileSpec,
  name: string,
  source: string,
): CompiledTemplate {
  try {
    return compileTemplate(name, source);
  } catch (err) {
    const e = asReloaderError(err, 'RLD_ERR_TEMPLATE');
    throw new ReloaderError(
      e.code,
      `${spec.file}:${file.origin.line}: target "${target.name}": ${e.message}`,
      { cause: err, details: { ...e.details, target: target.name, spec: spec.file } },
    );
  }
}

export async function compileTargets(spec: ReloaderSpec): Promise<CompiledTarget[]> {
  const sources = await readSources(
    spec.targets.flatMap((t) =>
      t.files.flatMap((f) => (f.template === undefined ? [] : [f.template])),
    ),
  );
  const out: CompiledTarget[] = [];
  for (const target of spec.targets) {
    const files: CompiledFile[] = [];
    for (const file of target.files) {
      const name = templateName(spec, file);
      let source: string;
      if (file.template !== undefined) {
        const read = sources.get(file.template);
        if (typeof read !== 'string') {
          const err = read?.error;
          const code = (err as NodeJS.ErrnoException | undefined)?.code;
          const why =
            code === 'ERR_ENCODING_INVALID_ENCODED_DATA' ? 'not valid UTF-8' : (code ?? 'EIO');
          throw new ReloaderError(
            'RLD_ERR_TEMPLATE',
            `${spec.file}:${file.origin.line}: ${file.origin.yamlPath}.template: cannot read template ${name} (${why})`,
            { cause: err, details: { template: name, target: target.name } },
          );
        }
        source = read;
      } else if (file.pkcs12 !== undefined) {
        const parts = file.pkcs12;
        const part = (key: keyof Pkcs12Spec): CompiledTemplate | undefined =>
          parts[key] === undefined
            ? undefined
            : compileAt(spec, target, file, `${name}.${key}`, parts[key]);
        const pkcs12: Pkcs12Templates = {
          certificate: part('certificate'),
          key: part('key'),
          chain: part('chain'),
          password: part('password'),
          friendlyName: part('friendlyName'),
        };
        files.push({ spec: file, name, pkcs12 });
        continue;
      } else {
        source = file.contents ?? '';
      }
      files.push({ spec: file, name, template: compileAt(spec, target, file, name, source) });
    }
    out.push({ spec: target, files });
  }
  return out;
}

/**
 * Render every file of `target` in memory. Throws the first render error (RLD_ERR_MISSING_KEY or
 * RLD_ERR_RENDER) with the target's name added to its details; nothing is written by this step.
 */
export function renderTarget(
  target: CompiledTarget,
  secrets: SecretMap,
  env: Readonly<Record<string, string | undefined>>,
): RenderedTarget {
  const keysRead = new Set<string>();
  const files: RenderedFile[] = [];
  const ctx = { secrets, env, target: { name: target.spec.name } };
  const renderText = (template: CompiledTemplate): string => {
    const result = template.render(ctx);
    for (const key of result.keysRead) keysRead.add(key);
    return result.output;
  };
  for (const file of target.files) {
    try {
      if (file.pkcs12 !== undefined) {
        const parts = file.pkcs12;
        const text = (key: keyof Pkcs12Spec): string | undefined =>
          parts[key] === undefined ? undefined : renderText(parts[key]);
        const inputs: Pkcs12Inputs = {
          certificate: text('certificate') ?? '',
          key: text('key') ?? '',
          password: text('password') ?? '',
          friendlyName: text('friendlyName') ?? target.spec.name,
        };
        const chain = text('chain');
        if (chain !== undefined) inputs.chain = chain;
        const certificate = firstCertificate(inputs.certificate);
        files.push({
          spec: file.spec,
          contents: buildPkcs12(inputs, file.name),
          ...(certificate === undefined ? {} : { certificate }),
        });
        continue;
      }
      const output = renderText(file.template as CompiledTemplate);
      files.push({
        spec: file.spec,
        contents: file.spec.encoding === 'base64' ? decodeFileBase64(output, file.name) : output,
      });
    } catch (err) {
      const e = asReloaderError(err, 'RLD_ERR_RENDER');
      throw new ReloaderError(e.code, `target "${target.spec.name}": ${e.message}`, {
        cause: e,
        details: { ...e.details, target: target.spec.name },
      });
    }
  }
  return { files, keysRead };
}
