/**
 * reloader.yaml text → plain data plus a locator that answers "which line is this YAML path
 * on?". The `yaml` package's AST is walked once, by hand, so every node's line is known and
 * `${VAR}` substitution happens per scalar with its own path and line in the error.
 *
 * Substitution rules (see env.ts): every string scalar (map values and list items, quoted or
 * not; keys are never substituted). A map value that had a reference and expands to '' counts as
 * *not set*, so `caFile: ${CA_FILE:-}` makes an optional field optional and lets defaults apply.
 */
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { SpecError } from '../errors.js';
import type { SpecLocation } from '../errors.js';
import { expandEnv } from './env.js';
import type { EnvLike } from './env.js';

export type Segment = string | number;

/**
 * Most nodes that aliases may expand to in one document, all aliases together. The walk below
 * copies an alias's target each time it is used, so without a bound a "billion laughs"
 * document (nine levels of nine aliases each) would expand to 9^9 nodes and hang the loader.
 * A real spec aliases a few shared blocks: a few hundred nodes at most.
 */
export const MAX_ALIAS_NODES = 10_000;

interface NodeInfo {
  line: number;
  /** Names of the env variables that fed this scalar, when it had `${...}` references. */
  envNames?: string[];
  /** Source text of a scalar, for hints such as "quote it". */
  source?: string;
}

/** Parsed spec data, with where each node came from. */
export interface SpecSource {
  file: string;
  data: unknown;
  /** File, dotted YAML path and line of `path` (the nearest existing ancestor's line if absent). */
  locate(path: readonly Segment[]): SpecLocation;
  /** Variables whose values fed the scalar at `path`, or undefined when it was written literally. */
  envNames(path: readonly Segment[]): readonly string[] | undefined;
  /** The scalar's text as written in the file (before substitution). */
  sourceText(path: readonly Segment[]): string | undefined;
}

