/**
 * The reloader's Prometheus metrics (`GET /metrics`), on a registry of its own.
 *
 * Why a private `Registry` and not prom-client's global one: tests build many servers in one
 * process, and a library user may embed the reloader next to their own metrics; a global registry
 * would collide on the second `new Counter`. Everything the daemon counts goes through the
 * named methods below, so call sites never spell a metric or label name.
 *
 * Secrecy: labels carry target names and fixed outcome words only — never a key's
 * value, never a token. The methods take no free-form text other than target names.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RelayOutcome } from '../channels/relay.js';
import type { StreamState } from '../channels/subscription.js';
import type { EventOutcome, EventType } from '../events/intake.js';
import { packageVersion } from '../util/version.js';

/** What became of one webhook delivery; `invalid` is a delivery rejected before it was parsed. */
export type WebhookEventType = EventType;
export type WebhookOutcome = EventOutcome;

const WEBHOOK_TYPES: readonly WebhookEventType[] = [
  'modified',
  'value',
  'test',
  'ignored',
  'invalid',
];
const WEBHOOK_OUTCOMES: readonly WebhookOutcome[] = [
  'accepted',
  'replay',
  'ignored',
  'rejected_400',
  'rejected_401',
  'rejected_413',
];
const RELAY_OUTCOMES: readonly RelayOutcome[] = [
  'delivered',
  'retried',
  'failed',
  'rejected',
  'resolve_failed',
];
const STREAM_STATES: readonly StreamState[] = [
  'connecting',
  'connected',
  'reconnecting',
  'unavailable',
  'stopped',
];
export type RenderOutcome = 'committed' | 'unchanged' | 'failed';
export type ReloadOutcome = 'ok' | 'skipped' | 'failed';
export type FetchOutcome = 'ok' | 'failed';

/** Latency buckets in seconds, 1 ms … 60 s: a reload normally lands in 10 ms–2 s (wait.min/max). */
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
] as const;

/** Prefix of the reloader's own metrics (the process and Node.js metrics keep their standard names). */
export const METRIC_PREFIX = 'reloader_';

/**
 * All the reloader's metrics over one non-global registry. Cheap to construct; build one per
 * daemon (or per test). `collectDefaultMetrics` adds the standard `process_*` and `nodejs_*`
 * metrics, under the names stock dashboards expect, to this registry only.
 *
 * Conventions: counters end in `_total`, gauges never do; every failure series exists at 0 from
 * the start (an alert on `rate(…{outcome="failed"}[5m]) > 0` sees a series before the first
 * failure); `reloader_build_info` is 1 with the version and the Node.js version as labels.
 */
