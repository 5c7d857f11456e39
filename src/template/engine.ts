/**
 * Templates: Handlebars on an instance of our own, compiled strict and without
 * escaping, with the helpers of `helpers.ts` and nothing else.
 *
 * `compileTemplate` finds every error it can before any secret exists (`validate` runs it with
 * no network): syntax, partials and decorators (not supported), unknown helpers, helpers called
 * with the wrong number of arguments or in a form they do not have. `render` maps everything a
 * render can throw to RLD_ERR_MISSING_KEY or RLD_ERR_RENDER naming the template and line.
 * No message carries a value: ours are built from names, foreign text is redacted.
 */
import { createRequire } from 'node:module';
import { ReloaderError } from '../errors.js';
import { renderError, TemplateRenderError, where, type PathInfo } from './render-errors.js';
import { MARKER_PREFIX, createRenderRoot, type RenderContext } from './context.js';
import { BUILTIN_BLOCK_HELPERS, HELPERS, wrapHelper } from './helpers.js';

export type { RenderContext } from './context.js';
export { ALL_KEYS } from './context.js';
export { TemplateRenderError } from './render-errors.js';

/** The text a render produced and every secret key it read (present or not). */
export interface RenderResult {
  output: string;
  keysRead: ReadonlySet<string>;
}

/** A template compiled once; `render` can be called any number of times, concurrently. */
export interface CompiledTemplate {
  readonly name: string;
  /** Render against `ctx`. Throws RLD_ERR_MISSING_KEY or RLD_ERR_RENDER (a `TemplateRenderError`). */
  render(ctx: RenderContext): RenderResult;
}

// handlebars is CommonJS typed with `export =`; without allowSyntheticDefaultImports the honest
// way to load it from an ES module is require(). Its one-file build (dist/handlebars.js, the
// same 4.7 compiler and runtime) rather than the package's main entry: the main entry loads
// ~40 CommonJS modules with inline source maps plus the `source-map` package, and builds every
// compiled template's code through source-map's SourceNode. Measured for 50 templates: load
// 22–27 → 9–10 ms, compile 84–100 → 77–83 ms, ≈ 2 MiB less RSS; the same test suite passes.
const Handlebars = createRequire(import.meta.url)(
  'handlebars/dist/handlebars.js',
) as typeof import('handlebars');

/** The isolated instance: nothing registered on the global Handlebars is visible here. */
const hb = Handlebars.create();
hb.unregisterHelper('log'); // `{{log secrets.X}}` would print a value to the console
for (const [name, spec] of Object.entries(HELPERS)) hb.registerHelper(name, wrapHelper(name, spec));

const KNOWN_HELPERS: Record<string, boolean> = {
  log: false,
  helperMissing: false,
  blockHelperMissing: false,
};
for (const name of [...Object.keys(HELPERS), ...BUILTIN_BLOCK_HELPERS]) KNOWN_HELPERS[name] = true;
const HELPER_LIST = Object.keys(KNOWN_HELPERS)
  .filter((n) => KNOWN_HELPERS[n])
  .sort()
  .join(', ');

type CompileOptions = NonNullable<Parameters<typeof hb.compile>[1]> & { trackIds: boolean };

/** Fresh each time: Handlebars writes into the options object it is given. */
function compileOptions(): CompileOptions {
  return {
    strict: true, // a missing key in output position is an error, never ''
    noEscape: true, // config text, not HTML: {{x}} and {{{x}}} both emit x unchanged
    knownHelpersOnly: true, // a misspelt helper fails at compile time
    knownHelpers: { ...KNOWN_HELPERS },
    trackIds: true, // gives helpers their arguments' source text, to name a missing key
    data: true, // @key, @index, @root; helpers find the render's state through @root
  };
}

