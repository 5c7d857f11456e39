/**
 * Which configured sources a change event concerns. Pure functions over `SourceSpec[]`.
 *
 * Infisical's `secrets.modified` names a project, an environment and the *folder that changed*
 * (docs/infisical-api.md): never a key, never a value. The reloader answers by refetching the sources
 * the change can reach, then diffs; an unneeded refetch costs one request and changes
 * nothing on disk, a missed one leaves a stale file until the next restart. So when in doubt,
 * these functions choose the refetch.
 */
import type { SourceSpec } from '../config/types.js';

/**
 * Canonical folder path: repeated `/` collapsed, trailing `/` removed except for the root `/`.
 * Expects a path that starts with `/` (parse.ts rejects the others); returns it unchanged otherwise.
 */
export function normalizeSecretPath(path: string): string {
  if (!path.startsWith('/')) return path;
  const collapsed = path.replace(/\/{2,}/g, '/');
  return collapsed.length > 1 && collapsed.endsWith('/') ? collapsed.slice(0, -1) : collapsed;
}

/**
 * True when a source reading `sourcePath` (recursively or not) reads the folder `eventPath`
 * directly: `/a` covers `/a`; a recursive `/a` also covers `/a/b/c` (but not `/ab`); a recursive
 * `/` covers everything; a non-recursive `/` covers only `/`. Both paths are normalised first.
 * Imports and references are not considered here: see `sourcesForEvent`.
 */
export function pathCovers(sourcePath: string, recursive: boolean, eventPath: string): boolean {
  const source = normalizeSecretPath(sourcePath);
  const event = normalizeSecretPath(eventPath);
  if (source === event) return true;
  if (!recursive) return false;
  if (source === '/') return event.startsWith('/');
  return event.startsWith(`${source}/`);
}

/** What `sourcesForEvent` needs from a `secrets.modified` event. */
export interface FolderChange {
  projectId: string;
  environment: string;
  secretPath: string;
}

/**
 * Indexes (ascending) of the sources to refetch for a folder change. The rule:
 *
 * - a source whose project and environment match and whose path covers the event's folder
 *   (`pathCovers`) is always refetched — the change is in what it reads;
 * - a source with `includeImports` or `expandReferences` is refetched for **any** change in its
 *   project, whatever the environment or folder. Why: an import or a `${env.path.KEY}` reference
 *   can pull from any environment and folder of the same project (and imports chain), and which
 *   ones a source uses is only known by fetching it — the event does not say. Infisical keeps both
 *   inside one project, so other projects never trigger it.
 *
 * Cost: with the defaults (both flags true) every event of the project refetches every source of
 * that project: one request per source per burst, coalesced by the scheduler, and the diff keeps
 * unchanged output from being written or reloaded. Infisical only sends what the hook's own
 * environment/path filter lets through, which bounds the rate. An operator who wants strict
 * folder matching sets `includeImports: false` and `expandReferences: false` on that source.
 */
export function sourcesForEvent(sources: readonly SourceSpec[], ev: FolderChange): number[] {
  const out: number[] = [];
  sources.forEach((source, index) => {
    if (source.projectId !== ev.projectId) return;
    const direct =
      source.environment === ev.environment &&
      pathCovers(source.path, source.recursive, ev.secretPath);
    if (direct || source.includeImports || source.expandReferences) out.push(index);
  });
  return out;
}

/** Where a value-carrying event says its secret lives; every field is optional. */
export interface ValueLocation {
  projectId?: string;
  environment?: string;
  secretPath?: string;
  key?: string;
}

/**
 * The one source a value-carrying event (`secret.updated` …) applies to, or undefined when no
 * configured source matches what the event names (the caller ignores it, with a reason).
 *
 * (1) Keep the sources whose project, environment and path (`pathCovers`) match the fields the
 *     event carries; an absent field matches every source.
 * (2) When the event names a path, keep only the most specific: an exact path beats a recursive
 *     ancestor, a deeper ancestor beats a shallower one.
 * (3) Among those, prefer the sources that already hold the key (`hasKey`, when given).
 * (4) Take the **last** one. Templates see the sources merged with "a later source wins"
 *     (a later source wins on a collision), so the last candidate is the one whose value the templates actually read: a new
 *     value applied there is visible, one applied to an earlier source could be shadowed.
 *
 * With a single source (the usual case) this is that source whenever its fields match.
 */
export function sourceForValueEvent(
  sources: readonly SourceSpec[],
  ev: ValueLocation,
  hasKey?: (index: number, key: string) => boolean,
): number | undefined {
  // (1)
  let candidates: number[] = [];
  sources.forEach((source, index) => {
    if (ev.projectId !== undefined && source.projectId !== ev.projectId) return;
    if (ev.environment !== undefined && source.environment !== ev.environment) return;
    if (ev.secretPath !== undefined && !pathCovers(source.path, source.recursive, ev.secretPath)) {
      return;
    }
    candidates.push(index);
  });
  // (2)
  if (ev.secretPath !== undefined && candidates.length > 1) {
    const target = normalizeSecretPath(ev.secretPath);
    const rank = (index: number): number => {
      const path = normalizeSecretPath(sources[index]?.path ?? '/');
      return path === target ? Number.MAX_SAFE_INTEGER : path === '/' ? 0 : path.length;
    };
    const best = Math.max(...candidates.map(rank));
    candidates = candidates.filter((index) => rank(index) === best);
  }
  // (3)
  const key = ev.key;
  if (hasKey !== undefined && key !== undefined) {
    const holders = candidates.filter((index) => hasKey(index, key));
    if (holders.length > 0) candidates = holders;
  }
  // (4)
  return candidates[candidates.length - 1];
}
