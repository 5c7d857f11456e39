/**
 * Secret sync: keeps the in-memory snapshot in step with Infisical and says which keys changed.
 * It knows sources and keys, never targets or files; the target scheduler listens to it.
 *
 * Data flow:
 *   refetch(sources) / refetchAll()  ──▶ dirty sources ──fetch debouncer (defaults.wait)──▶
 *   one listing per dirty source, in parallel, each answering alone ──▶ snapshot ──▶ onChange
 *   applyValue(source, key, value)   ──▶ snapshot ──▶ onChange
 *
 * Rules:
 *   (1) a burst of refetch requests gives one listing per dirty source (the debouncer);
 *   (2) sources answer alone: the ones that answered are applied at once; the ones that failed
 *       keep their last listing (the last good files stay in place), stay dirty and are the only
 *       ones retried, after a jittered backoff (500 ms doubling to 30 s); the retry timer is the
 *       only timer here and it only repeats work an event (or the start) asked for;
 *   (3) the sync is `settled` once every source has been tried at least once; the first settle
 *       reports every target as concerned (`all`), as do `refetchAll` passes (start, resync,
 *       SIGHUP);
 *   (4) a value applied while a listing is in flight is newer than that listing's answer: it is
 *       applied again on top of it; values that arrive before the first settle wait for it;
 *   (5) every received value is registered with the runtime's scrubber (the client does it for
 *       listings, `applyValue` for carried values).
 */
import type { SourceSpec, WaitSpec } from '../config/types.js';
import { asReloaderError, InfisicalHttpError, type ReloaderError } from '../errors.js';
import type { Logger } from '../logger.js';
import { Debouncer, type Burst } from '../util/debouncer.js';
import type { InfisicalSession } from '../infisical/session.js';
import { Backoff } from '../util/backoff.js';
import { realTimers, type Timers } from '../util/timers.js';
import type { Scrubber } from './scrubber.js';
import { SecretSnapshot, type SecretMap } from './snapshot.js';

const FETCH_KEY = 'fetch';
/** Key names listed in the "secrets fetched" log line; beyond this only the count is logged. */
const LOGGED_KEYS_MAX = 20;

/** What the sync tells its listener after each change of the snapshot. */
export interface SyncChange {
  /** Merged keys whose value changed (added, removed or different). */
  changed: ReadonlySet<string>;
  /** When the first event of the burst that caused this arrived (latency metrics). */
  firstEventAtMs: number;
  /** Every target is concerned: the first settle, or a full refetch (start, resync, SIGHUP). */
  all: boolean;
}

/** The last error of a source, as `/status` shows it. */
export interface SourceError {
  code: string;
  message: string;
  /** Infisical's HTTP status, when it answered with one. */
  status?: number;
}

/** A source that keeps a target from being current. */
export interface BlockingSource {
  index: number;
  /** `projectId/environment/path`, for logs and `/status`. */
  label: string;
  error?: SourceError;
  /** true: never answered (the target waits); false: failing now, last listing kept. */
  neverAnswered: boolean;
}

interface SourceState {
  answered: boolean;
  tried: boolean;
  lastFetchAt?: string;
  lastError?: SourceError;
}

/** What the sync reports per fetch (the metrics layer). */
export interface SyncMetrics {
  fetch(outcome: 'ok' | 'failed'): void;
  sourceUp?(source: string, up: boolean): void;
}

export interface SecretSyncOptions {
  sources: readonly SourceSpec[];
  session: InfisicalSession;
  logger: Logger;
  scrubber: Scrubber;
  metrics: SyncMetrics;
  /** Quiet period of the fetch debouncer (the spec's `defaults.wait`). */
  wait: () => WaitSpec;
  onChange: (change: SyncChange) => void;
  timers?: Timers;
  /** A snapshot to continue from (SIGHUP with unchanged sources keeps what it knows). */
  snapshot?: SecretSnapshot;
}

/** `projectId/environment/path` of a source, for logs, `/status` and metric labels. */
export function sourceLabel(source: SourceSpec): string {
  return `${source.projectId}/${source.environment}${source.path === '/' ? '/' : source.path}`;
}

export class SecretSync {
  readonly snapshot: SecretSnapshot;
  private readonly sources: readonly SourceSpec[];
  private readonly states: SourceState[];
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly debouncer: Debouncer<string>;
  private readonly dirty = new Set<number>();
  private forceAll = false;
  private settledOnce = false;
  private readonly earlyValues: Array<{
    index: number;
    key: string;
    value?: string;
    atMs: number;
  }> = [];
  private readonly valuesDuringFetch: Array<{ index: number; key: string; value?: string }> = [];
  private fetching = false;
  private readonly backoff = new Backoff({ baseMs: 500, maxMs: 30_000 });
  private retryTimer: unknown;
  private stopped = false;

