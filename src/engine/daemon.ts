/**
 * The daemon: push-driven, never polling.
 *
 * Data flows one way:
 *   event → (modified: mark sources dirty → fetch debouncer → one refetch per source per burst
 *            → diff) | (value: apply to the snapshot → diff)
 *         → targets that read a changed key (or whose last pass failed)
 *         → target debouncer (wait.min / wait.max, one pass at a time per target)
 *         → render → commit → check → reload → report.
 *
 * Start-up: the server listens first (`/healthz` 200, `/readyz` 503), then the first fetch is
 * retried with backoff until it succeeds, every target is rendered, and `/readyz` turns 200
 * once every target has rendered successfully at least once. Events that arrive before the
 * first fetch are kept and applied after it.
 *
 * The only timers: the token lifecycle (inside TokenManager), the debouncers, and the retry
 * backoff while Infisical is unreachable (which only re-tries work an event asked for).
 */
import type { ReloaderSpec } from '../config/types.js';
import type { ChangeEvent } from '../events/parse.js';
import { sourceForValueEvent, sourcesForEvent } from '../events/match.js';
import { asReloaderError } from '../errors.js';
import { scrubber, type Logger } from '../logger.js';
import { removeCrashLeftovers } from '../output/cleanup.js';
import { SecretSnapshot } from '../secrets/snapshot.js';
import type { Metrics } from '../server/metrics.js';
import { Debouncer, realTimers, type Burst, type Timers } from './debouncer.js';
import { fetchSources, openSession, type InfisicalSession } from './fetch.js';
import { newTargetState, runTargetPass, type TargetState } from './runner.js';
import { compileTargets, type CompiledTarget } from './targets.js';
import { ALL_KEYS } from '../template/engine.js';

const FETCH_KEY = 'fetch';
/** Key names listed in the "secrets fetched" log line; beyond this only the count is logged. */
const LOGGED_KEYS_MAX = 20;
const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const RELOAD_RETRY_START_MS = 1_000;
const RELOAD_RETRY_MAX_MS = 60_000;

export interface DaemonOptions {
  spec: ReloaderSpec;
  logger: Logger;
  env: Readonly<Record<string, string | undefined>>;
  metrics: Metrics;
  timers?: Timers;
  /** Load and validate the spec again (SIGHUP); defaults to re-reading `spec.file`. */
  reloadSpec?: () => Promise<ReloaderSpec>;
}

export interface EventEffect {
  effect: 'queued' | 'ignored';
  reason?: string;
}

export class Daemon {
  private spec: ReloaderSpec;
  private targets = new Map<string, CompiledTarget>();
  private readonly states = new Map<string, TargetState>();
  /** key → names of the targets whose last successful render read it (dependents lookup). */
  private readonly readers = new ReadersIndex();
  private snapshot: SecretSnapshot;
  private session: InfisicalSession;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly fetchDebouncer: Debouncer<string>;
  private readonly targetDebouncer: Debouncer<string>;
  private readonly dirtySources = new Set<number>();
  private forceAllTargets = false;
  private fetchedOnce = false;
  private readonly earlyValueEvents: Array<{ event: ChangeEvent; atMs: number }> = [];
  private backoffMs = BACKOFF_START_MS;
  private retryTimer: unknown;
  private reloading: Promise<boolean> = Promise.resolve(true);
  private fetching = false;
  private readonly valuesDuringFetch: Array<{
    index: number;
    key: string;
    value: string | undefined;
  }> = [];
  private readonly reloadRetries = new Map<string, { delayMs: number; timer: unknown }>();
  private stopping = false;
  private readonly startedAt = new Date();
  private lastFetchAt: string | undefined;
  private lastFetchError: { code: string; message: string } | undefined;

