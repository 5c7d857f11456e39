/** The key → readers index of the target scheduler. */
/**
 * key → names of the targets that read it. Most keys have one reader, so a key holds the name
 * itself and gets a Set only from its second reader on: at 10,000 keys, one Set per key costs
 * ≈ 1.2 MiB more than the names (the memory benchmark).
 */
export class ReadersIndex {
  private readonly byKey = new Map<string, string | Set<string>>();

  add(key: string, name: string): void {
    const readers = this.byKey.get(key);
    if (readers === undefined) this.byKey.set(key, name);
    else if (typeof readers === 'string') {
      if (readers !== name) this.byKey.set(key, new Set([readers, name]));
    } else readers.add(name);
  }

  remove(key: string, name: string): void {
    const readers = this.byKey.get(key);
    if (readers === name) this.byKey.delete(key);
    else if (typeof readers === 'object') {
      readers.delete(name);
      if (readers.size === 1) this.byKey.set(key, readers.values().next().value as string);
    }
  }

  /** Calls `fn` with each reader of `key`. */
  forEach(key: string, fn: (name: string) => void): void {
    const readers = this.byKey.get(key);
    if (typeof readers === 'string') fn(readers);
    else readers?.forEach((name) => fn(name));
  }

  /** Names reading `key`, sorted (tests). */
  readersOf(key: string): string[] {
    const out: string[] = [];
    this.forEach(key, (name) => out.push(name));
    return out.sort();
  }

  get size(): number {
    return this.byKey.size;
  }

  clear(): void {
    this.byKey.clear();
  }
}
