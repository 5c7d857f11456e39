/**
 * The objects a template sees (`secrets`, `env`, `target`) and the bookkeeping of one
 * render: which secret keys it read (so the daemon re-renders only targets whose keys changed),
 * which keys it asked for and did not find (to name them in errors), and a redactor for text
 * that did not come from us.
 *
 * `secrets` and `env` are read-only Proxies over the caller's data, not copies: a read goes
 * through a trap that records the key, so key tracking needs no cooperation from Handlebars.
 * Every view has a null prototype (nothing inherited is reachable) and stringifies to a
 * per-process marker. Handlebars' strict-mode error reads `"KEY" not defined in <object>`; the
 * marker in that text says *which* object lacked the key, and a marker in the output means the
 * template emitted a whole object instead of a value.
 */
import { randomBytes } from 'node:crypto';

/** What a render reads from. `secrets` is the merged map of every source. */
export interface RenderContext {
  secrets: ReadonlyMap<string, string>;
  env: Readonly<Record<string, string | undefined>>;
  target: { name: string };
}

/** The objects behind the template context; `root` is the context itself. */
export type ViewKind = 'secrets' | 'env' | 'target' | 'root';

/** A NUL byte and a random nonce: cannot come from a template and will not come from a secret. */
export const MARKER_PREFIX = `\u0000rld-${randomBytes(6).toString('hex')}:`;

/** The string a view of `kind` turns into when Handlebars (or a helper) stringifies it. */
export function markerOf(kind: ViewKind): string {
  return `${MARKER_PREFIX}${kind}\u0000`;
}

/** Which view `text` ends with the marker of (how strict-mode errors name the object). */
export function markerKindAtEnd(text: string): ViewKind | undefined {
  for (const kind of ['secrets', 'env', 'target', 'root'] as const) {
    if (text.endsWith(markerOf(kind))) return kind;
  }
  return undefined;
}

/**
 * Recorded in `keysRead` when a render enumerates every secret (`{{#each secrets}}`,
 * `{{json secrets}}`): such a template depends on keys that do not exist yet, so any change —
 * an added key included — concerns it. Not a valid Infisical key name.
 */
export const ALL_KEYS = '*';

/** Reads of one render. Helpers reach it through `viewOf(options.data.root)`. */
export class RenderState {
  /** Every secret key the render asked for, present or not: a key that appears later matters too. */
  readonly keysRead = new Set<string>();
  /** Secret keys asked for and not set. */
  readonly missedSecrets = new Set<string>();
  /** Environment variables asked for and not set. */
  readonly missedEnv = new Set<string>();
  private sortedSecretKeys: string[] | undefined;
  private valueSet: Set<string> | undefined;

  constructor(readonly ctx: RenderContext) {}

  /**
   * The value of secret `key` (undefined when not set); records the read. A missing key whose
   * name equals a secret value (a name computed at render time, `{{secret secrets.X}}`) is not
   * recorded: keysRead is a list of names that may be logged.
   */
  readSecret(key: string): string | undefined {
    const value = this.ctx.secrets.get(key);
    if (value === undefined) {
      if (this.safeName(key) !== key) return undefined;
      this.missedSecrets.add(key);
    }
    this.keysRead.add(key);
    return value;
  }

  /** The value of environment variable `key` (undefined when not set). Not key-tracked. */
  readEnv(key: string): string | undefined {
    const value = Object.prototype.hasOwnProperty.call(this.ctx.env, key)
      ? this.ctx.env[key]
      : undefined;
    if (value === undefined) this.missedEnv.add(key);
    return value;
  }

  /**
   * Every secret key, sorted by code unit so that `{{#each secrets}}` output does not depend on
   * the order Infisical happened to list them in (a reorder must not look like a change).
   * Enumerating reads every key.
   */
  allSecretKeys(): string[] {
    this.sortedSecretKeys ??= [...this.ctx.secrets.keys()].sort();
    for (const k of this.sortedSecretKeys) this.keysRead.add(k);
    this.keysRead.add(ALL_KEYS);
    return this.sortedSecretKeys;
  }

  /**
   * `name` for a message, or `[redacted]` when it equals a secret value: a key name computed at
   * render time (`{{secret secrets.X}}`) may be a value, and must not be echoed.
   */
  safeName(name: string): string {
    this.valueSet ??= new Set(this.ctx.secrets.values());
    return this.valueSet.has(name) ? '[redacted]' : name;
  }

