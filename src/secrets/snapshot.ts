/**
 * The in-memory view of the secrets: one map per configured source, and the merged map that
 * templates see (a later source wins on a collision; a collision is logged once, by key
 * name only). The daemon diffs two merged maps to find which keys changed, and re-renders only
 * the targets that read one of them.
 */
import type { Logger } from '../logger.js';

export type SecretMap = ReadonlyMap<string, string>;

/**
 * Merge per-source maps in source order; a later source overrides an earlier one.
 * `onCollision(key, winnerIndex)` is called for each key present in more than one source.
 */
export function mergeSources(
  perSource: readonly SecretMap[],
  onCollision?: (key: string, winnerIndex: number) => void,
): Map<string, string> {
  const merged = new Map<string, string>();
  const owner = new Map<string, number>();
  perSource.forEach((secrets, index) => {
    for (const [key, value] of secrets) {
      if (owner.has(key) && onCollision) onCollision(key, index);
      merged.set(key, value);
      owner.set(key, index);
    }
  });
  return merged;
}

/** Keys added, removed or whose value differs between `before` and `after`. */
export function changedKeys(before: SecretMap, after: SecretMap): Set<string> {
  const changed = new Set<string>();
  for (const [key, value] of after) {
    if (before.get(key) !== value) changed.add(key);
  }
  for (const key of before.keys()) {
    if (!after.has(key)) changed.add(key);
  }
  return changed;
}

/**
 * Holds the latest listing of every source and the merged view. Collisions are logged once per
 * key for the life of the snapshot holder (a rotation does not repeat the warning).
 *
 * With a single source (the common case) the merged view *is* that source's map, not a copy:
 * nothing can collide, and a copy of 10,000 entries is ≈ 0.45 MiB for nothing (bench 5).
 */
export class SecretSnapshot {
  private readonly perSource: SecretMap[];
  private mergedView: Map<string, string>;
  private readonly warnedCollisions = new Set<string>();

  constructor(
    sourceCount: number,
    private readonly logger?: Logger,
  ) {
    this.perSource = Array.from({ length: sourceCount }, () => new Map<string, string>());
    this.mergedView = this.merge();
  }

  /** The merged map of `perSource`: a new map, or the only source's own map. */
  private merge(): Map<string, string> {
    if (this.perSource.length === 1) return this.perSource[0] as Map<string, string>;
    return mergeSources(this.perSource, (key, winner) => {
      if (this.warnedCollisions.has(key)) return;
      this.warnedCollisions.add(key);
      this.logger?.warn(
        { key, source: winner },
        'secret key is set in several sources; the later source wins',
      );
    });
  }

  /** The merged map templates read. Do not mutate. */
  get merged(): SecretMap {
    return this.mergedView;
  }

  /** The latest listing of source `index`. */
  source(index: number): SecretMap {
    const map = this.perSource[index];
    if (!map) throw new RangeError(`no source ${index}`);
    return map;
  }

  /**
   * Index of the source whose value of `key` the merged view holds (the last source that has
   * it), or undefined when no source has it. O(sources).
   */
  ownerOf(key: string): number | undefined {
    for (let i = this.perSource.length - 1; i >= 0; i--) {
      if ((this.perSource[i] as SecretMap).has(key)) return i;
    }
    return undefined;
  }

  /**
   * Replace the listings of some sources (index → map) and recompute the merge.
   * Returns the set of merged keys whose value changed (added, removed or different).
   */
  replace(listings: ReadonlyMap<number, SecretMap>): Set<string> {
    for (const [index, map] of listings) {
      if (index < 0 || index >= this.perSource.length) throw new RangeError(`no source ${index}`);
      this.perSource[index] = map;
    }
    const before = this.mergedView;
    this.mergedView = this.merge();
    return changedKeys(before, this.mergedView);
  }

  /**
   * Apply one value change to a source (a value-carrying webhook event): set, or delete when
   * `value` is undefined. Returns the changed merged keys (empty when nothing changed).
   * O(sources), not O(keys): only `key`'s merged value can change, so the source map is updated
   * in place and the merge is recomputed for that one key (a later source still wins).
   */
  applyValue(index: number, key: string, value: string | undefined): Set<string> {
    const source = this.source(index) as Map<string, string>;
    // read first: with one source the merged view is `source` itself
    const before = this.mergedView.get(key);
    if (value === undefined) source.delete(key);
    else source.set(key, value);
    let after: string | undefined;
    let holders = 0;
    for (const map of this.perSource) {
      const v = map.get(key);
      if (v !== undefined) {
        after = v;
        holders++;
      }
    }
    if (holders > 1 && !this.warnedCollisions.has(key)) {
      this.warnedCollisions.add(key);
      this.logger?.warn({ key }, 'secret key is set in several sources; the later source wins');
    }
    if (after === undefined) this.mergedView.delete(key);
    else this.mergedView.set(key, after);
    return before === after ? new Set() : new Set([key]);
  }
}