/** Prototype access stays off, and set explicitly so Handlebars does not log each denial. */
const RUNTIME_OPTIONS: Parameters<ReturnType<typeof hb.compile>>[1] = {
  allowProtoPropertiesByDefault: false,
  allowProtoMethodsByDefault: false,
};

type Node = hbs.AST.Node & Record<string, unknown>;
type Path = PathInfo & { type: string };

function templateError(
  name: string,
  line: number | undefined,
  problem: string,
  cause?: unknown,
): ReloaderError {
  return new ReloaderError('RLD_ERR_TEMPLATE', `${where(name, line)}: ${problem}`, {
    cause,
    details: line === undefined ? { template: name } : { template: name, line },
  });
}

/**
 * Walk the AST: reject what we do not support, check every helper call's form and arity, and
 * index the path expressions by position (to explain strict-mode errors at render time).
 * `scope` holds the block parameters in force (`{{#each secrets as |value key|}}`): such a name
 * is a value, even when it is spelt like a helper.
 */
function checkAst(name: string, program: hbs.AST.Program, paths: Map<string, PathInfo>): void {
  const visit = (node: Node | undefined | null, scope: ReadonlySet<string>): void => {
    if (!node || typeof node !== 'object') return;
    const line = node.loc?.start.line;
    switch (node.type) {
      case 'PartialStatement':
      case 'PartialBlockStatement':
        throw templateError(name, line, 'partials ({{> name}}) are not supported');
      case 'Decorator':
      case 'DecoratorBlock':
        throw templateError(name, line, 'decorators ({{* name}}) are not supported');
      case 'PathExpression': {
        const p = node as unknown as PathInfo;
        // Only what render errors read: keeping the AST node kept its location objects and
        // head/tail nodes alive for the life of the template (≈ 2 MiB at 500 templates).
        if (p.loc) {
          const { original, parts, data, depth } = p;
          paths.set(`${p.loc.start.line}:${p.loc.start.column}`, { original, parts, data, depth });
        }
        return;
      }
      case 'Program': {
        const params = (node as unknown as hbs.AST.Program).blockParams ?? [];
        if (params.length > 0) scope = new Set([...scope, ...params]);
        break;
      }
      case 'MustacheStatement':
      case 'BlockStatement':
      case 'SubExpression':
        checkCall(name, node, scope);
        break;
    }
    for (const value of Object.values(node)) {
      if (value === node.loc) continue;
      if (Array.isArray(value)) value.forEach((v) => visit(v as Node, scope));
      else if (value && typeof value === 'object' && 'type' in value) visit(value as Node, scope);
    }
  };
  visit(program as unknown as Node, new Set());
}

/** Check one `{{helper args}}`, `{{#helper args}}` or `(helper args)`. */
function checkCall(name: string, node: Node, scope: ReadonlySet<string>): void {
  const path = node.path as Path | undefined;
  if (!path || path.type !== 'PathExpression' || path.data || path.depth !== 0) return;
  if (path.parts.length !== 1 || /^(this|\.)/.test(path.original)) return;
  const helper = path.parts[0] as string;
  if (scope.has(helper)) return;
  const params = (node.params as unknown[]).length;
  const hash = (node.hash as hbs.AST.Hash | undefined)?.pairs.length ?? 0;
  const isBlock = node.type === 'BlockStatement';
  const line = node.loc?.start.line;
  const spec = Object.hasOwn(HELPERS, helper) ? HELPERS[helper] : undefined;
  if (spec) {
    const range = isBlock ? spec.block : spec.inline;
    const form = isBlock ? `{{#${helper}}}` : `{{${helper}}}`;
    if (!range) throw templateError(name, line, `helper "${helper}" cannot be used as ${form}`);
    if (params < range[0] || params > range[1]) {
      const want = range[0] === range[1] ? `${range[0]}` : `${range[0]} to ${range[1]}`;
      throw templateError(
        name,
        line,
        `helper "${helper}" takes ${want} argument(s) as ${form}, got ${params}`,
      );
    }
    if (hash > 0) throw templateError(name, line, `helper "${helper}" takes no name=value options`);
    if (isBlock && node.inverse) throw templateError(name, line, `{{#${helper}}} has no {{else}}`);
  } else if (BUILTIN_BLOCK_HELPERS.has(helper)) {
    if (!isBlock)
      throw templateError(
        name,
        line,
        `"${helper}" is a block helper: write {{#${helper} value}}...{{/${helper}}}`,
      );
    if (params !== 1)
      throw templateError(name, line, `{{#${helper}}} takes exactly one argument, got ${params}`);
  } else if (params > 0 || hash > 0) {
    throw templateError(name, line, `unknown helper "${helper}" (known: ${HELPER_LIST})`);
  }
}