  constructor(private readonly options: DaemonOptions) {
    this.spec = options.spec;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.timers = options.timers ?? realTimers;
    this.snapshot = new SecretSnapshot(this.spec.sources.length, this.logger);
    this.session = this.openSession(this.spec);
    this.fetchDebouncer = new Debouncer<string>({
      run: (_key, burst) => this.runFetch(burst),
      waitFor: () => this.spec.defaults.wait,
      onError: (_key, err) => this.logger.error({ err: asReloaderError(err) }, 'fetch pass failed'),
      timers: this.timers,
    });
    this.targetDebouncer = new Debouncer<string>({
      run: (name, burst) => this.runTarget(name, burst),
      waitFor: (name) => this.targets.get(name)?.spec.wait ?? this.spec.defaults.wait,
      onError: (name, err) =>
        this.logger.error({ target: name, err: asReloaderError(err) }, 'target pass failed'),
      timers: this.timers,
    });
  }

  /**
   * Compile templates (throws RLD_ERR_TEMPLATE: the caller exits 2), clean crash leftovers,
   * and start the first fetch. Resolves as soon as the first fetch is scheduled; `whenReady`
   * resolves once every target has rendered.
   */
  async start(): Promise<void> {
    await this.installTargets(this.spec);
    const removed = await removeCrashLeftovers(this.destinations());
    if (removed > 0) this.logger.warn({ removed }, 'removed temp files left by an earlier crash');
    this.session.tokens.start();
    this.requestFullSync(this.timers.now());
  }

  /** Handle one verified webhook event; only queues work, answers at once. */
  handleEvent(event: ChangeEvent, atMs: number = this.timers.now()): EventEffect {
    if (this.stopping) return { effect: 'ignored', reason: 'shutting down' };
    if (
      event.kind === 'modified' ||
      (event.kind === 'value' && this.spec.webhook.payloadValues === 'refetch')
    ) {
      const indexes =
        event.kind === 'modified'
          ? sourcesForEvent(this.spec.sources, event)
          : this.valueEventSources(event);
      if (indexes.length === 0) {
        return { effect: 'ignored', reason: 'no configured source covers this change' };
      }
      for (const i of indexes) this.dirtySources.add(i);
      this.fetchDebouncer.trigger(FETCH_KEY, atMs);
      return { effect: 'queued' };
    }
    if (event.kind === 'value') {
      const index = this.valueEventSources(event)[0];
      if (index === undefined)
        return { effect: 'ignored', reason: 'no configured source matches the event' };
      if (!this.fetchedOnce) {
        this.earlyValueEvents.push({ event, atMs });
        return { effect: 'queued' };
      }
      this.applyValue(event, index, atMs);
      return { effect: 'queued' };
    }
    return { effect: 'ignored', reason: `event kind ${event.kind}` };
  }

  /** POST /resync and SIGHUP: refetch every source, re-render every target. */
  resync(): void {
    if (this.stopping) return;
    this.requestFullSync(this.timers.now());
  }

  /**
   * SIGHUP: re-read the spec; keep the old one if the new one is invalid. Reloads run one at a
   * time (a second SIGHUP waits for the first), never throw, and do nothing once stopping.
   * The new spec is compiled once, then targets, snapshot and session are swapped in one
   * synchronous step. When the sources did not change, the snapshot (and readiness) is kept;
   * either way everything is refetched once.
   */
  reload(): Promise<boolean> {
    this.reloading = this.reloading
      .then(() => this.reloadNow())
      .catch((err: unknown) => {
        this.logger.error({ err: asReloaderError(err) }, 'SIGHUP: reload failed');
        return false;
      });
    return this.reloading;
  }

