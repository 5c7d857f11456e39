/**
 * The typed field readers behind `parseSeed`: each checks one node of the seed YAML and fails
 * with a `SpecError` naming the file, the YAML path (`projects[0].environments[1].slug`) and
 * the line. Secret values keep their YAML source text for numbers and booleans.
 */
import type { Document, LineCounter } from 'yaml';
import { SpecError } from '../errors.js';
import type {
  LockoutConfig,
  SeedEnvironment,
  SeedFolder,
  SeedIdentity,
  SeedProject,
} from './seed-types.js';
import { isValidSecretPath, removeTrailingSlash } from './validate.js';

/** Infisical's lockout defaults on universal auth: 3 failures → locked 300 s, counter reset 30 s. */
export const DEFAULT_LOCKOUT: LockoutConfig = { threshold: 3, durationS: 300, counterResetS: 30 };

/** Display names of Infisical's default environments. */
export const ENV_NAMES: Record<string, string> = {
  dev: 'Development',
  staging: 'Staging',
  prod: 'Production',
};

type Path = (string | number)[];

/** Typed field readers that fail with the file, YAML path and line. */
export class Reader {
  constructor(
    readonly file: string,
    private readonly doc: Document.Parsed,
    private readonly lc: LineCounter,
  ) {}

  fail(path: Path, problem: string): never {
    let line = 0;
    for (let n = path.length; n >= 0 && line === 0; n -= 1) {
      const node = this.doc.getIn(path.slice(0, n), true) as
        { range?: [number, number, number] } | undefined;
      if (node?.range) line = this.lc.linePos(node.range[0]).line;
    }
    const yamlPath = path
      .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`))
      .join('');
    throw new SpecError({ file: this.file, yamlPath, line }, problem);
  }

  list(value: unknown, path: Path): unknown[] {
    if (!Array.isArray(value)) this.fail(path, 'must be a list');
    return value;
  }

  map(value: unknown, path: Path, allowed: string[]): Record<string, unknown> {
    const m = this.anyMap(value, path);
    for (const key of Object.keys(m))
      if (!allowed.includes(key)) this.fail([...path, key], 'unknown key');
    return m;
  }

  anyMap(value: unknown, path: Path): Record<string, unknown> {
    if (!isRecord(value)) this.fail(path, 'must be a map');
    return value;
  }

  str(value: unknown, path: Path, def?: string): string {
    if (value === undefined && def !== undefined) return def;
    if (typeof value !== 'string' || value.trim() === '')
      this.fail(path, 'must be a non-empty string');
    return value.trim();
  }

  num(value: unknown, path: Path): number | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 315360000) {
      this.fail(path, 'must be an integer number of seconds between 0 and 315360000');
    }
    return value;
  }

  folderPath(value: unknown, path: Path): string {
    const p = this.str(value, path);
    if (!p.startsWith('/') || !isValidSecretPath(p)) {
      this.fail(path, 'must be a folder path like /a/b (letters, digits, - and _ only)');
    }
    return removeTrailingSlash(p);
  }

  /** A `KEY: value` map of secrets; values keep their YAML source text. */
  secrets(value: unknown, path: Path): Record<string, string> {
    if (value === null || value === undefined) return {};
    if (!isRecord(value)) this.fail(path, 'must be a map of KEY: value');
    const out: Record<string, string> = {};
    for (const [key, v] of Object.entries(value)) {
      if (key === '' || /\s/.test(key))
        this.fail([...path, key], 'a secret name cannot be empty or contain spaces');
      if (v === null) out[key] = '';
      else if (typeof v === 'string') out[key] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') {
        const node = this.doc.getIn([...path, key], true) as { source?: string } | undefined;
        out[key] = typeof node?.source === 'string' ? node.source : String(v);
      } else this.fail([...path, key], 'a secret value must be a string, number or boolean');
    }
    return out;
  }

  project(value: unknown, path: Path): SeedProject {
    const m = this.map(value, path, ['id', 'name', 'slug', 'environments']);
    const id = this.str(m.id, [...path, 'id']);
    const name = this.str(m.name, [...path, 'name'], id);
    const slug = this.str(m.slug, [...path, 'slug'], slugify(name));
    const envs = this.list(m.environments ?? [], [...path, 'environments']);
    const environments = envs.map((e, i) => this.environment(e, [...path, 'environments', i]));
    environments.forEach((env, i) => {
      if (environments.findIndex((x) => x.slug === env.slug) !== i) {
        this.fail([...path, 'environments', i, 'slug'], `duplicate environment ${env.slug}`);
      }
    });
    return { id, name, slug, environments };
  }

  environment(value: unknown, path: Path): SeedEnvironment {
    const m = this.map(value, path, ['slug', 'name', 'folders', 'imports']);
    const slug = this.str(m.slug, [...path, 'slug']);
    const name = this.str(m.name, [...path, 'name'], ENV_NAMES[slug] ?? slug);
    const folders = new Map<string, SeedFolder>();
    const folderFor = (p: string) => {
      let f = folders.get(p);
      if (!f) folders.set(p, (f = { path: p, secrets: {}, imports: [] }));
      return f;
    };
    folderFor('/');
    const rawFolders = m.folders === undefined ? {} : this.anyMap(m.folders, [...path, 'folders']);
    for (const [p, secrets] of Object.entries(rawFolders)) {
      const fp = this.folderPath(p, [...path, 'folders', p]);
      Object.assign(folderFor(fp).secrets, this.secrets(secrets, [...path, 'folders', p]));
    }
    const rawImports = m.imports === undefined ? {} : this.anyMap(m.imports, [...path, 'imports']);
    for (const [p, list] of Object.entries(rawImports)) {
      const fp = this.folderPath(p, [...path, 'imports', p]);
      const items = this.list(list, [...path, 'imports', p]);
      folderFor(fp).imports.push(
        ...items.map((item, i) => {
          const at = [...path, 'imports', p, i];
          const x = this.map(item, at, ['environment', 'path', 'secretPath']);
          return {
            environment: this.str(x.environment, [...at, 'environment'], slug),
            path: this.folderPath(x.path ?? x.secretPath, [...at, 'path']),
          };
        }),
      );
    }
    return { slug, name, folders: [...folders.values()] };
  }

  identity(value: unknown, path: Path): SeedIdentity {
    const keys = ['id', 'name', 'kubernetes', 'universal', 'accessTokenTTL', 'accessTokenMaxTTL'];
    const m = this.map(value, path, [...keys, 'accessTokenNumUsesLimit', 'projects']);
    const id = this.str(m.id, [...path, 'id']);
    const out: SeedIdentity = { id, name: this.str(m.name, [...path, 'name'], id) };
    if (m.kubernetes !== undefined) {
      const at = [...path, 'kubernetes'];
      const k = this.map(m.kubernetes ?? {}, at, [
        'allowedNamespaces',
        'allowedNames',
        'allowedAudience',
      ]);
      const opt = (key: string) =>
        k[key] === undefined || k[key] === '' ? '' : this.str(k[key], [...at, key]);
      out.kubernetes = {
        allowedNamespaces: opt('allowedNamespaces'),
        allowedNames: opt('allowedNames'),
        allowedAudience: opt('allowedAudience'),
      };
    }
    if (m.universal !== undefined) {
      const at = [...path, 'universal'];
      const u = this.map(m.universal, at, ['clientId', 'clientSecret', 'lockout']);
      out.universal = {
        clientId: this.str(u.clientId, [...at, 'clientId']),
        clientSecret: this.str(u.clientSecret, [...at, 'clientSecret']),
        lockout: this.lockout(u.lockout, [...at, 'lockout']),
      };
    }
    out.accessTokenTTL = this.num(m.accessTokenTTL, [...path, 'accessTokenTTL']);
    out.accessTokenMaxTTL = this.num(m.accessTokenMaxTTL, [...path, 'accessTokenMaxTTL']);
    out.accessTokenNumUsesLimit = this.num(m.accessTokenNumUsesLimit, [
      ...path,
      'accessTokenNumUsesLimit',
    ]);
    const { accessTokenTTL: ttl, accessTokenMaxTTL: max } = out;
    if (ttl !== undefined && max !== undefined && max > 0 && ttl > max) {
      this.fail(
        [...path, 'accessTokenTTL'],
        'Access Token TTL cannot be greater than Access Token Max TTL.',
      );
    }
    if (m.projects !== undefined) {
      out.projects = this.list(m.projects, [...path, 'projects']).map((p, i) =>
        this.str(p, [...path, 'projects', i]),
      );
    }
    return out;
  }

  lockout(value: unknown, path: Path): LockoutConfig | false {
    if (value === undefined || value === true) return DEFAULT_LOCKOUT;
    if (value === false) return false;
    const m = this.map(value, path, ['threshold', 'durationS', 'counterResetS']);
    return {
      threshold: this.num(m.threshold, [...path, 'threshold']) ?? DEFAULT_LOCKOUT.threshold,
      durationS: this.num(m.durationS, [...path, 'durationS']) ?? DEFAULT_LOCKOUT.durationS,
      counterResetS:
        this.num(m.counterResetS, [...path, 'counterResetS']) ?? DEFAULT_LOCKOUT.counterResetS,
    };
  }
}

/** A plain YAML map (not null, not a list). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function slugify(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}