  /** Every set environment variable name, sorted. */
  allEnvKeys(): string[] {
    return Object.keys(this.ctx.env)
      .filter((k) => this.ctx.env[k] !== undefined)
      .sort();
  }
}

const views = new WeakMap<object, { kind: ViewKind; state: RenderState }>();

/** The kind and render state behind a context object, or undefined for any other value. */
export function viewOf(value: unknown): { kind: ViewKind; state: RenderState } | undefined {
  return typeof value === 'object' && value !== null ? views.get(value) : undefined;
}

/** A read-only, null-prototype Proxy whose string keys are answered by `read`. */
function mapView(
  kind: 'secrets' | 'env',
  state: RenderState,
  read: (key: string) => string | undefined,
  keys: () => string[],
): object {
  const marker = markerOf(kind);
  const toPrimitive = (): string => marker;
  const proxy = new Proxy(Object.create(null) as object, {
    get: (_t, prop) => {
      if (prop === Symbol.toPrimitive) return toPrimitive;
      return typeof prop === 'string' ? read(prop) : undefined;
    },
    has: (_t, prop) => typeof prop === 'string' && read(prop) !== undefined,
    getOwnPropertyDescriptor: (_t, prop) => {
      if (typeof prop !== 'string') return undefined;
      const value = read(prop);
      return value === undefined
        ? undefined
        : { value, enumerable: true, configurable: true, writable: false };
    },
    ownKeys: () => keys(),
    getPrototypeOf: () => null,
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
    setPrototypeOf: () => false,
  });
  views.set(proxy, { kind, state });
  return proxy;
}

/** A frozen null-prototype object that stringifies to the marker of `kind`. */
function plainView(kind: 'target' | 'root', state: RenderState, fields: object): object {
  const obj = Object.assign(Object.create(null) as object, fields);
  const marker = markerOf(kind);
  Object.defineProperty(obj, Symbol.toPrimitive, { value: () => marker, enumerable: false });
  Object.freeze(obj);
  views.set(obj, { kind, state });
  return obj;
}

/** Build the context object of one render and the state that records its reads. */
export function createRenderRoot(ctx: RenderContext): { root: object; state: RenderState } {
  const state = new RenderState(ctx);
  const secrets = mapView(
    'secrets',
    state,
    (k) => state.readSecret(k),
    () => state.allSecretKeys(),
  );
  const env = mapView(
    'env',
    state,
    (k) => state.readEnv(k),
    () => state.allEnvKeys(),
  );
  const target = plainView('target', state, { name: ctx.target.name });
  const root = plainView('root', state, { secrets, env, target });
  return { root, state };
}

/** A plain, sorted snapshot of a view (for `json`); enumerating `secrets` reads every key. */
export function snapshotView(value: object): Record<string, unknown> | undefined {
  const view = viewOf(value);
  if (view === undefined) return undefined;
  const out = Object.create(null) as Record<string, unknown>; // a key "__proto__" stays a key
  if (view.kind === 'secrets') {
    for (const k of view.state.allSecretKeys()) out[k] = view.state.ctx.secrets.get(k);
  } else if (view.kind === 'env') {
    for (const k of view.state.allEnvKeys()) out[k] = view.state.ctx.env[k];
  } else if (view.kind === 'target') {
    out.name = view.state.ctx.target.name;
  } else {
    return undefined;
  }
  return out;
}

/** Env values shorter than this stay: `1`, `on`, `/tmp` are everywhere and hide nothing. */
const MIN_ENV_REDACT = 8;

/**
 * A function that replaces every secret value of `ctx` (any length) and every longer env value
 * with `[redacted]`, in one pass so that a replacement is never itself re-matched. Used on text
 * we did not write ourselves (a foreign error's message and stack); our own messages are built
 * from names only.
 */
export function createRedactor(ctx: RenderContext): (text: string) => string {
  const values = new Set<string>();
  for (const v of ctx.secrets.values()) if (v.length > 0) values.add(v);
  for (const v of Object.values(ctx.env))
    if (v !== undefined && v.length >= MIN_ENV_REDACT) values.add(v);
  if (values.size === 0) return (text) => text;
  const alternatives = [...values]
    .sort((a, b) => b.length - a.length)
    .map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const re = new RegExp(alternatives.join('|'), 'g');
  return (text) => text.replace(re, '[redacted]');
}