  private async reloadNow(): Promise<boolean> {
    const load = this.options.reloadSpec;
    if (!load || this.stopping) return false;
    let next: ReloaderSpec;
    let compiled: CompiledTarget[];
    try {
      next = await load();
      compiled = await compileTargets(next);
    } catch (err) {
      this.logger.error(
        { err: asReloaderError(err, 'RLD_ERR_SPEC') },
        'SIGHUP: new spec is invalid; keeping the old one',
      );
      return false;
    }
    await this.targetDebouncer.idle();
    await this.fetchDebouncer.idle();
    if (this.stopping) return false;
    const old = this.session;
    const sameSources = JSON.stringify(next.sources) === JSON.stringify(this.spec.sources);
    // one synchronous swap: no fetch or pass can see half of it
    this.spec = next;
    this.installCompiled(compiled);
    if (!sameSources) {
      this.snapshot = new SecretSnapshot(next.sources.length, this.logger);
      this.fetchedOnce = false;
      this.dirtySources.clear();
    }
    this.session = this.openSession(next);
    this.session.tokens.start();
    await old.close();
    this.logger.info(
      { targets: next.targets.length, sources: next.sources.length, sameSources },
      'SIGHUP: spec reloaded',
    );
    this.requestFullSync(this.timers.now());
    return true;
  }

  /** Finish the in-flight commits, stop every timer, close the Infisical session. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.retryTimer !== undefined) this.timers.clearTimeout(this.retryTimer);
    for (const { timer } of this.reloadRetries.values()) this.timers.clearTimeout(timer);
    this.reloadRetries.clear();
    // Close the session first: it aborts an in-flight request and its retry waits, so a hung
    // Infisical cannot hold SIGTERM past the pod's grace period.
    await this.session.close();
    await this.fetchDebouncer.stop();
    await this.targetDebouncer.stop();
  }

  /** Resolves when no fetch or target pass is pending or running (tests). */
  async idle(): Promise<void> {
    for (;;) {
      await this.fetchDebouncer.idle();
      await this.targetDebouncer.idle();
      if (this.fetchDebouncer.isIdle && this.targetDebouncer.isIdle) return;
    }
  }

  get healthy(): boolean {
    return !this.stopping;
  }

  /** Every target has rendered successfully at least once. */
  get ready(): boolean {
    if (!this.fetchedOnce) return false;
    for (const name of this.targets.keys()) {
      if (!this.states.get(name)?.renderedOnce) return false;
    }
    return true;
  }

  /** JSON for GET /status: names, hashes, times and outcomes only. */
  status(): Record<string, unknown> {
    return {
      ready: this.ready,
      startedAt: this.startedAt.toISOString(),
      spec: this.spec.file,
      token: { expiresAt: this.tokenExpiry() },
      infisical: { lastFetchAt: this.lastFetchAt, lastError: this.lastFetchError },
      sources: this.spec.sources.map((s, i) => ({
        projectId: s.projectId,
        environment: s.environment,
        path: s.path,
        recursive: s.recursive,
        keys: this.fetchedOnce ? this.snapshot.source(i).size : undefined,
      })),
      targets: [...this.targets.keys()].map((name) => this.states.get(name)),
    };
  }

  private tokenExpiry(): string | undefined {
    const ms = this.session.tokens.expiresAtMs();
    return ms === undefined ? undefined : new Date(ms).toISOString();
  }

  private openSession(spec: ReloaderSpec): InfisicalSession {
    return openSession(spec, this.logger, (expiresAtMs) => this.metrics.tokenExpiry(expiresAtMs));
  }

  private async installTargets(spec: ReloaderSpec): Promise<void> {
    this.installCompiled(await compileTargets(spec));
  }

  /** Make `compiled` the current targets; keep the state of targets that stay. */
  private installCompiled(compiled: CompiledTarget[]): void {
    this.targets = new Map(compiled.map((t) => [t.spec.name, t]));
    for (const name of this.targets.keys()) {
      if (!this.states.has(name)) this.states.set(name, newTargetState(name));
    }
    for (const name of [...this.states.keys()]) {
      if (!this.targets.has(name)) this.states.delete(name);
    }
    this.readers.clear();
    for (const [name, state] of this.states) this.indexReads(name, [], state.keysRead);
  }

  /** Move target `name` in the key → readers index from the keys it read before to `now`. */
  private indexReads(name: string, before: readonly string[], now: readonly string[]): void {
    for (const key of before) this.readers.remove(key, name);
    for (const key of now) this.readers.add(key, name);
  }