/**
 * The innermost block opened in `source` and never closed (`{{#each …}}` without `{{/each}}`),
 * with its line: what a parse error that reached the end of the text expecting a block's end
 * really means. Comments are skipped; `{{^}}` and `{{else}}` do not open anything.
 */
export function unclosedBlock(source: string): { name: string; line: number } | undefined {
  const stack: { name: string; line: number }[] = [];
  const text = source.replace(/\{\{!--[^]*?--\}\}|\{\{![^]*?\}\}/g, (c) =>
    c.replace(/[^\n]/g, ' '),
  );
  let line = 1;
  let last = 0;
  for (const m of text.matchAll(/\{\{~?\s*([#^/])\s*\*?([^\s}~]*)/g)) {
    const index = m.index ?? 0;
    for (let i = last; i < index; i++) if (text.charCodeAt(i) === 10) line++;
    last = index;
    const [, kind, blockName = ''] = m;
    if (kind === '/') stack.pop();
    else if (blockName !== '') stack.push({ name: blockName, line });
  }
  return stack.at(-1);
}

/** Handlebars parse / compile errors → RLD_ERR_TEMPLATE with the line. */
function fromHandlebarsCompileError(name: string, err: unknown, source = ''): ReloaderError {
  const e = err as { message?: unknown; lineNumber?: unknown; column?: unknown };
  let message = typeof e.message === 'string' ? e.message : String(err);
  let line = typeof e.lineNumber === 'number' ? e.lineNumber : undefined;
  const parse = /^(?:Parse|Lexical) error on line (\d+)[:.]\s*/.exec(message);
  if (parse) {
    line = Number(parse[1]);
    // Jison's text: [reason,] excerpt, caret line, [reason]. Reason first, then the picture.
    const rest = message.slice(parse[0].length).split('\n');
    const caret = rest.findIndex((l) => /^-*\^$/.test(l));
    const picture = caret > 0 ? rest.splice(caret - 1, 2) : [];
    let reason = rest.join(' ').trim() || 'unexpected text';
    const open = /OPEN_ENDBLOCK.*got 'EOF'/.test(reason) ? unclosedBlock(source) : undefined;
    if (open !== undefined) {
      reason = `{{#${open.name}}} opened on line ${open.line} is never closed (add {{/${open.name}}})`;
    }
    message = [`syntax error: ${reason}`, ...picture].join('\n');
  } else if (line !== undefined) {
    message = message.replace(/ - \d+:\d+$/, '');
  }
  const unknown = /^You specified knownHelpersOnly, but used the unknown helper (.*)$/.exec(
    message,
  );
  if (unknown) message = `unknown helper "${unknown[1]}" (known: ${HELPER_LIST})`;
  return templateError(name, line, message, err);
}

type TemplateFn = ReturnType<typeof hb.compile>;

/** The two compiler passes of Handlebars 4.7 (not in its typings; see `compileNow`). */
interface CompilerPasses {
  Compiler: new () => { compile(ast: unknown, options: CompileOptions): unknown };
  JavaScriptCompiler: new () => {
    compile(
      environment: unknown,
      options: CompileOptions,
      context: undefined,
      asObject: true,
    ): unknown;
  };
}

/**
 * Exactly what `Handlebars.compile` does on its first call, done now and once: AST → opcodes →
 * template spec → template function. `Handlebars.compile` alone defers this (and its errors) to
 * the first render; `precompile` + `compile` would run the compiler twice (≈0.3 s each for a
 * 1000-expression template). Pinned to handlebars 4.7.10; the tests exercise it.
 */
function compileNow(ast: hbs.AST.Program): TemplateFn {
  const passes = hb as unknown as CompilerPasses;
  const options = compileOptions();
  const environment = new passes.Compiler().compile(ast, options);
  const spec = new passes.JavaScriptCompiler().compile(environment, options, undefined, true);
  return hb.template(spec as Parameters<typeof hb.template>[0]);
}

/** Templates are config files: 1 MiB is far beyond any real one and bounds parse time and memory. */
export const MAX_TEMPLATE_BYTES = 1024 * 1024;
/** Handlebars' parser is cubic in block nesting (2,000 levels: 2 s); real templates nest a few. */
export const MAX_BLOCK_DEPTH = 256;

/**
 * Refuse sources whose size or block nesting would make Handlebars' parser take seconds to
 * minutes (found by the reliability suite), before parsing: a clear RLD_ERR_TEMPLATE instead.
 */
function checkLimits(name: string, source: string): void {
  if (Buffer.byteLength(source, 'utf8') > MAX_TEMPLATE_BYTES) {
    throw new ReloaderError('RLD_ERR_TEMPLATE', `template "${name}" is larger than 1 MiB`, {
      details: { template: name },
    });
  }
  let depth = 0;
  let line = 1;
  let last = 0;
  for (const m of source.matchAll(/\{\{~?\s*([#^/])(\s*~?\}\})?/g)) {
    if (m[1] === '^' && m[2] !== undefined) continue; // `{{^}}` is an else, not an opener
    const index = m.index ?? 0;
    for (let i = last; i < index; i++) if (source.charCodeAt(i) === 10) line++;
    last = index;
    depth += m[1] === '/' ? -1 : 1;
    if (depth > MAX_BLOCK_DEPTH) {
      throw new ReloaderError(
        'RLD_ERR_TEMPLATE',
        `template "${name}" line ${line}: blocks nest deeper than ${MAX_BLOCK_DEPTH} levels`,
        { details: { template: name, line } },
      );
    }
  }
}

/**
 * Parse, check and compile `source` now, so that `validate` and start-up report every template
 * error before any network call (Handlebars.compile alone is lazy: it would defer them to the
 * first render). Throws RLD_ERR_TEMPLATE naming `name` and the line.
 */
export function compileTemplate(name: string, source: string): CompiledTemplate {
  checkLimits(name, source);
  let ast: hbs.AST.Program;
  try {
    ast = hb.parse(source);
  } catch (err) {
    throw fromHandlebarsCompileError(name, err, source);
  }
  const paths = new Map<string, PathInfo>();
  checkAst(name, ast, paths);
  let template: TemplateFn;
  try {
    template = compileNow(ast);
  } catch (err) {
    throw fromHandlebarsCompileError(name, err);
  }
  return {
    name,
    render(ctx: RenderContext): RenderResult {
      const { root, state } = createRenderRoot(ctx);
      let output: string;
      try {
        output = template(root, RUNTIME_OPTIONS);
      } catch (err) {
        throw renderError(name, err, state, paths);
      }
      if (output.includes(MARKER_PREFIX)) {
        throw new TemplateRenderError(
          'RLD_ERR_RENDER',
          `${where(name, undefined)}: emits a whole object (secrets, env or target) where a value belongs; ` +
            'read one key (secrets.KEY) or print it with {{json ...}}',
          { details: { template: name }, keysRead: state.keysRead },
        );
      }
      return { output, keysRead: state.keysRead };
    },
  };
}
