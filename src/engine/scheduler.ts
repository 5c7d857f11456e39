/**
 * The target scheduler: decides which targets a change concerns and runs their passes. It knows
 * targets, keys and files, never Infisical; the secret sync feeds it.
 *
 *   change (changed keys, or `all`)
 *     → targets that read a changed key (the key → readers index), plus the ones that failed
 *       or never rendered
 *     → one debouncer per target (wait.min / wait.max; one pass at a time per target)
 *     → pass: render → commit → check → reload (runner.ts)
 *     → state, metrics, and a retry of a failed reload (1 s doubling to 60 s, jittered).
 *
 * The index, the target's readiness and the event-to-file latency move together at the instant
 * the files are in place (`onCommitted`), before the reload runs: a change that arrives while
 * the first reload is still running finds the target in the index, so no event answered 200 is
 * ever lost (it triggers one more pass after the running one).
 */
import type { WaitSpec } from '../config/types.js';
import { asReloaderError, ReloaderError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Scrubber } from '../secrets/scrubber.js';
import type { SecretMap } from '../secrets/snapshot.js';
import type { BlockingSource } from '../secrets/sync.js';
import { ALL_KEYS } from '../template/engine.js';
import { Backoff } from '../util/backoff.js';
import { Debouncer, type Burst } from '../util/debouncer.js';
import { realTimers, type Timers } from '../util/timers.js';
import { ReadersIndex } from './readers-index.js';
import { newTargetState, runTargetPass, type PassResult, type TargetState } from './runner.js';
import type { CompiledTarget } from './targets.js';

/** What the scheduler reports to (the metrics layer). */
export interface SchedulerMetrics {
  render(target: string, outcome: 'committed' | 'unchanged' | 'failed'): void;
  reload(target: string, outcome: 'ok' | 'skipped' | 'failed'): void;
  targetUp(target: string, up: boolean): void;
  targetSuccess(target: string, atMs: number): void;
  observeEventToFile(seconds: number): void;
  observeEventToReload(seconds: number): void;
  declareTargets(targets: readonly string[]): void;
  verify?(target: string, outcome: 'ok' | 'failed'): void;
  targetError?(target: string, code: string | undefined): void;
}

/** Where the scheduler reads secrets from, and which sources keep a render from being current. */
export interface SecretsView {
  /** The sync has tried every source once: passes may run. */
  readonly settled: boolean;
  readonly merged: SecretMap;
  blockingSources(keys: Iterable<string>, missing?: boolean): BlockingSource[];
}

export interface SchedulerOptions {
  secrets: SecretsView;
  logger: Logger;
  scrubber: Scrubber;
  metrics: SchedulerMetrics;
  env: Readonly<Record<string, string | undefined>>;
  /** The spec's `defaults.wait`, for targets without their own. */
  defaultWait: () => WaitSpec;
  /** Working directory of check and reload commands (the spec's folder). */
  cwd: () => string;
  timers?: Timers;
  /** One pass over one target; the seam for tests. Default `runTargetPass`. */
  runPass?: typeof runTargetPass;
}

/** A target's state plus what keeps it from being current, for `/status`. */
export type TargetStatus = TargetState & { blockedBy?: BlockingSource[] };

export class TargetScheduler {
  private targets = new Map<string, CompiledTarget>();
  private readonly states = new Map<string, TargetState>();
  private readonly readers = new ReadersIndex();
  /** What each target is indexed under now (the index's own copy of keysRead). */
  private readonly indexed = new Map<string, readonly string[]>();
  private readonly debouncer: Debouncer<string>;
  private readonly reloadRetries = new Map<string, { backoff: Backoff; timer: unknown }>();
  private readonly timers: Timers;
  private readonly runPass: typeof runTargetPass;
  private stopping = false;

  constructor(private readonly opts: SchedulerOptions) {
    this.timers = opts.timers ?? realTimers;
    this.runPass = opts.runPass ?? runTargetPass;
    this.debouncer = new Debouncer<string>({
      run: (name, burst) => this.runTarget(name, burst),
      waitFor: (name) => this.targets.get(name)?.spec.wait ?? opts.defaultWait(),
      onError: (name, err) =>
        opts.logger.error({ target: name, err: asReloaderError(err) }, 'target pass failed'),
      timers: this.timers,
    });
  }

  /**
   * Make `compiled` the current targets (start, SIGHUP): the state of targets that stay is
   * kept, dropped targets are forgotten, and the index is rebuilt. Synchronous, so no pass can
   * see half of it.
   */
  install(compiled: readonly CompiledTarget[]): void {
    this.targets = new Map(compiled.map((t) => [t.spec.name, t]));
    for (const name of this.targets.keys()) {
      if (!this.states.has(name)) this.states.set(name, newTargetState(name));
    }
    for (const name of [...this.states.keys()]) {
      if (!this.targets.has(name)) {
        this.states.delete(name);
        this.clearReloadRetry(name);
      }
    }
    this.readers.clear();
    this.indexed.clear();
    for (const [name, state] of this.states) this.reindex(name, state.keysRead);
    this.opts.metrics.declareTargets([...this.targets.keys()]);
  }

  /** Every destination of every target (crash clean-up). */
  destinations(): string[] {
    return [...this.targets.values()].flatMap((t) => t.spec.files.map((f) => f.destination));
  }

