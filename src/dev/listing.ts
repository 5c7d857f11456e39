/**
 * The secret-reading services of the local server, mirroring Infisical's `getSecrets` and
 * `getSecretByName` (`secret-v2-bridge-service.ts`) and `fnSecretsV2FromImports`
 * (`secret-import-fns.ts`), and producing the exact JSON of the route schemas
 * (`secretRawSchema` + extensions, key order as the zod serializer emits it).
 *
 * Behaviour kept from Infisical: a missing folder (or environment, non-recursive) lists nothing
 * instead of failing; recursive listing of a missing environment is a 404; hidden values are
 * `<hidden-by-infisical>`; imported secrets are always reference-expanded and de-duplicated by
 * key when listing; nested imports are flattened into their top-level import's `secrets`.
 */
import { badRequest, notFound } from './api-error.js';
import { expandReferences } from './references.js';
import type {
  FolderRecord,
  ImportRecord,
  ProjectRecord,
  SecretRecord,
  SecretStore,
} from './store.js';
import { isValidSecretPath } from './validate.js';

/** The value Infisical puts in place of a secret the caller may not (or asked not to) see. */
export const HIDDEN_MASK = '<hidden-by-infisical>';
const IMPORT_LEVEL_BREAK = 10;

export interface ListParams {
  project: ProjectRecord;
  environment: string;
  path: string;
  recursive: boolean;
  includeImports: boolean;
  expand: boolean;
  viewSecretValue: boolean;
  tagSlugs: string[];
  metadataFilter: boolean;
}

type Json = Record<string, unknown>;

interface ImportedSecret {
  secret: SecretRecord;
  /** The environment of the import that holds it (a nested import's own). */
  environment: string;
  value: string;
  hidden: boolean;
}
interface ProcessedImport {
  secretPath: string;
  environment: string;
  folderId?: string;
  secrets: ImportedSecret[];
}

/** `GET /v3/secrets/raw` and `GET /v4/secrets`: `{secrets}`, plus `imports` only when asked. */
export function listSecrets(
  store: SecretStore,
  p: ListParams,
): { secrets: Json[]; imports?: Json[] } {
  const { project, environment, path } = p;
  let folders: FolderRecord[];
  if (p.recursive) {
    if (!store.env(project.id, environment)) {
      throw notFound(
        `Environment with slug '${environment}' in project with ID ${project.id} not found`,
      );
    }
    folders = store.foldersUnder(project.id, environment, path);
  } else {
    checkPath(path);
    const folder = store.folder(project.id, environment, path);
    folders = folder ? [folder] : [];
  }
  if (folders.length === 0)
    return p.includeImports ? { secrets: [], imports: [] } : { secrets: [] };
  const lookup = store.lookup(project.id);
  const filtered = p.tagSlugs.length > 0 || p.metadataFilter; // no tags or metadata are stored
  const secrets = folders.flatMap((folder) =>
    filtered
      ? []
      : [...folder.secrets.values()].map((s) => {
          const hidden = !p.viewSecretValue;
          let value = hidden ? HIDDEN_MASK : s.value;
          if (p.expand && !hidden) {
            value = expandReferences(value, { environment, path: folder.path, key: s.key }, lookup);
          }
          return listedSecret(project, environment, folder.path, s, value, hidden);
        }),
  );
  if (!p.includeImports) return { secrets };
  const roots = folders.flatMap((f) => f.imports);
  const imports = resolveImports(store, project, roots, p.viewSecretValue, true).map((imp) => ({
    secretPath: imp.secretPath,
    environment: imp.environment,
    ...(imp.folderId === undefined ? {} : { folderId: imp.folderId }),
    secrets: imp.secrets.map(importedSecretJson),
  }));
  return { secrets, imports };
}

export interface GetParams {
  project: ProjectRecord;
  environment: string;
  path: string;
  secretName: string;
  type: 'shared' | 'personal';
  version?: number;
  expand: boolean;
  viewSecretValue: boolean;
  includeImports: boolean;
}

/** `GET /v3/secrets/raw/:secretName` and `GET /v4/secrets/:secretName`: the `secret` object. */
export function getSecretByName(store: SecretStore, p: GetParams): Json {
  const { project, environment, path } = p;
  checkPath(path);
  const folder = store.folder(project.id, environment, path);
  if (!folder) {
    throw notFound(
      `Folder with path '${path}' in environment with slug '${environment}' not found`,
      'GetSecretByName',
    );
  }
  // Identities have no personal secrets; a version lookup reads the history.
  let secret = p.type === 'shared' ? folder.secrets.get(p.secretName) : undefined;
  if (secret && p.version !== undefined) {
    const v = secret.history.find((h) => h.version === p.version);
    secret = v ? { ...secret, value: v.value, version: v.version, updatedAt: v.atIso } : undefined;
  }
  const hidden = !p.viewSecretValue;
  if (!secret && p.includeImports) {
    const expand = p.expand && p.viewSecretValue;
    const imports = resolveImports(store, project, folder.imports, p.viewSecretValue, expand);
    for (let i = imports.length - 1; i >= 0; i -= 1) {
      const imp = imports[i] as ProcessedImport;
      const hit = imp.secrets.find((x) => x.secret.key === p.secretName);
      if (hit) {
        return singleSecret(
          project,
          imp.environment,
          imp.secretPath,
          hit.secret,
          hit.value,
          hidden,
        );
      }
    }
  }
  if (!secret) throw notFound(`Secret with name '${p.secretName}' not found`);
  let value = secret.value;
  if (p.expand && value && p.viewSecretValue) {
    value = expandReferences(
      value,
      { environment, path, key: secret.key },
      store.lookup(project.id),
    );
  }
  return singleSecret(project, environment, path, secret, hidden ? HIDDEN_MASK : value, hidden);
}