  private destinations(): string[] {
    return [...this.targets.values()].flatMap((t) => t.spec.files.map((f) => f.destination));
  }

  private valueEventSources(event: Extract<ChangeEvent, { kind: 'value' }>): number[] {
    const index = sourceForValueEvent(this.spec.sources, event, (i, key) =>
      this.fetchedOnce ? this.snapshot.source(i).has(key) : false,
    );
    return index === undefined ? [] : [index];
  }

  private applyValue(
    event: Extract<ChangeEvent, { kind: 'value' }>,
    index: number,
    atMs: number,
  ): void {
    const value = event.action === 'deleted' ? undefined : event.value;
    if (value !== undefined) scrubber.add(value);
    const changed = this.snapshot.applyValue(index, event.key, value);
    // A fetch in flight may answer with the value from before this event: re-apply it then.
    if (this.fetching) this.valuesDuringFetch.push({ index, key: event.key, value });
    // debug: the webhook route already logged this delivery (kind, action, key) at info.
    this.logger.debug(
      { key: event.key, action: event.action, changed: changed.size > 0 },
      'value event applied',
    );
    this.triggerAffected(changed, atMs, false);
  }

  private requestFullSync(atMs: number): void {
    this.spec.sources.forEach((_s, i) => this.dirtySources.add(i));
    this.forceAllTargets = true;
    this.fetchDebouncer.trigger(FETCH_KEY, atMs, true);
  }

  /** One fetch pass over the dirty sources; on failure, keep them dirty and retry with backoff. */
  private async runFetch(burst: Burst): Promise<void> {
    if (this.dirtySources.size === 0) return;
    const indexes = [...this.dirtySources].sort((a, b) => a - b);
    const forceAll = this.forceAllTargets;
    this.dirtySources.clear();
    this.forceAllTargets = false;
    let listings;
    this.fetching = true;
    try {
      listings = await fetchSources(this.session, this.spec.sources, indexes);
    } catch (err) {
      this.fetching = false;
      this.valuesDuringFetch.length = 0;
      const error = asReloaderError(err, 'RLD_ERR_INFISICAL_NETWORK');
      for (const i of indexes) this.dirtySources.add(i);
      this.forceAllTargets = this.forceAllTargets || forceAll;
      this.lastFetchError = { code: error.code, message: error.message };
      this.metrics.fetch('failed');
      const delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
      this.logger.warn(
        { err: error, retryInMs: delay },
        'fetch failed; keeping the last good files',
      );
      if (!this.stopping) {
        // One retry chain at most: a later failure re-arms the same timer, never a second one.
        if (this.retryTimer !== undefined) this.timers.clearTimeout(this.retryTimer);
        this.retryTimer = this.timers.setTimeout(() => {
          this.retryTimer = undefined;
          this.fetchDebouncer.trigger(FETCH_KEY, burst.firstEventAtMs, true);
        }, delay);
      }
      return;
    }
    this.backoffMs = BACKOFF_START_MS;
    this.lastFetchError = undefined;
    this.lastFetchAt = new Date(this.timers.now()).toISOString();
    this.metrics.fetch('ok');
    this.fetching = false;
    const changed = this.snapshot.replace(listings);
    // Value events that arrived while the request was out are newer than its answer.
    for (const v of this.valuesDuringFetch.splice(0)) {
      if (!listings.has(v.index)) continue;
      for (const key of this.snapshot.applyValue(v.index, v.key, v.value)) changed.add(key);
    }
    // Names only, and a bounded list: every string of a log line is scrubbed against every
    // known value, so 10,000 key names here cost seconds on a large first fetch.
    this.logger.info(
      {
        sources: indexes,
        changed: changed.size,
        ...(changed.size <= LOGGED_KEYS_MAX ? { changedKeys: [...changed].sort() } : {}),
      },
      'secrets fetched',
    );
    const first = !this.fetchedOnce;
    this.fetchedOnce = true;
    if (first) {
      for (const { event, atMs } of this.earlyValueEvents.splice(0)) this.handleEvent(event, atMs);
    }
    this.triggerAffected(changed, burst.firstEventAtMs, forceAll || first);
  }