export class Metrics {
  readonly registry: Registry;
  private readonly webhookEvents: Counter<'type' | 'outcome'>;
  private readonly renders: Counter<'target' | 'outcome'>;
  private readonly reloads: Counter<'target' | 'outcome'>;
  private readonly verifications: Counter<'target' | 'outcome'>;
  private readonly targetErrors: Gauge<'target' | 'code'>;
  private readonly targetErrorCodes = new Map<string, string>();
  private readonly fetches: Counter<'outcome'>;
  private readonly eventToReload: Histogram;
  private readonly eventToFile: Histogram;
  private readonly tokenExpirySeconds: Gauge;
  private readonly targetLastSuccess: Gauge<'target'>;
  private readonly targetUpGauge: Gauge<'target'>;
  private readonly readyGauge: Gauge;
  private readonly relays: Counter<'outcome'>;
  private readonly streamStates: Gauge<'project' | 'state'>;
  private readonly streamFrames: Counter<'project' | 'kind'>;
  private readonly streamConnects: Counter<'project' | 'outcome'>;
  private readonly sourceUpGauge: Gauge<'source'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    this.webhookEvents = new Counter({
      name: `${p}webhook_events_total`,
      help: 'Webhook deliveries by parsed type and outcome.',
      labelNames: ['type', 'outcome'],
      registers,
    });
    this.renders = new Counter({
      name: `${p}renders_total`,
      help: 'Target render passes by outcome (committed = files changed on disk).',
      labelNames: ['target', 'outcome'],
      registers,
    });
    this.reloads = new Counter({
      name: `${p}reloads_total`,
      help: 'Reload actions by target and outcome (skipped = nothing changed or check failed).',
      labelNames: ['target', 'outcome'],
      registers,
    });
    this.fetches = new Counter({
      name: `${p}infisical_fetches_total`,
      help: 'Requests for secrets to Infisical by outcome.',
      labelNames: ['outcome'],
      registers,
    });
    this.eventToReload = new Histogram({
      name: `${p}event_to_reload_seconds`,
      help: 'Time from receiving a change event to the end of the reload it caused.',
      buckets: [...LATENCY_BUCKETS],
      registers,
    });
    this.eventToFile = new Histogram({
      name: `${p}event_to_file_seconds`,
      help: 'Time from receiving a change event to the new files being on disk (the reload not included).',
      buckets: [...LATENCY_BUCKETS],
      registers,
    });
    this.tokenExpirySeconds = new Gauge({
      name: `${p}access_token_expiry_timestamp_seconds`,
      help: 'Unix time at which the current Infisical access token expires (NaN when unknown).',
      registers,
    });
    this.tokenExpirySeconds.set(Number.NaN);
    this.targetLastSuccess = new Gauge({
      name: `${p}target_last_success_timestamp_seconds`,
      help: 'Unix time of the last successful pass (render, and check/reload when needed) per target.',
      labelNames: ['target'],
      registers,
    });
    this.verifications = new Counter({
      name: `${p}verifications_total`,
      help: 'verify runs after a reload, by target and outcome (failed = rolled back, RLD_ERR_VERIFY).',
      labelNames: ['target', 'outcome'],
      registers,
    });
    this.targetErrors = new Gauge({
      name: `${p}target_error`,
      help: '1 with the RLD_ERR_* code of the last pass over the target while that pass failed.',
      labelNames: ['target', 'code'],
      registers,
    });
    this.targetUpGauge = new Gauge({
      name: `${p}target_up`,
      help: '1 when the last pass over the target succeeded, 0 when it failed.',
      labelNames: ['target'],
      registers,
    });
    this.readyGauge = new Gauge({
      name: `${p}ready`,
      help: '1 once every target has rendered successfully at least once.',
      registers,
    });
    this.readyGauge.set(0);
    this.relays = new Counter({
      name: `${p}peer_relay_total`,
      help: 'Deliveries forwarded to a peer replica, by outcome (retried counts each retry).',
      labelNames: ['outcome'],
      registers,
    });
    this.streamStates = new Gauge({
      name: `${p}event_stream_state`,
      help: '1 for the current state of each Event Subscriptions stream (unavailable = plan, permission or stream limit).',
      labelNames: ['project', 'state'],
      registers,
    });
    this.streamFrames = new Counter({
      name: `${p}event_stream_frames_total`,
      help: 'Event Subscriptions frames received, by kind (change, ping, error).',
      labelNames: ['project', 'kind'],
      registers,
    });
    this.streamConnects = new Counter({
      name: `${p}event_stream_connects_total`,
      help: 'Event Subscriptions connection attempts by outcome.',
      labelNames: ['project', 'outcome'],
      registers,
    });
    this.sourceUpGauge = new Gauge({
      name: `${p}source_up`,
      help: '1 when the last listing of the source succeeded, 0 when it failed.',
      labelNames: ['source'],
      registers,
    });
    const buildInfo = new Gauge({
      name: `${p}build_info`,
      help: 'Always 1; the labels carry the version and the Node.js version.',
      labelNames: ['version', 'node'],
      registers,
    });
    buildInfo.set({ version: packageVersion(), node: process.versions.node }, 1);
    for (const type of WEBHOOK_TYPES) {
      for (const outcome of WEBHOOK_OUTCOMES) this.webhookEvents.inc({ type, outcome }, 0);
    }
    for (const outcome of ['ok', 'failed'] as const) this.fetches.inc({ outcome }, 0);
    for (const outcome of RELAY_OUTCOMES) this.relays.inc({ outcome }, 0);
    if (opts.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
    }
  }

  /** The `Content-Type` to serve `text()` with (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Pre-creates the per-target series at 0 so that dashboards and `rate()` see a target before
   * its first event (`target_up` starts at 0 until the first pass).
   */
  declareTargets(targets: readonly string[]): void {
    for (const target of targets) {
      for (const outcome of ['committed', 'unchanged', 'failed'] as const) {
        this.renders.inc({ target, outcome }, 0);
      }
      for (const outcome of ['ok', 'skipped', 'failed'] as const) {
        this.reloads.inc({ target, outcome }, 0);
      }
      this.targetUpGauge.set({ target }, 0);
    }
  }

  /** One webhook delivery answered. */
  webhookEvent(type: WebhookEventType, outcome: WebhookOutcome): void {
    this.webhookEvents.inc({ type, outcome });
  }

  /** One render pass over a target. */
  render(target: string, outcome: RenderOutcome): void {
    this.renders.inc({ target, outcome });
  }

  /** One reload decision for a target. */
  reload(target: string, outcome: ReloadOutcome): void {
    this.reloads.inc({ target, outcome });
  }

  /** One verify run after a reload. */
  verify(target: string, outcome: 'ok' | 'failed'): void {
    this.verifications.inc({ target, outcome });
  }

  /** The error code of the target's last pass, or undefined when it succeeded. */
  targetError(target: string, code: string | undefined): void {
    const previous = this.targetErrorCodes.get(target);
    if (previous !== undefined && previous !== code) {
      this.targetErrors.remove({ target, code: previous });
    }
    if (code === undefined) this.targetErrorCodes.delete(target);
    else {
      this.targetErrorCodes.set(target, code);
      this.targetErrors.set({ target, code }, 1);
    }
  }

  /** One fetch of a source from Infisical. */
  fetch(outcome: FetchOutcome): void {
    this.fetches.inc({ outcome });
  }

  /** Seconds from event receipt to committed files. Negative or non-finite values are dropped. */
  observeEventToFile(seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.eventToFile.observe(seconds);
  }

  /** Seconds from event receipt to the end of the reload. Negative or non-finite values are dropped. */
  observeEventToReload(seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.eventToReload.observe(seconds);
  }

  /**
   * Expiry of the current access token, as epoch milliseconds; `undefined` (static token, logged
   * out) exports NaN so that an alert on `expiry - time() < x` does not fire on "unknown".
   */
  tokenExpiry(ms: number | undefined): void {
    this.tokenExpirySeconds.set(ms === undefined ? Number.NaN : ms / 1000);
  }

  /** A pass over `target` succeeded at `atMs` (epoch ms). Also sets `target_up` to 1. */
  targetSuccess(target: string, atMs: number): void {
    this.targetLastSuccess.set({ target }, atMs / 1000);
    this.targetUpGauge.set({ target }, 1);
  }

  /** Whether the last pass over `target` succeeded. */
  targetUp(target: string, up: boolean): void {
    this.targetUpGauge.set({ target }, up ? 1 : 0);
  }

  /** One forward to a peer. */
  relay(outcome: RelayOutcome): void {
    this.relays.inc({ outcome });
  }

  /** The state of a project's event stream (one state at 1, the others at 0). */
  streamState(project: string, state: StreamState): void {
    for (const s of STREAM_STATES)
      this.streamStates.set({ project, state: s }, s === state ? 1 : 0);
    for (const kind of ['change', 'ping', 'error'] as const)
      this.streamFrames.inc({ project, kind }, 0);
    for (const outcome of ['ok', 'failed', 'unavailable'] as const) {
      this.streamConnects.inc({ project, outcome }, 0);
    }
  }

  /** One frame of a project's event stream. */
  streamFrame(project: string, kind: 'change' | 'ping' | 'error'): void {
    this.streamFrames.inc({ project, kind });
  }

  /** One connection attempt of a project's event stream. */
  streamConnect(project: string, outcome: 'ok' | 'failed' | 'unavailable'): void {
    this.streamConnects.inc({ project, outcome });
  }

  /** Whether the last listing of a source (`projectId/environment/path`) succeeded. */
  sourceUp(source: string, up: boolean): void {
    this.sourceUpGauge.set({ source }, up ? 1 : 0);
  }

  /** Mirrors `/readyz`. */
  ready(isReady: boolean): void {
    this.readyGauge.set(isReady ? 1 : 0);
  }

  /** The Prometheus text exposition of every metric in this registry. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
