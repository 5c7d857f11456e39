/**
 * The local server's data: projects → environments → folders (by path) → secrets with versions,
 * plus each folder's ordered imports. Folders are created on demand with their parents (as
 * Infisical's "create folder" would); the root `/` always exists. Mutations report whether
 * anything changed so callers can schedule exactly one `secrets.modified` event per change.
 *
 * Listing logic (recursive, imports, references) lives in `listing.ts`; this module only holds
 * and navigates the data.
 */
import { randomUUID } from 'node:crypto';
import { ReloaderError } from '../errors.js';
import { containsReference } from './references.js';
import type { Seed } from './seed.js';

export interface SecretVersion {
  version: number;
  value: string;
  atIso: string;
}
export interface SecretRecord {
  id: string;
  key: string;
  value: string;
  version: number;
  createdAt: string;
  updatedAt: string;
  history: SecretVersion[];
}
export interface ImportRecord {
  id: string;
  environment: string;
  path: string;
}
export interface FolderRecord {
  id: string;
  path: string;
  secrets: Map<string, SecretRecord>;
  imports: ImportRecord[];
}
export interface EnvRecord {
  id: string;
  slug: string;
  name: string;
  folders: Map<string, FolderRecord>;
}
export interface ProjectRecord {
  id: string;
  name: string;
  slug: string;
  envs: Map<string, EnvRecord>;
}
export interface FolderRef {
  environment: string;
  path: string;
}

/** Parent of a normalised folder path (`/a/b` → `/a`, `/a` → `/`). */
export function parentPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** All projects of one local server, built from a seed and mutated by the test/dev API. */
export class SecretStore {
  readonly projects = new Map<string, ProjectRecord>();

  constructor(seed: Seed) {
    for (const p of seed.projects) {
      const envs = new Map<string, EnvRecord>();
      this.projects.set(p.id, { id: p.id, name: p.name, slug: p.slug, envs });
      for (const e of p.environments) {
        envs.set(e.slug, { id: randomUUID(), slug: e.slug, name: e.name, folders: new Map() });
        for (const f of e.folders) {
          const folder = this.ensureFolder(p.id, e.slug, f.path);
          for (const [key, value] of Object.entries(f.secrets)) this.write(folder, key, value);
          for (const imp of f.imports) folder.imports.push({ id: randomUUID(), ...imp });
        }
      }
    }
  }

  /** The project with this slug (v3 `workspaceSlug`). */
  projectBySlug(slug: string): ProjectRecord | undefined {
    return [...this.projects.values()].find((p) => p.slug === slug);
  }

  /** One environment of a project, by slug. */
  env(projectId: string, environment: string): EnvRecord | undefined {
    return this.projects.get(projectId)?.envs.get(environment);
  }

  /** One folder by normalised path, or undefined. */
  folder(projectId: string, environment: string, path: string): FolderRecord | undefined {
    return this.env(projectId, environment)?.folders.get(path);
  }

  /** The folder, created with its parents when missing. Unknown project/env is a usage error. */
  ensureFolder(projectId: string, environment: string, path: string): FolderRecord {
    const env = this.env(projectId, environment);
    if (!env) {
      throw new ReloaderError(
        'RLD_ERR_USAGE',
        `local Infisical: no environment ${environment} in project ${projectId}`,
      );
    }
    let folder = env.folders.get(path);
    if (!folder) {
      if (path !== '/') this.ensureFolder(projectId, environment, parentPath(path));
      folder = { id: randomUUID(), path, secrets: new Map(), imports: [] };
      env.folders.set(path, folder);
    }
    return folder;
  }

  /** Folders at or below `path`, depth first, siblings in creation order (Infisical's tree walk). */
  foldersUnder(projectId: string, environment: string, path: string): FolderRecord[] {
    const env = this.env(projectId, environment);
    if (!env) return [];
    const out: FolderRecord[] = [];
    const visit = (folder: FolderRecord) => {
      out.push(folder);
      for (const child of env.folders.values()) {
        if (child.path !== '/' && parentPath(child.path) === folder.path) visit(child);
      }
    };
    const root = env.folders.get('/');
    if (root) visit(root);
    const prefix = path === '/' ? '/' : `${path}/`;
    return out.filter((f) => f.path === path || f.path.startsWith(prefix));
  }

  /** Create or update one secret; the version is bumped on every write (Infisical does). */
  set(projectId: string, environment: string, path: string, key: string, value: string): void {
    this.write(this.ensureFolder(projectId, environment, path), key, value);
  }

  /** Delete one secret; false when it did not exist. */
  delete(projectId: string, environment: string, path: string, key: string): boolean {
    return this.folder(projectId, environment, path)?.secrets.delete(key) ?? false;
  }

  /**
   * Make the folder hold exactly `secrets`: new keys created, changed values bumped, missing keys
   * deleted, unchanged keys untouched. True when anything changed.
   */
  replace(projectId: string, environment: string, path: string, secrets: Record<string, string>) {
    const folder = this.ensureFolder(projectId, environment, path);
    let changed = false;
    for (const key of [...folder.secrets.keys()]) {
      if (!(key in secrets)) changed = folder.secrets.delete(key) || changed;
    }
    for (const [key, value] of Object.entries(secrets)) {
      if (folder.secrets.get(key)?.value !== value) {
        this.write(folder, key, value);
        changed = true;
      }
    }
    return changed;
  }

  /** Raw value lookup used by reference expansion. */
  lookup(
    projectId: string,
  ): (environment: string, path: string, key: string) => string | undefined {
    return (environment, path, key) =>
      this.folder(projectId, environment, path)?.secrets.get(key)?.value;
  }

  /** Folders whose imports include (`environment`, `path`): they get a change event too. */
  importersOf(projectId: string, environment: string, path: string): FolderRef[] {
    const out: FolderRef[] = [];
    for (const env of this.projects.get(projectId)?.envs.values() ?? []) {
      for (const f of env.folders.values()) {
        if (f.imports.some((i) => i.environment === environment && i.path === path)) {
          out.push({ environment: env.slug, path: f.path });
        }
      }
    }
    return out;
  }

  /** Folders holding a secret with a nested reference `${environment.path….KEY}` into the folder. */
  referencersOf(projectId: string, environment: string, path: string): FolderRef[] {
    const segs = path === '/' ? [] : path.slice(1).split('/');
    const prefix = `\${${[environment, ...segs].join('.')}.`;
    const out: FolderRef[] = [];
    for (const env of this.projects.get(projectId)?.envs.values() ?? []) {
      for (const f of env.folders.values()) {
        const hit = [...f.secrets.values()].some((s) => {
          if (!containsReference(s.value) || !s.value.includes(prefix)) return false;
          return [...s.value.matchAll(/\$\{([a-zA-Z0-9-_.@]+)\}/g)].some(
            (m) => (m[1] ?? '').split('.').length === segs.length + 2 && m[0].startsWith(prefix),
          );
        });
        if (hit) out.push({ environment: env.slug, path: f.path });
      }
    }
    return out;
  }

  private write(folder: FolderRecord, key: string, value: string): void {
    const atIso = new Date().toISOString();
    const existing = folder.secrets.get(key);
    if (existing) {
      existing.version += 1;
      existing.value = value;
      existing.updatedAt = atIso;
      existing.history.push({ version: existing.version, value, atIso });
      return;
    }
    folder.secrets.set(key, {
      id: randomUUID(),
      key,
      value,
      version: 1,
      createdAt: atIso,
      updatedAt: atIso,
      history: [{ version: 1, value, atIso }],
    });
  }
}