  /**
   * Queue the targets a change concerns: readers of a changed key (through the key → readers
   * index, so the cost follows the change, not the number of targets × keys), and failed or
   * never-rendered ones. Targets are queued in declared order.
   */
  private triggerAffected(changed: ReadonlySet<string>, atMs: number, all: boolean): void {
    const dependents = new Set<string>();
    if (!all) {
      for (const key of changed) {
        this.readers.forEach(key, (name) => dependents.add(name));
      }
      // templates that enumerate every secret depend on keys added since their last render
      if (changed.size > 0) this.readers.forEach(ALL_KEYS, (name) => dependents.add(name));
    }
    for (const [name] of this.targets) {
      const state = this.states.get(name);
      const affected =
        all ||
        !state?.renderedOnce ||
        (state.lastStatus === 'failed' && changed.size > 0) ||
        dependents.has(name);
      if (affected) this.targetDebouncer.trigger(name, atMs, all);
    }
  }

  private async runTarget(name: string, burst: Burst): Promise<void> {
    const target = this.targets.get(name);
    const state = this.states.get(name);
    if (!target || !state || !this.fetchedOnce) return;
    const readBefore = state.keysRead;
    const result = await runTargetPass(target, this.snapshot.merged, state, {
      logger: this.logger,
      env: this.options.env,
      firstRender: !state.renderedOnce,
      cwd: this.spec.dir,
    });
    // The pass replaces state.keysRead after a successful render; a SIGHUP may have dropped
    // the target meanwhile (then its reads must not come back into the index).
    if (state.keysRead !== readBefore && this.states.get(name) === state) {
      this.indexReads(name, readBefore, state.keysRead);
    }
    this.metrics.render(name, result.status);
    this.metrics.targetUp(name, result.status !== 'failed');
    if (result.status !== 'failed') this.metrics.targetSuccess(name, this.timers.now());
    if (result.written.length > 0) {
      this.metrics.observeEventToFile((this.timers.now() - burst.firstEventAtMs) / 1000);
    }
    if (result.reload) {
      this.metrics.reload(name, result.reload.status);
      if (result.reload.status === 'ok') {
        this.metrics.observeEventToReload((this.timers.now() - burst.firstEventAtMs) / 1000);
      }
    }
    this.metrics.ready(this.ready);
    this.scheduleReloadRetry(name, state);
  }

  /**
   * A failed reload leaves the app on its old config while the files are new: retry it (the
   * next pass runs the reload even though nothing changed) with a per-target backoff, 1 s
   * doubling to 60 s. This timer only re-runs a local action; it never asks Infisical.
   */
  private scheduleReloadRetry(name: string, state: TargetState): void {
    const pending = this.reloadRetries.get(name);
    if (!state.reloadPending || this.stopping) {
      if (pending) this.timers.clearTimeout(pending.timer);
      this.reloadRetries.delete(name);
      return;
    }
    if (pending?.timer !== undefined) this.timers.clearTimeout(pending.timer);
    const delay = pending
      ? Math.min(pending.delayMs * 2, RELOAD_RETRY_MAX_MS)
      : RELOAD_RETRY_START_MS;
    const timer = this.timers.setTimeout(() => {
      const entry = this.reloadRetries.get(name);
      if (entry) entry.timer = undefined;
      if (!this.stopping) this.targetDebouncer.trigger(name, this.timers.now(), true);
    }, delay);
    this.reloadRetries.set(name, { delayMs: delay, timer });
    this.logger.warn({ target: name, retryInMs: delay }, 'reload failed; it will be retried');
  }
}

/**
 * key → names of the targets that read it. Most keys have one reader, so a key holds the name
 * itself and gets a Set only from its second reader on: at 10,000 keys, one Set per key costs
 * ≈ 1.2 MiB more than the names (bench 5).
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