  constructor(private readonly opts: SecretSyncOptions) {
    this.sources = opts.sources;
    this.timers = opts.timers ?? realTimers;
    this.logger = opts.logger;
    this.snapshot = opts.snapshot ?? new SecretSnapshot(opts.sources.length, opts.logger);
    const kept = opts.snapshot !== undefined;
    this.states = opts.sources.map(() => ({ answered: kept, tried: kept }));
    this.settledOnce = kept;
    this.debouncer = new Debouncer<string>({
      run: (_key, burst) => this.runFetch(burst),
      waitFor: () => opts.wait(),
      onError: (_key, err) => this.logger.error({ err: asReloaderError(err) }, 'fetch pass failed'),
      timers: this.timers,
    });
  }

  /** The merged view templates read. */
  get merged(): SecretMap {
    return this.snapshot.merged;
  }

  /** Every source has been tried at least once (targets can be rendered). */
  get settled(): boolean {
    return this.settledOnce;
  }

  /** The session's API base URL. */
  get baseUrl(): string {
    return this.opts.session.baseUrl;
  }

  /** Refetch the given sources (by index) after the quiet period; one listing each per burst. */
  refetch(indexes: Iterable<number>, atMs: number = this.timers.now()): void {
    if (this.stopped) return;
    let any = false;
    for (const i of indexes) {
      if (i >= 0 && i < this.sources.length) {
        this.dirty.add(i);
        any = true;
      }
    }
    if (any) this.debouncer.trigger(FETCH_KEY, atMs);
  }

  /** Refetch every source now, and report every target as concerned (start, resync, SIGHUP). */
  refetchAll(atMs: number = this.timers.now()): void {
    if (this.stopped) return;
    this.sources.forEach((_s, i) => this.dirty.add(i));
    this.forceAll = true;
    this.debouncer.trigger(FETCH_KEY, atMs, true);
  }

  /**
   * Apply one carried value to source `index` (`undefined` deletes the key). Before the first
   * settle it waits for it (rule 4).
   */
  applyValue(index: number, key: string, value: string | undefined, atMs: number): void {
    if (this.stopped) return;
    if (value !== undefined) this.opts.scrubber.add(value);
    if (!this.settledOnce) {
      this.earlyValues.push({ index, key, value, atMs });
      return;
    }
    this.applyNow(index, key, value, atMs);
  }

  /** True when source `index` holds `key` now (picking a source for a value event). */
  sourceHas(index: number, key: string): boolean {
    return this.states[index]?.answered === true && this.snapshot.source(index).has(key);
  }

  /**
   * The sources that keep a render reading `keys` from being current: a source that never
   * answered and could hold one of the keys (it comes after the source the key is taken from,
   * so it would win), or a source failing now that a key is taken from or could come from.
   * `missing` is true when the render failed on a missing key: then every source that never
   * answered is blocking (the key may be there).
   */
  blockingSources(keys: Iterable<string>, missing = false): BlockingSource[] {
    const failing = this.states
      .map((s, index) => ({ s, index }))
      .filter(({ s }) => !s.answered || s.lastError !== undefined);
    if (failing.length === 0) return [];
    const out = new Map<number, BlockingSource>();
    const add = (index: number): void => {
      const s = this.states[index] as SourceState;
      out.set(index, {
        index,
        label: sourceLabel(this.sources[index] as SourceSpec),
        error: s.lastError,
        neverAnswered: !s.answered,
      });
    };
    if (missing) for (const { s, index } of failing) if (!s.answered) add(index);
    for (const key of keys) {
      const owner = this.snapshot.ownerOf(key) ?? -1;
      for (const { s, index } of failing) {
        if (index > owner || (index === owner && s.answered)) add(index);
      }
    }
    return [...out.values()].sort((a, b) => a.index - b.index);
  }

  /** Per-source state for `/status` (names, counts and errors; never a value). */
  status(): Array<Record<string, unknown>> {
    return this.sources.map((s, i) => {
      const state = this.states[i] as SourceState;
      return {
        projectId: s.projectId,
        environment: s.environment,
        path: s.path,
        recursive: s.recursive,
        up: state.answered && state.lastError === undefined,
        keys: state.answered ? this.snapshot.source(i).size : undefined,
        lastFetchAt: state.lastFetchAt,
        lastError: state.lastError,
      };
    });
  }

  /** The first error among the sources that are failing now (the global `/status` line). */
  lastError(): SourceError | undefined {
    return this.states.find((s) => s.lastError !== undefined)?.lastError;
  }

  /** The latest successful listing time of any source. */
  lastFetchAt(): string | undefined {
    return this.states
      .map((s) => s.lastFetchAt)
      .filter((t): t is string => t !== undefined)
      .sort()
      .at(-1);
  }

