/**
 * Helpers for test/examples/manifests.test.ts: read Kubernetes YAML documents, find the
 * kubernetes-models class of a document, type-check documents against the models' interfaces
 * (TypeScript's excess-property check finds unknown fields), and walk a pod spec.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import ts from 'typescript';
import { repoRoot } from '../helpers/harness.js';

/** The image name the examples use for the reloader (a documented placeholder). */
export const RELOADER_IMAGE = 'ghcr.io/example/infisical-reloader:0.1.0';

/** A YAML mapping as a plain object. */
export type Obj = Record<string, unknown>;
/** One document of a YAML file. */
export interface Doc {
  file: string;
  index: number;
  value: Obj;
}

/** Small accessors for untyped YAML: `obj` asserts a mapping, `arr` tolerates absence. */
export const isObj = (v: unknown): v is Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
export const obj = (v: unknown, what: string): Obj => {
  assert.ok(isObj(v), `${what} is not an object`);
  return v;
};
export const arr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);
/** `file#index` of a document, for messages. */
export const where = (d: Doc): string => `${relative(repoRoot, d.file)}#${d.index}`;

/** Every YAML document of `file`, parsed; YAML errors and octal-looking numbers fail. */
export function readDocs(file: string): Doc[] {
  const parsed = parseAllDocuments(readFileSync(file, 'utf8'), { prettyErrors: true });
  assert.ok(Array.isArray(parsed), `${file}: not a YAML stream`);
  return parsed.map((d, index) => {
    assert.deepEqual(d.errors, [], `${file}#${index}: YAML errors`);
    // YAML 1.1 would read `0440` as octal, YAML 1.2 as decimal: keep such numbers unambiguous.
    assert.doesNotMatch(
      String(d),
      /:\s+0[0-7]+\s*(#.*)?$/m,
      `${file}#${index}: octal-looking number`,
    );
    return { file, index, value: obj(d.toJS(), `${file}#${index}`) };
  });
}

/** `apps/v1` + `Deployment` → `kubernetes-models/apps/v1/Deployment` (core: `v1/Service`). */
export function modelPath(doc: Doc): { module: string; kind: string } {
  const apiVersion = doc.value['apiVersion'];
  const kind = doc.value['kind'];
  assert.equal(typeof apiVersion, 'string', `${where(doc)}: apiVersion`);
  assert.equal(typeof kind, 'string', `${where(doc)}: kind`);
  return { module: `kubernetes-models/${String(apiVersion)}/${String(kind)}`, kind: String(kind) };
}

/**
 * (2) Type-check the documents as object literals of the models' interfaces: TypeScript's
 * excess-property check reports unknown fields at any depth. Returns one message per problem.
 */
export function typeCheck(docs: Doc[]): string[] {
  const virtual = join(repoRoot, 'test', 'examples', '__k8s_manifests__.ts');
  const ranges: Array<{ start: number; end: number; doc: Doc }> = [];
  let text = '';
  docs.forEach((doc, i) => {
    const { module, kind } = modelPath(doc);
    text += `import type { I${kind} as T${i} } from '${module}';\n`;
  });
  docs.forEach((doc, i) => {
    const start = text.length;
    text += `export const doc${i}: T${i} = ${JSON.stringify(doc.value, null, 2)};\n`;
    ranges.push({ start, end: text.length, doc });
  });
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === virtual ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === virtual || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (name === virtual ? text : readFile(name));
  const program = ts.createProgram([virtual], options, host);
  const diagnostics = [
    ...program.getSyntacticDiagnostics(),
    ...program.getSemanticDiagnostics(),
    ...program.getOptionsDiagnostics(),
  ];
  return diagnostics.map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    const range = ranges.find(
      (r) => d.start !== undefined && d.start >= r.start && d.start < r.end,
    );
    if (range === undefined || d.start === undefined) return message;
    const line = text.slice(range.start, d.start).split('\n').length - 1;
    const near = text.slice(range.start).split('\n')[line]?.trim();
    return `${where(range.doc)}: ${message} (near ${near})`;
  });
}

export interface Pod {
  doc: Doc;
  spec: Obj;
  init: Obj[];
  main: Obj[];
}

/** The pod template of a workload, with its init and main containers. */
export function podOf(doc: Doc): Pod {
  const template = obj(obj(doc.value['spec'], 'spec')['template'], `${where(doc)} template`);
  const spec = obj(template['spec'], `${where(doc)} pod spec`);
  return { doc, spec, init: arr(spec['initContainers']), main: arr(spec['containers']) };
}

/** `metadata.name` of a document or object. */
export const nameOf = (d: Doc | Obj): string => {
  const value = 'value' in d && isObj(d.value) ? d.value : (d as Obj);
  return String(obj(value['metadata'], 'metadata')['name']);
};

/** The one container that runs the reloader image. */
export function reloaderOf(pod: Pod): Obj {
  const found = [...pod.init, ...pod.main].filter((c) => c['image'] === RELOADER_IMAGE);
  assert.equal(found.length, 1, `${where(pod.doc)}: exactly one container runs ${RELOADER_IMAGE}`);
  return found[0]!;
}

/** A container's security setting, falling back to the pod's. */
export function effective(pod: Pod, c: Obj, key: string): unknown {
  const own = isObj(c['securityContext']) ? c['securityContext'][key] : undefined;
  return own ?? (isObj(pod.spec['securityContext']) ? pod.spec['securityContext'][key] : undefined);
}

/** The literal `env` values of a container. */
export function envOf(c: Obj): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of arr(c['env']))
    if (typeof e['value'] === 'string') out[String(e['name'])] = e['value'];
  return out;
}

/** The pod's volume `name` (fails when it is not declared). */
export function volumeOf(pod: Pod, name: string): Obj {
  const v = arr(pod.spec['volumes']).find((x) => x['name'] === name);
  assert.ok(v, `${where(pod.doc)}: volume ${name} is mounted but not declared`);
  return v;
}

/** The mount of `c` that holds `path` (the longest mountPath that is a prefix of it). */
export function mountFor(c: Obj, path: string): Obj | undefined {
  return arr(c['volumeMounts'])
    .filter((m) => path === m['mountPath'] || path.startsWith(`${String(m['mountPath'])}/`))
    .sort((a, b) => String(b['mountPath']).length - String(a['mountPath']).length)[0];
}

/** `httpGet` path and port of a container's probe, if it has one. */
export function httpProbe(c: Obj, probe: string): { path: unknown; port: unknown } | undefined {
  const p = c[probe];
  if (!isObj(p) || !isObj(p['httpGet'])) return undefined;
  return { path: p['httpGet']['path'], port: p['httpGet']['port'] };
}
