/**
 * Server-side expansion of secret references, following Infisical's
 * `expandSecretReferencesFactory` (`secret-v2-bridge/secret-reference-fns.ts`):
 *
 * - syntax `${KEY}` = same environment and folder as the secret being expanded;
 *   `${env.a.b.KEY}` = environment `env`, folder `/a/b`, key `KEY` (`${env.KEY}` = folder `/`);
 *   names match `[a-zA-Z0-9-_.@]+`; `${@project.env.path.KEY}` (cross-project) is left as is;
 * - (1) the root value is scanned; (2) each reference is looked up in the *raw* (unexpanded)
 *   store and replaced everywhere in the result when it exists — a missing one stays literally;
 * - (3) a referenced value that itself holds references is scanned in its own env/folder, up to
 *   depth 10, never re-entering a secret already on the chain (cycles stop there);
 * - (4) when a pass produced references that were not there before (`${dev.${KIND}.KEY}`),
 *   another pass runs over the result, at most 10 passes.
 */
import { posix } from 'node:path';

const PATTERN = String.raw`\${([a-zA-Z0-9-_.@]+)}`;
const TEST = new RegExp(PATTERN);
const MAX_DEPTH = 10;

/** Raw lookup of one secret; `undefined` when the env, folder or key does not exist. */
export type SecretLookup = (environment: string, path: string, key: string) => string | undefined;

/** True when `value` contains at least one `${...}` reference. */
export function containsReference(value: string): boolean {
  return TEST.test(value);
}

function matchAll(value: string): string[] {
  return [...value.matchAll(new RegExp(PATTERN, 'g'))].map((m) => m[0]);
}

interface Frame {
  value: string;
  environment: string;
  path: string;
  depth: number;
  visited: Set<string>;
}

/**
 * Expand `value`, the value of secret `key` in (`environment`, `path`), against `lookup`.
 * The numbered steps are those of the module comment.
 */
export function expandReferences(
  value: string,
  at: { environment: string; path: string; key: string },
  lookup: SecretLookup,
): string {
  if (!value || !containsReference(value)) return value;
  const id = (env: string, p: string, k: string) => `${env}:${p}:${k}`;
  const rootFrame = (v: string): Frame => ({
    value: v,
    environment: at.environment,
    path: at.path,
    depth: 0,
    visited: new Set([id(at.environment, at.path, at.key)]),
  });
  const stack: Frame[] = [rootFrame(value)]; // (1)
  let expanded = value;
  let refsBeforePass = new Set(matchAll(expanded));
  let pass = 0;
  while (stack.length > 0) {
    const frame = stack.pop() as Frame;
    const refs = frame.depth > MAX_DEPTH ? [] : matchAll(frame.value);
    for (const ref of refs) {
      const entities = ref.slice(2, -1).trim().split('.');
      let env: string;
      let path: string;
      let key: string;
      if (entities.length === 1) {
        [env, path, key] = [frame.environment, frame.path, entities[0] ?? ''];
      } else if ((entities[0] ?? '').startsWith('@')) {
        continue; // cross-project references need folder grants: never expanded here
      } else {
        env = entities[0] ?? '';
        path = posix.join('/', ...entities.slice(1, -1));
        key = entities[entities.length - 1] ?? '';
      }
      const found = lookup(env, path, key); // (2)
      const refId = id(env, path, key);
      const circular = frame.visited.has(refId);
      if (found !== undefined && containsReference(found) && !circular) {
        stack.push({
          value: found,
          environment: env,
          path,
          depth: frame.depth + 1,
          visited: new Set([...frame.visited, refId]),
        }); // (3)
      }
      if (found !== undefined) expanded = expanded.split(ref).join(found);
    }
    if (stack.length === 0 && pass < MAX_DEPTH) {
      const after = matchAll(expanded); // (4)
      if (after.some((r) => !refsBeforePass.has(r))) {
        refsBeforePass = new Set(after);
        pass += 1;
        stack.push(rootFrame(expanded));
      }
    }
  }
  return expanded;
}