/** JSON-pointer form of a path, the same form as ajv's `instancePath`. */
export function pointerOf(path: readonly Segment[]): string {
  return path.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/** `['targets', 0, 'files', 1, 'mode']` → `targets[0].files[1].mode`. */
export function formatYamlPath(path: readonly Segment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/**
 * Parses `text` as one YAML document and substitutes `${VAR}` from `env`. Throws SpecError for
 * YAML syntax errors (with yaml's line), non-string keys, recursive aliases, aliases expanding
 * to more than MAX_ALIAS_NODES nodes, and bad or unset env references (naming the variable,
 * never its value).
 */
export function readSpecSource(text: string, file: string, env: EnvLike): SpecSource {
  const lines = new LineCounter();
  // uniqueKeys is checked by the walker (mapToData): yaml's own check is quadratic in the
  // number of keys of a map, ten seconds for a 256 KiB map.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const lineAt = (offset: number): number => lines.linePos(offset).line;
  const firstError = doc.errors[0];
  if (firstError !== undefined) {
    const line = lineAt(firstError.pos[0]);
    // yaml's message names the problem, never the surrounding text (prettyErrors is off).
    throw new SpecError({ file, yamlPath: '', line }, `YAML syntax error: ${firstError.message}`);
  }
  const infos = new Map<string, NodeInfo>();
  const walker = new Walker(doc, file, env, infos, lineAt);
  const rootLine = doc.contents?.range ? lineAt(doc.contents.range[0]) : 1;
  infos.set('', { line: rootLine });
  const data = doc.contents === null ? null : walker.toData(doc.contents, [], rootLine);
  walker.throwIfMissingEnv();

  const nearest = (path: readonly Segment[]): NodeInfo => {
    for (let n = path.length; n >= 0; n -= 1) {
      const info = infos.get(pointerOf(path.slice(0, n)));
      if (info !== undefined) return info;
    }
    return { line: rootLine };
  };
  return {
    file,
    data,
    locate: (path) => ({ file, yamlPath: formatYamlPath(path), line: nearest(path).line }),
    envNames: (path) => infos.get(pointerOf(path))?.envNames,
    sourceText: (path) => infos.get(pointerOf(path))?.source,
  };
}

class Walker {
  private readonly active = new Set<YamlNode>();
  /** How many aliases enclose the node being converted (> 0: it is a copy made by an alias). */
  private aliasDepth = 0;
  /** Nodes converted as part of an alias's copy, over the whole document. */
  private aliasNodes = 0;
  /** Unset `${VAR}` references, all of them: reported together once the walk is done. */
  private readonly missingEnv: { where: SpecLocation; names: string[] }[] = [];
  constructor(
    private readonly doc: Document,
    private readonly file: string,
    private readonly env: EnvLike,
    private readonly infos: Map<string, NodeInfo>,
    private readonly lineAt: (offset: number) => number,
  ) {}

  /** Converts `node` at `path`; `line` is where the path starts (a map key's own line). */
  toData(node: unknown, path: Segment[], line: number): unknown {
    const where = (): SpecLocation => ({ file: this.file, yamlPath: formatYamlPath(path), line });
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      if (target === undefined) throw new SpecError(where(), `unknown alias *${node.source}`);
      this.aliasDepth += 1;
      try {
        return this.toData(target, path, line);
      } finally {
        this.aliasDepth -= 1;
      }
    }
    if (this.aliasDepth > 0 && ++this.aliasNodes > MAX_ALIAS_NODES) {
      throw new SpecError(
        where(),
        `aliases expand to more than ${MAX_ALIAS_NODES} nodes (a YAML "billion laughs" document?)`,
      );
    }
    if (this.active.has(node as YamlNode)) throw new SpecError(where(), 'recursive alias');
    this.active.add(node as YamlNode);
    try {
      if (isMap(node)) return this.mapToData(node.items, path);
      if (isSeq(node)) {
        return node.items.map((item, index) => {
          const itemPath = [...path, index];
          const itemLine = this.nodeLine(item, line);
          this.infos.set(pointerOf(itemPath), { line: itemLine });
          return this.toData(item, itemPath, itemLine);
        });
      }
      if (isScalar(node)) return this.scalar(node.value, node.source, path, where);
      throw new SpecError(where(), 'unsupported YAML node');
    } finally {
      this.active.delete(node as YamlNode);
    }
  }

  private mapToData(items: { key: unknown; value: unknown }[], path: Segment[]): unknown {
    const out: Record<string, unknown> = {};
    const seen = new Set<string>();
    for (const pair of items) {
      const keyLine = this.nodeLine(pair.key, this.nodeLine(pair.value, 1));
      const key = isScalar(pair.key) ? pair.key.value : undefined;
      if (typeof key !== 'string' && typeof key !== 'number') {
        throw new SpecError(
          { file: this.file, yamlPath: formatYamlPath(path), line: keyLine },
          'map keys must be plain strings',
        );
      }
      if (seen.has(String(key))) {
        throw new SpecError(
          { file: this.file, yamlPath: formatYamlPath(path), line: keyLine },
          `YAML syntax error: map keys must be unique (${JSON.stringify(String(key))} appears twice)`,
        );
      }
      seen.add(String(key));
      const childPath = [...path, String(key)];
      const info: NodeInfo = { line: keyLine };
      this.infos.set(pointerOf(childPath), info);
      const value = this.toData(pair.value, childPath, keyLine);
      const own = this.infos.get(pointerOf(childPath));
      // A map value that came from `${VAR}` and expanded to '' is treated as not set.
      if (value === '' && own?.envNames !== undefined) continue;
      Object.defineProperty(out, String(key), {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }

  private scalar(
    value: unknown,
    source: string | undefined,
    path: Segment[],
    where: () => SpecLocation,
  ): unknown {
    const pointer = pointerOf(path);
    const info = this.infos.get(pointer) ?? { line: where().line };
    if (source !== undefined) info.source = source;
    this.infos.set(pointer, info);
    if (typeof value !== 'string') return value;
    const expanded = expandEnv(value, this.env);
    if (!expanded.ok && expanded.missing !== undefined) {
      this.missingEnv.push({ where: where(), names: expanded.missing });
      return '';
    }
    if (!expanded.ok) throw new SpecError(where(), expanded.problem);
    if (expanded.substituted) info.envNames = expanded.names;
    return expanded.value;
  }

  /**
   * One SpecError for every unset variable of the document, at the first one's location:
   * `environment variables A, B are not set (A: infisical.url line 2; B: …)`.
   */
  throwIfMissingEnv(): void {
    const first = this.missingEnv[0];
    if (first === undefined) return;
    const names = [...new Set(this.missingEnv.flatMap((m) => m.names))];
    const uses = this.missingEnv
      .map((m) => `${m.names.join(', ')}: ${m.where.yamlPath || '(root)'} line ${m.where.line}`)
      .join('; ');
    const verb = names.length > 1 ? 'variables' : 'variable';
    throw new SpecError(
      first.where,
      `environment ${verb} ${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} not set (${uses})`,
    );
  }

  private nodeLine(node: unknown, fallback: number): number {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? this.lineAt(range[0]) : fallback;
  }
}
