/**
 * Keyed debounce with one run at a time per key (a burst for one target gives one
 * render and at most one reload).
 *
 * For each key:
 *   (1) the first `trigger` opens a burst and schedules a run at `first + wait.min`;
 *   (2) every later trigger moves the run to `last + wait.min`, but never past `first + wait.max`;
 *   (3) when the run is due while an earlier run of the same key is still going, it starts as
 *       soon as that run ends — a trigger that arrives during a run is never lost, it causes
 *       exactly one more run;
 *   (4) runs of different keys are independent (one slow target never delays another).
 * Errors thrown by `run` are handed to `onError`; the debouncer keeps going.
 */
import type { WaitSpec } from '../config/types.js';
import { realTimers, type Timers } from './timers.js';

/** What a run is told about the burst it serves. */
export interface Burst {
  firstEventAtMs: number;
  lastEventAtMs: number;
  count: number;
}

interface KeyState {
  pending?: Burst & { timer?: unknown; due: boolean; immediate?: boolean };
  running?: Promise<void>;
}

export interface DebouncerOptions<K> {
  run: (key: K, burst: Burst) => Promise<void>;
  waitFor: (key: K) => WaitSpec;
  onError?: (key: K, err: unknown) => void;
  timers?: Timers;
}

export class Debouncer<K> {
  private readonly states = new Map<K, KeyState>();
  private readonly timers: Timers;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: DebouncerOptions<K>) {
    this.timers = options.timers ?? realTimers;
  }

  /**
   * Note an event for `key` that happened at `atMs` (default now). With `immediate`, the run is
   * due now (start-up, resync): no quiet period is waited for.
   */
  trigger(key: K, atMs: number = this.timers.now(), immediate = false): void {
    if (this.stopped) return;
    const state = this.stateOf(key);
    const p = state.pending;
    if (p) {
      // (2)
      p.lastEventAtMs = Math.max(p.lastEventAtMs, atMs);
      p.firstEventAtMs = Math.min(p.firstEventAtMs, atMs);
      p.count += 1;
      p.immediate = p.immediate || immediate;
    } else {
      // (1)
      state.pending = {
        firstEventAtMs: atMs,
        lastEventAtMs: atMs,
        count: 1,
        due: false,
        immediate,
      };
    }
    this.schedule(key, state);
  }

  /** True when nothing is pending or running. */
  get isIdle(): boolean {
    for (const s of this.states.values()) if (s.pending || s.running) return false;
    return true;
  }

  /** Resolves when nothing is pending or running (tests, graceful stop). */
  idle(): Promise<void> {
    if (this.isIdle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drop pending bursts and wait for the runs in flight to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    const running: Promise<void>[] = [];
    for (const s of this.states.values()) {
      if (s.pending?.timer !== undefined) this.timers.clearTimeout(s.pending.timer);
      s.pending = undefined;
      if (s.running) running.push(s.running);
    }
    await Promise.allSettled(running);
    this.notifyIdle();
  }

  private stateOf(key: K): KeyState {
    let s = this.states.get(key);
    if (!s) {
      s = {};
      this.states.set(key, s);
    }
    return s;
  }

  private schedule(key: K, state: KeyState): void {
    const p = state.pending;
    if (!p) return;
    if (p.timer !== undefined) this.timers.clearTimeout(p.timer);
    const wait = this.options.waitFor(key);
    const dueAt = p.immediate
      ? 0
      : Math.min(p.lastEventAtMs + wait.minMs, p.firstEventAtMs + wait.maxMs);
    const delay = Math.max(0, dueAt - this.timers.now());
    p.timer = this.timers.setTimeout(() => {
      p.timer = undefined;
      p.due = true;
      if (!state.running) this.start(key, state);
      // (3) otherwise the running pass picks it up when it ends
    }, delay);
  }

  private start(key: K, state: KeyState): void {
    const burst = state.pending;
    if (!burst) return;
    state.pending = undefined;
    // A burst that became due while a run was going may still have a timer armed by a later
    // trigger: left alone, it would start the NEXT burst before its quiet period.
    if (burst.timer !== undefined) this.timers.clearTimeout(burst.timer);
    const { firstEventAtMs, lastEventAtMs, count } = burst;
    state.running = (async () => {
      try {
        await this.options.run(key, { firstEventAtMs, lastEventAtMs, count });
      } catch (err) {
        this.options.onError?.(key, err);
      }
    })().finally(() => {
      state.running = undefined;
      if (state.pending?.due && !this.stopped) this.start(key, state);
      else this.notifyIdle();
    });
  }

  private notifyIdle(): void {
    if (!this.isIdle) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