  /**
   * Queue the targets a change concerns: readers of a changed key (through the index, so the
   * cost follows the change, not the number of targets × keys), templates that enumerate every
   * key when any key changed, and failed or never-rendered targets. In declared order.
   */
  onChange(changed: ReadonlySet<string>, atMs: number, all: boolean): void {
    if (this.stopping) return;
    const dependents = new Set<string>();
    if (!all) {
      for (const key of changed) this.readers.forEach(key, (name) => dependents.add(name));
      if (changed.size > 0) this.readers.forEach(ALL_KEYS, (name) => dependents.add(name));
    }
    for (const [name] of this.targets) {
      const state = this.states.get(name);
      const affected =
        all ||
        !state?.renderedOnce ||
        (state.lastStatus === 'failed' && changed.size > 0) ||
        dependents.has(name);
      if (affected) this.debouncer.trigger(name, atMs, all);
    }
  }

  /** Every target has rendered successfully at least once. */
  get allRendered(): boolean {
    for (const name of this.targets.keys()) {
      if (!this.states.get(name)?.renderedOnce) return false;
    }
    return true;
  }

  /** Per target, in declared order: state, and the sources that keep it from being current. */
  status(): TargetStatus[] {
    return [...this.targets.keys()].flatMap((name) => {
      const state = this.states.get(name);
      if (!state) return [];
      const blockedBy = this.opts.secrets.blockingSources(state.keysRead);
      return [blockedBy.length > 0 ? { ...state, blockedBy } : state];
    });
  }

  /** Names reading `key`, sorted (tests). */
  readersOf(key: string): string[] {
    return this.readers.readersOf(key);
  }

  get isIdle(): boolean {
    return this.debouncer.isIdle;
  }

  idle(): Promise<void> {
    return this.debouncer.idle();
  }

  /** Drops pending passes and retries, waits for the passes in flight. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const name of [...this.reloadRetries.keys()]) this.clearReloadRetry(name);
    await this.debouncer.stop();
  }

  private reindex(name: string, keys: readonly string[]): void {
    for (const key of this.indexed.get(name) ?? []) this.readers.remove(key, name);
    for (const key of keys) this.readers.add(key, name);
    this.indexed.set(name, keys);
  }

  private async runTarget(name: string, burst: Burst): Promise<void> {
    const target = this.targets.get(name);
    const state = this.states.get(name);
    const secrets = this.opts.secrets;
    if (!target || !state || !secrets.settled) return;
    const metrics = this.opts.metrics;
    const result: PassResult = await this.runPass(target, secrets.merged, state, {
      logger: this.opts.logger,
      scrubber: this.opts.scrubber,
      env: this.opts.env,
      firstRender: !state.renderedOnce,
      cwd: this.opts.cwd(),
      gate: (keysRead) => this.gate(keysRead, false),
      onCommitted: ({ written, keysRead }) => {
        // A SIGHUP may have dropped the target meanwhile: its reads must not come back.
        if (this.states.get(name) === state) this.reindex(name, keysRead);
        if (written.length > 0) {
          metrics.observeEventToFile((this.timers.now() - burst.firstEventAtMs) / 1000);
        }
      },
    });
    if (result.status === 'failed' && result.error?.code === 'RLD_ERR_MISSING_KEY') {
      const blocked = this.gate(result.keysRead, true);
      if (blocked) {
        state.lastError = { code: blocked.code, message: blocked.message };
      }
    }
    metrics.render(name, result.status);
    metrics.targetUp(name, result.status !== 'failed');
    metrics.targetError?.(name, state.lastError?.code);
    if (result.verify) metrics.verify?.(name, result.verify.ok ? 'ok' : 'failed');
    if (result.status !== 'failed') metrics.targetSuccess(name, this.timers.now());
    if (result.reload) {
      metrics.reload(name, result.reload.status);
      if (result.reload.status === 'ok') {
        metrics.observeEventToReload((this.timers.now() - burst.firstEventAtMs) / 1000);
      }
    }
    this.scheduleReloadRetry(name, state);
  }

  /**
   * A render that reads a key a source that never answered could hold (or, `missing`, that
   * failed on a missing key while such a source exists) must not be written: the error says
   * which source, and Infisical's message.
   */
  private gate(keysRead: Iterable<string>, missing: boolean): ReloaderError | undefined {
    const waiting = this.opts.secrets
      .blockingSources(keysRead, missing)
      .filter((b) => b.neverAnswered);
    const first = waiting[0];
    if (first === undefined) return undefined;
    const why = first.error ? `: ${first.error.code}: ${first.error.message}` : '';
    return new ReloaderError(
      'RLD_ERR_SOURCE',
      `waiting for source ${first.label}, which has not answered yet${why}`,
      { details: { sources: waiting.map((b) => b.label) } },
    );
  }

  /**
   * A failed reload leaves the app on its old config while the files are new: retry it (the
   * next pass runs the reload even though nothing changed) with a per-target backoff, 1 s
   * doubling to 60 s. This timer only re-runs a local action; it never asks Infisical.
   */
  private scheduleReloadRetry(name: string, state: TargetState): void {
    if (!state.reloadPending || this.stopping) {
      this.clearReloadRetry(name);
      return;
    }
    let entry = this.reloadRetries.get(name);
    if (entry === undefined) {
      entry = { backoff: new Backoff({ baseMs: 1_000, maxMs: 60_000 }), timer: undefined };
      this.reloadRetries.set(name, entry);
    }
    if (entry.timer !== undefined) this.timers.clearTimeout(entry.timer);
    const delay = entry.backoff.next();
    const held = entry;
    held.timer = this.timers.setTimeout(() => {
      held.timer = undefined;
      if (!this.stopping) this.debouncer.trigger(name, this.timers.now(), true);
    }, delay);
    this.opts.logger.warn({ target: name, retryInMs: delay }, 'reload failed; it will be retried');
  }

  private clearReloadRetry(name: string): void {
    const entry = this.reloadRetries.get(name);
    if (entry?.timer !== undefined) this.timers.clearTimeout(entry.timer);
    this.reloadRetries.delete(name);
  }
}