function checkPath(path: string): void {
  if (!isValidSecretPath(path)) {
    throw badRequest(
      'Invalid secret path. Only alphanumeric characters, dashes, and underscores are allowed.',
    );
  }
}

/**
 * `fnSecretsV2FromImports`: walk the imports level by level (a stack, as Infisical does), skip
 * (env, path) pairs already seen, attach deeper imports' secrets to their top-level import,
 * then (when `expand`) expand values in the top-level import's env/path and keep the first
 * secret of each key.
 */
function resolveImports(
  store: SecretStore,
  project: ProjectRecord,
  roots: ImportRecord[],
  viewSecretValue: boolean,
  expand: boolean,
): ProcessedImport[] {
  const seen = new Set<string>();
  const stack: { imports: ImportRecord[]; depth: number; parent?: ImportedSecret[] }[] = [
    { imports: roots, depth: 0 },
  ];
  const processed: ProcessedImport[] = [];
  while (stack.length > 0) {
    const { imports, depth, parent } = stack.pop() as (typeof stack)[number];
    if (depth > IMPORT_LEVEL_BREAK) continue;
    const batch = imports.filter((i) => !seen.has(`${i.environment}=${i.path}`));
    const folders = batch.map((i) => store.folder(project.id, i.environment, i.path));
    if (!folders.some(Boolean)) continue;
    batch.forEach((i) => seen.add(`${i.environment}=${i.path}`));
    const isFirst = processed.length === 0;
    batch.forEach((imp, n) => {
      const folder = folders[n];
      const secrets: ImportedSecret[] = [...(folder?.secrets.values() ?? [])].map((secret) => ({
        secret,
        environment: imp.environment,
        value: viewSecretValue ? secret.value : HIDDEN_MASK,
        hidden: !viewSecretValue,
      }));
      if (folder && folder.imports.length > 0) {
        stack.push({ imports: folder.imports, depth: depth + 1, parent: secrets });
      }
      if (isFirst) {
        processed.push({
          secretPath: imp.path,
          environment: imp.environment,
          folderId: folder?.id,
          secrets,
        });
      } else parent?.push(...secrets);
    });
  }
  if (expand) {
    const lookup = store.lookup(project.id);
    for (const imp of processed) {
      const keys = new Set<string>();
      imp.secrets = imp.secrets.filter((x) => !keys.has(x.secret.key) && keys.add(x.secret.key));
      for (const x of imp.secrets) {
        if (x.hidden) continue;
        const at = { environment: imp.environment, path: imp.secretPath, key: x.secret.key };
        x.value = expandReferences(x.value, at, lookup);
      }
    }
  }
  return processed;
}

function base(project: ProjectRecord, environment: string, s: SecretRecord, value: string): Json {
  return {
    id: s.id,
    _id: s.id,
    workspace: project.id,
    environment,
    version: s.version,
    type: 'shared',
    secretKey: s.key,
    secretValue: value,
    secretComment: '',
    secretReminderNote: null,
    secretReminderRepeatDays: null,
    skipMultilineEncoding: false,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
    actor: null,
    isRotatedSecret: false,
    rotationId: null,
  };
}

/** A listed secret: `secretRawSchema.extend({secretPath, secretValueHidden, secretMetadata, tags})`. */
function listedSecret(
  project: ProjectRecord,
  env: string,
  path: string,
  s: SecretRecord,
  value: string,
  hidden: boolean,
): Json {
  return {
    ...base(project, env, s, value),
    secretPath: path,
    secretValueHidden: hidden,
    secretMetadata: [],
    tags: [],
  };
}

/** A single secret: `secretRawSchema.extend({secretValueHidden, secretPath, tags, secretMetadata})`. */
function singleSecret(
  project: ProjectRecord,
  env: string,
  path: string,
  s: SecretRecord,
  value: string,
  hidden: boolean,
): Json {
  return {
    ...base(project, env, s, hidden ? HIDDEN_MASK : value),
    secretValueHidden: hidden,
    secretPath: path,
    tags: [],
    secretMetadata: [],
  };
}

/** An imported secret: raw row fields kept by the import schema; `workspace` is always "". */
function importedSecretJson(x: ImportedSecret): Json {
  return {
    id: x.secret.id,
    _id: x.secret.id,
    workspace: '',
    environment: x.environment,
    version: x.secret.version,
    type: 'shared',
    secretKey: x.secret.key,
    secretValue: x.value,
    secretComment: '',
    skipMultilineEncoding: false,
    secretValueHidden: x.hidden,
    secretMetadata: [],
  };
}
