/**
 * Reads the body of `GET /api/v4/secrets` (and v3 `secrets/raw`) (docs/infisical-api.md) into one flat key → value map.
 *
 * Strict on what we use, tolerant of the rest: the body must have a `secrets` array and each
 * secret a string `secretKey` and `secretValue`; every other field (`tags`, `actor`,
 * `secretMetadata`, `secretReminder*`, `secretPath`, `type`, even `imports`) may be absent.
 * A malformed body is `RLD_ERR_INFISICAL_RESPONSE`, naming keys and positions only.
 *
 * Merge rules (all deterministic, whatever the order of the server's arrays):
 *
 * 1. Personal secrets (`type: "personal"`) are skipped. Machine identities have none; a config
 *    file rendered for a whole pod must not depend on one user's private override.
 * 2. A value Infisical hid (`secretValueHidden: true`, the identity lacks read-value permission)
 *    is an error: rendering the mask into a config file would be silently wrong.
 * 3. Own secrets (the `secrets` array, any folder when `recursive`) win over imported ones.
 * 4. With `recursive`, one key may appear in several folders: the shallowest `secretPath` wins
 *    (the folder the source names is the most specific choice the operator made); between two
 *    folders of the same depth the path that sorts first (code-point order) wins. Each such
 *    collision is reported in `shadowed` so the caller can log the key and paths (never values).
 * 5. Among imports, the **last** import in the array wins. That is how Infisical itself resolves
 *    imports (server `getSecretByName` and secret syncs, the CLI's `InjectRawImportedSecret` and
 *    the dashboard's download all walk `imports` from the end); the Node SDK's
 *    `listSecretsWithImports` keeps the first instead, which disagrees with the server.
 */
import { ReloaderError } from '../errors.js';

/** The flat result of one listing. */
export interface SecretListing {
  secrets: Map<string, string>;
  /** The response's `ETag` header, when the server sent one (it does: @fastify/etag). */
  etag?: string;
}

/** A key present in two folders of a recursive listing: which path was kept. */
export interface ShadowedKey {
  key: string;
  keptPath: string;
  droppedPath: string;
}

/** What {@link parseSecretListing} found besides the map. */
export interface ParsedListing {
  secrets: Map<string, string>;
  shadowed: ShadowedKey[];
  personalSkipped: number;
}

interface RawSecret {
  key: string;
  value: string;
  path: string;
}

function responseError(route: string, problem: string): ReloaderError {
  return new ReloaderError('RLD_ERR_INFISICAL_RESPONSE', `Infisical ${route}: ${problem}`, {
    details: { route },
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Number of non-empty segments: `/` → 0, `/a/b` → 2. */
function depth(path: string): number {
  return path.split('/').filter((s) => s !== '').length;
}

/** True when path `a` beats path `b` under rule 4. */
function shallowerFirst(a: string, b: string): boolean {
  const da = depth(a);
  const db = depth(b);
  if (da !== db) return da < db;
  return a < b;
}

/** Reads one entry of a `secrets` array; undefined for a skipped personal secret. */
function readSecret(
  raw: unknown,
  where: string,
  defaultPath: string,
  route: string,
): RawSecret | undefined {
  if (!isObject(raw)) throw responseError(route, `${where} is not an object`);
  const key = raw['secretKey'];
  if (typeof key !== 'string' || key === '') {
    throw responseError(route, `${where} has no string secretKey`);
  }
  if (raw['type'] === 'personal') return undefined;
  if (raw['secretValueHidden'] === true) {
    throw responseError(
      route,
      `the value of secret "${key}" is hidden by Infisical (the identity may not read values)`,
    );
  }
  const value = raw['secretValue'];
  if (typeof value !== 'string') {
    throw responseError(route, `secret "${key}" (${where}) has no string secretValue`);
  }
  const path = typeof raw['secretPath'] === 'string' ? raw['secretPath'] : defaultPath;
  return { key, value, path };
}

/**
 * Validates a listing body and merges it under the rules of the module comment.
 * `requestedPath` is the folder the source asked for (the default `secretPath` of a secret).
 */
export function parseSecretListing(
  body: unknown,
  opts: { route: string; requestedPath: string },
): ParsedListing {
  const { route, requestedPath } = opts;
  if (!isObject(body) || !Array.isArray(body['secrets'])) {
    throw responseError(route, 'the body has no "secrets" array');
  }
  const own = new Map<string, RawSecret>();
  const shadowed: ShadowedKey[] = [];
  let personalSkipped = 0;

  body['secrets'].forEach((raw, i) => {
    const s = readSecret(raw, `secrets[${i}]`, requestedPath, route);
    if (s === undefined) {
      personalSkipped++;
      return;
    }
    const prev = own.get(s.key);
    if (prev === undefined) {
      own.set(s.key, s);
    } else if (prev.path !== s.path) {
      const winner = shallowerFirst(s.path, prev.path) ? s : prev;
      const loser = winner === s ? prev : s;
      own.set(s.key, winner);
      shadowed.push({ key: s.key, keptPath: winner.path, droppedPath: loser.path });
    }
  });

  const secrets = new Map<string, string>();
  for (const [key, s] of own) secrets.set(key, s.value);

  const imports = body['imports'];
  if (imports !== undefined && imports !== null) {
    if (!Array.isArray(imports)) throw responseError(route, '"imports" is not an array');
    const readImports: RawSecret[][] = imports.map((imp, i) => {
      if (!isObject(imp) || !Array.isArray(imp['secrets'])) {
        throw responseError(route, `imports[${i}] has no "secrets" array`);
      }
      const path = typeof imp['secretPath'] === 'string' ? imp['secretPath'] : requestedPath;
      const out: RawSecret[] = [];
      imp['secrets'].forEach((raw, j) => {
        const s = readSecret(raw, `imports[${i}].secrets[${j}]`, path, route);
        if (s === undefined) personalSkipped++;
        else out.push(s);
      });
      return out;
    });
    // Rule 5: walk from the last import; the first one seen for a key wins.
    for (let i = readImports.length - 1; i >= 0; i--) {
      for (const s of readImports[i] ?? []) {
        if (!secrets.has(s.key)) secrets.set(s.key, s.value);
      }
    }
  }
  return { secrets, shadowed, personalSkipped };
}