  /** Resolves when no listing is pending or running. */
  idle(): Promise<void> {
    return this.debouncer.idle();
  }

  get isIdle(): boolean {
    return this.debouncer.isIdle;
  }

  /** Stops the retry timer and waits for the listing in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer !== undefined) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.debouncer.stop();
  }

  private applyNow(index: number, key: string, value: string | undefined, atMs: number): void {
    const changed = this.snapshot.applyValue(index, key, value);
    if (this.fetching) this.valuesDuringFetch.push({ index, key, value });
    this.logger.debug({ key, changed: changed.size > 0 }, 'value event applied');
    if (changed.size > 0) this.opts.onChange({ changed, firstEventAtMs: atMs, all: false });
  }

  /** One pass over the dirty sources (rules 1–3). */
  private async runFetch(burst: Burst): Promise<void> {
    if (this.dirty.size === 0) return;
    const indexes = [...this.dirty].sort((a, b) => a - b);
    const forceAll = this.forceAll;
    this.dirty.clear();
    this.forceAll = false;
    this.fetching = true;
    const results = await Promise.allSettled(
      indexes.map((i) => this.opts.session.listSource(this.sources[i] as SourceSpec)),
    );
    this.fetching = false;
    const listings = new Map<number, SecretMap>();
    const failed: Array<{ index: number; error: ReloaderError }> = [];
    const nowIso = new Date(this.timers.now()).toISOString();
    results.forEach((r, k) => {
      const index = indexes[k] as number;
      const state = this.states[index] as SourceState;
      state.tried = true;
      const label = sourceLabel(this.sources[index] as SourceSpec);
      if (r.status === 'fulfilled') {
        listings.set(index, r.value);
        state.answered = true;
        state.lastFetchAt = nowIso;
        state.lastError = undefined;
        this.opts.metrics.fetch('ok');
        this.opts.metrics.sourceUp?.(label, true);
      } else {
        const error = asReloaderError(r.reason, 'RLD_ERR_INFISICAL_NETWORK');
        state.lastError = {
          code: error.code,
          message: error.message,
          ...(error instanceof InfisicalHttpError ? { status: error.status } : {}),
        };
        failed.push({ index, error });
        this.opts.metrics.fetch('failed');
        this.opts.metrics.sourceUp?.(label, false);
      }
    });
    if (this.stopped) return;

    if (failed.length > 0) this.scheduleRetry(failed, forceAll, burst);
    else this.backoff.reset();

    const changed = listings.size > 0 ? this.snapshot.replace(listings) : new Set<string>();
    // (4) values that arrived while the requests were out are newer than their answers
    for (const v of this.valuesDuringFetch.splice(0)) {
      if (!listings.has(v.index)) continue;
      for (const key of this.snapshot.applyValue(v.index, v.key, v.value)) changed.add(key);
    }
    if (listings.size > 0) {
      // Names only, and a bounded list: every string of a log line is scrubbed against every
      // known value, so 10,000 key names here cost seconds on a large first fetch.
      this.logger.info(
        {
          sources: [...listings.keys()],
          changed: changed.size,
          ...(changed.size <= LOGGED_KEYS_MAX ? { changedKeys: [...changed].sort() } : {}),
        },
        'secrets fetched',
      );
    }
    const first = !this.settledOnce && this.states.every((s) => s.tried);
    if (first) {
      this.settledOnce = true;
      for (const v of this.earlyValues.splice(0)) {
        for (const key of this.snapshot.applyValue(v.index, v.key, v.value)) changed.add(key);
      }
    }
    if (!this.settledOnce) return;
    const all = forceAll || first;
    if (all || changed.size > 0) {
      this.opts.onChange({ changed, firstEventAtMs: burst.firstEventAtMs, all });
    }
  }

  /** Rule 2: the failed sources stay dirty; one retry chain at most. */
  private scheduleRetry(
    failed: Array<{ index: number; error: ReloaderError }>,
    forceAll: boolean,
    burst: Burst,
  ): void {
    for (const f of failed) this.dirty.add(f.index);
    this.forceAll = this.forceAll || forceAll;
    const delay = this.backoff.next();
    for (const f of failed) {
      const state = this.states[f.index] as SourceState;
      this.logger.warn(
        {
          err: f.error,
          source: sourceLabel(this.sources[f.index] as SourceSpec),
          infisical: this.opts.session.baseUrl,
          retryInMs: delay,
        },
        state.answered
          ? 'fetch failed; keeping the last good files'
          : 'fetch failed; the targets that need this source wait for it',
      );
    }
    if (this.retryTimer !== undefined) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopped) this.debouncer.trigger(FETCH_KEY, burst.firstEventAtMs, true);
    }, delay);
  }
}
