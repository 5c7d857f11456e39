/**
 * The seed of the local Infisical: projects, environments, folders with secrets, imports, and
 * machine identities. Two YAML shapes are accepted:
 *
 * (a) a flat map `KEY: value`, put into `defaults` (project / environment / path);
 * (b) the full form:
 *
 *     projects:
 *       - id: 0f8c…            # projectId (= workspaceId); name defaults to id, slug to slug(name)
 *         name: Quickstart
 *         environments:
 *           - slug: dev          # name defaults to Development / Staging / Production / slug
 *             folders: { /: { DB_USER: app }, /api: { API_KEY: k } }
 *             imports: { /: [ { environment: dev, path: /shared } ] }   # in order
 *     identities:
 *       - id: 6b2f…
 *         kubernetes: { allowedNamespaces: "default,team-*", allowedNames: reloader, allowedAudience: "" }
 *         universal: { clientId: …, clientSecret: …, lockout: false }    # lockout default on
 *         accessTokenTTL: 7200           # seconds; also accessTokenMaxTTL, accessTokenNumUsesLimit
 *         projects: [ 0f8c… ]            # membership; default every project
 *
 * Secret values must be scalars; numbers and booleans keep their *source text* (`1.50` stays
 * `1.50`), `null` becomes the empty string. When `identities` is absent a default identity with
 * universal auth (`DEFAULT_IDENTITY`) and unrestricted Kubernetes auth is added, so `dev` works
 * out of the box. Every error is a `SpecError` naming the file, the YAML path and the line.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { ReloaderError, SpecError } from '../errors.js';
import { DEFAULT_LOCKOUT, ENV_NAMES, isRecord, Reader } from './seed-reader.js';

export type {
  LockoutConfig,
  Seed,
  SeedEnvironment,
  SeedFolder,
  SeedIdentity,
  SeedImport,
  SeedProject,
} from './seed-types.js';
import type { Seed, SeedIdentity, SeedProject } from './seed-types.js';

export interface SeedDefaults {
  projectId: string;
  environment: string;
  path: string;
}

export const DEFAULT_SEED_DEFAULTS: SeedDefaults = {
  projectId: 'local-project',
  environment: 'dev',
  path: '/',
};

export { DEFAULT_LOCKOUT };

/** Added when a seed has no `identities`: universal auth with these credentials, any SA token. */
export const DEFAULT_IDENTITY: SeedIdentity = {
  id: 'local-identity',
  name: 'local-identity',
  kubernetes: { allowedNamespaces: '', allowedNames: '', allowedAudience: '' },
  universal: {
    clientId: 'local-client-id',
    clientSecret: 'local-client-secret',
    lockout: DEFAULT_LOCKOUT,
  },
};

/** Parse `yamlText` (from `fileName`, used in errors) into a validated seed. */
export function parseSeed(
  yamlText: string,
  fileName: string,
  defaults?: Partial<SeedDefaults>,
): Seed {
  const lc = new LineCounter();
  const doc = parseDocument(yamlText, { lineCounter: lc, prettyErrors: true });
  const firstError = doc.errors[0];
  if (firstError) {
    const line = firstError.linePos?.[0].line ?? 0;
    throw new SpecError(
      { file: fileName, yamlPath: '', line },
      firstError.message.split('\n')[0] ?? '',
    );
  }
  const reader: Reader = new Reader(fileName, doc, lc);
  const root = doc.toJS() as unknown;
  if (root === null || root === undefined) return finish(reader, [], undefined);
  if (!isRecord(root)) reader.fail([], 'the seed must be a YAML map');
  if ('projects' in root || 'identities' in root) {
    const projects = reader
      .list(root.projects ?? [], ['projects'])
      .map((p, i) => reader.project(p, ['projects', i]));
    const identities =
      root.identities === undefined
        ? undefined
        : reader
            .list(root.identities, ['identities'])
            .map((x, i) => reader.identity(x, ['identities', i]));
    for (const key of Object.keys(root)) {
      if (key !== 'projects' && key !== 'identities') reader.fail([key], 'unknown key');
    }
    return finish(reader, projects, identities);
  }
  const d = { ...DEFAULT_SEED_DEFAULTS, ...defaults };
  const path = reader.folderPath(d.path, []);
  const project: SeedProject = {
    id: d.projectId,
    name: 'Local Project',
    slug: 'local-project',
    environments: [
      {
        slug: d.environment,
        name: ENV_NAMES[d.environment] ?? d.environment,
        folders: [
          ...(path === '/' ? [] : [{ path: '/', secrets: {}, imports: [] }]),
          { path, secrets: reader.secrets(root, []), imports: [] },
        ],
      },
    ],
  };
  return finish(reader, [project], undefined);
}

/** Read and parse a seed file. An unreadable file is an `RLD_ERR_SPEC` naming it. */
export async function loadSeedFile(path: string, defaults?: Partial<SeedDefaults>): Promise<Seed> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ReloaderError('RLD_ERR_SPEC', `cannot read secrets file ${path}`, { cause: err });
  }
  return parseSeed(text, path, defaults);
}

function finish(
  reader: Reader,
  projects: SeedProject[],
  identities: SeedIdentity[] | undefined,
): Seed {
  projects.forEach((p, i) => {
    if (projects.findIndex((q) => q.id === p.id) !== i)
      reader.fail(['projects', i, 'id'], `duplicate project id ${p.id}`);
    p.environments.forEach((env, e) => {
      for (const folder of env.folders) {
        folder.imports.forEach((imp, k) => {
          if (!p.environments.some((x) => x.slug === imp.environment)) {
            const where = ['projects', i, 'environments', e, 'imports', folder.path, k];
            reader.fail(where, `imported environment ${imp.environment} is not in project ${p.id}`);
          }
        });
      }
    });
  });
  const ids = identities ?? [DEFAULT_IDENTITY];
  ids.forEach((x, i) => {
    if (ids.findIndex((y) => y.id === x.id) !== i)
      reader.fail(['identities', i, 'id'], `duplicate identity id ${x.id}`);
  });
  return { file: reader.file, projects, identities: ids };
}
