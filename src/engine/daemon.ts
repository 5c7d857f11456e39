/**
 * The daemon: wiring only. Push-driven, never polling.
 *
 *   channels (webhook, peer relay, event stream) ──▶ event intake ──▶ dispatch (here)
 *       ──▶ secret sync (refetch the matching sources, or apply a carried value)
 *       ──▶ changed keys ──▶ target scheduler ──▶ render → commit → check → reload
 *
 * Each part owns its state: the sync owns the snapshot and the Infisical session's listings,
 * the scheduler owns the targets, their states and the readers index, the intake owns the
 * replay cache, each channel its connection. The daemon builds them, routes events between
 * them, swaps them on SIGHUP and reports on them.
 *
 * Seams (constructor fields with defaults): the session factory, the clock and timers, the
 * peer relay's resolver, the pass runner. The constructor does no I/O; `start()` does it all
 * and fails with a coded error.
 *
 * Start-up: the listeners are bound by the caller (healthz 200, readyz 503); `start()` compiles
 * the templates (RLD_ERR_TEMPLATE: exit 2), reads the webhook secret, opens the session,
 * removes crash leftovers and asks for a full fetch; `/readyz` turns 200 once every source has
 * been tried and every target has been rendered successfully at least once. Events that arrive
 * before the first fetch are kept and applied after it.
 *
 * The only timers: the token lifecycle, the debouncers, and the backoffs of work that failed
 * (a fetch, a reload, a relay, a stream reconnect) — each only repeats what an event asked for.
 */
import type { ReloaderSpec, SourceSpec } from '../config/types.js';
import { PeerRelay, type Resolver } from '../channels/relay.js';
import { EventSubscription } from '../channels/subscription.js';
import { WebhookSecretFile } from '../channels/webhook-secret.js';
import { asReloaderError } from '../errors.js';
import { EventIntake, type EventEffect } from '../events/intake.js';
import { sourceForValueEvent, sourcesForEvent } from '../events/match.js';
import type { ChangeEvent } from '../events/parse.js';
import { WebhookSecrets } from '../events/webhook-secrets.js';
import { openSession, type InfisicalSession, type SessionFactory } from '../infisical/session.js';
import type { Logger } from '../logger.js';
import { removeCrashLeftovers } from '../output/cleanup.js';
import { Scrubber } from '../secrets/scrubber.js';
import type { SecretMap } from '../secrets/snapshot.js';
import { SecretSync, type SyncChange } from '../secrets/sync.js';
import type { Metrics } from '../server/metrics.js';
import { realTimers, type Timers } from '../util/timers.js';
import type { runTargetPass } from './runner.js';
import { TargetScheduler, type SecretsView } from './scheduler.js';
import { compileTargets, type CompiledTarget } from './targets.js';

export type { EventEffect } from '../events/intake.js';

export interface DaemonOptions {
  spec: ReloaderSpec;
  logger: Logger;
  env: Readonly<Record<string, string | undefined>>;
  metrics: Metrics;
  /** The runtime's scrubber (the logger's); default a new one. */
  scrubber?: Scrubber;
  timers?: Timers;
  /** Load and validate the spec again (SIGHUP); defaults to nothing (SIGHUP is refused). */
  reloadSpec?: () => Promise<ReloaderSpec>;
  /** Builds the Infisical sessions; default `openSession`. */
  sessionFactory?: SessionFactory;
  /** Resolves `webhook.peers.dns`; default every A and AAAA record. */
  resolvePeers?: Resolver;
  /** One pass over one target (tests). */
  runPass?: typeof runTargetPass;
  /** Told after the targets of every change of the snapshot (the library's subscriber). */
  onSecretsChange?: (change: SyncChange) => void;
}

/** The parts that are rebuilt together when the spec changes. */
interface Parts {
  spec: ReloaderSpec;
  session: InfisicalSession;
  sync: SecretSync;
  subscriptions: EventSubscription[];
}

export class Daemon {
  private parts: Parts | undefined;
  private readonly scheduler: TargetScheduler;
  private readonly intake: EventIntake;
  private readonly secrets: WebhookSecrets;
  private secretFile: WebhookSecretFile;
  private relay: PeerRelay | undefined;
  private listening: { host: string; port: number } | undefined;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly scrubber: Scrubber;
  private readonly sessionFactory: SessionFactory;
  private spec: ReloaderSpec;
  private reloading: Promise<boolean> = Promise.resolve(true);
  private stopping = false;
  private readonly startedAt: Date;

  constructor(private readonly options: DaemonOptions) {
    this.spec = options.spec;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.timers = options.timers ?? realTimers;
    this.scrubber = options.scrubber ?? new Scrubber();
    this.sessionFactory = options.sessionFactory ?? openSession;
    this.startedAt = new Date(this.timers.now());
    const current = (): SecretSync | undefined => this.parts?.sync;
    const view: SecretsView = {
      get settled() {
        return current()?.settled ?? false;
      },
      get merged() {
        const sync = current();
        if (sync === undefined) throw new Error('the secret sync is not started');
        return sync.merged;
      },
      blockingSources: (keys, missing) => current()?.blockingSources(keys, missing) ?? [],
    };
    this.scheduler = new TargetScheduler({
      secrets: view,
      logger: this.logger,
      scrubber: this.scrubber,
      metrics: this.metrics,
      env: options.env,
      defaultWait: () => this.spec.defaults.wait,
      cwd: () => this.spec.dir,
      timers: this.timers,
      runPass: options.runPass,
    });
    this.secrets = new WebhookSecrets({
      maxAgeMs: this.spec.webhook.maxAgeMs,
      scrubber: this.scrubber,
      now: () => this.timers.now(),
    });
    this.intake = new EventIntake({
      secrets: this.secrets,
      maxAgeMs: this.spec.webhook.maxAgeMs,
      allowUnsigned: this.spec.webhook.allowUnsigned,
      payloadValues: () => this.spec.webhook.payloadValues,
      dispatch: (event, meta) => this.handleEvent(event, meta.receivedAtMs),
      logger: this.logger,
      metrics: this.metrics,
      now: () => this.timers.now(),
    });
    this.secretFile = this.newSecretFile(this.spec);
  }

  /** The event intake every channel feeds (the webhook route uses it). */
  get events(): EventIntake {
    return this.intake;
  }

  /**
   * Compile templates (throws RLD_ERR_TEMPLATE: the caller exits 2), read the webhook secret,
   * open the Infisical session (throws a coded error, e.g. for an unreadable caFile), clean
   * crash leftovers, and start the first fetch. Resolves once the first fetch is scheduled;
   * `ready` turns true once every target has rendered.
   */
  async start(): Promise<void> {
    const compiled = await compileTargets(this.spec);
    await this.secretFile.reread();
    this.secretFile.start();
    const session = await this.openSession(this.spec);
    this.scheduler.install(compiled);
    const removed = await removeCrashLeftovers(this.scheduler.destinations());
    if (removed > 0) this.logger.warn({ removed }, 'removed temp files left by an earlier crash');
    if (this.stopping) {
      await session.close();
      return;
    }
    this.parts = this.buildParts(this.spec, session, undefined);
    this.startParts(this.parts);
  }

  /**
   * The webhook listener is bound at `address`: from now on verified deliveries are relayed to
   * the peers (when `webhook.peers` is set), and this replica's own address is known.
   */
  listeningAt(address: { host: string; port: number }): void {
    this.listening = address;
    this.relay?.stop();
    this.relay = this.newRelay(this.spec, address);
  }

  /** Forward a verified delivery to the peers (the webhook route, after its answer). */
  relayDelivery(body: Buffer, signature: string): void {
    const t = /^t=(\d{1,16})/.exec(signature.trim());
    this.relay?.forward(body, signature, t ? Number(t[1]) : this.timers.now());
  }

  /** Route one change notice to the secret sync; only queues work, answers at once. */
  handleEvent(event: ChangeEvent, atMs: number = this.timers.now()): EventEffect {
    const parts = this.parts;
    if (this.stopping) return { effect: 'ignored', reason: 'shutting down' };
    if (parts === undefined) return { effect: 'ignored', reason: 'starting' };
    const { spec, sync } = parts;
    if (
      event.kind === 'modified' ||
      (event.kind === 'value' && spec.webhook.payloadValues === 'refetch')
    ) {
      const indexes =
        event.kind === 'modified'
          ? sourcesForEvent(spec.sources, event)
          : this.valueEventSources(parts, event);
      if (indexes.length === 0) {
        return { effect: 'ignored', reason: 'no configured source covers this change' };
      }
      sync.refetch(indexes, atMs);
      return { effect: 'queued' };
    }
    if (event.kind === 'value') {
      const index = this.valueEventSources(parts, event)[0];
      if (index === undefined)
        return { effect: 'ignored', reason: 'no configured source matches the event' };
      sync.applyValue(index, event.key, event.action === 'deleted' ? undefined : event.value, atMs);
      return { effect: 'queued' };
    }
    return { effect: 'ignored', reason: `event kind ${event.kind}` };
  }

  /** POST /resync and SIGHUP: refetch every source, re-render every target. */
  resync(): void {
    if (this.stopping) return;
    this.parts?.sync.refetchAll(this.timers.now());
  }

  /**
   * SIGHUP: re-read the webhook secret and the spec; keep the old spec if the new one is
   * invalid or its session cannot be opened. Reloads run one at a time, never throw, and do
   * nothing once stopping. The new spec is compiled and its session opened first, then targets,
   * sync and channels are swapped in one synchronous step. When the sources did not change, the
   * snapshot (and readiness) is kept; either way everything is refetched once.
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
    if (!load || this.stopping || this.parts === undefined) return false;
    let next: ReloaderSpec;
    let compiled: CompiledTarget[];
    let session: InfisicalSession;
    try {
      next = await load();
      compiled = await compileTargets(next);
      session = await this.openSession(next);
    } catch (err) {
      this.logger.error(
        { err: asReloaderError(err, 'RLD_ERR_SPEC') },
        'SIGHUP: new spec is invalid; keeping the old one',
      );
      await this.secretFile.reread();
      return false;
    }
    await this.scheduler.idle();
    await this.parts.sync.idle();
    if (this.stopping) {
      await session.close();
      return false;
    }
    const old = this.parts;
    const sameSources = JSON.stringify(next.sources) === JSON.stringify(old.spec.sources);
    // one synchronous swap: no fetch or pass can see half of it
    this.spec = next;
    this.scheduler.install(compiled);
    for (const s of old.subscriptions) s.stop();
    this.parts = this.buildParts(next, session, sameSources ? old.sync : undefined);
    this.secretFile.stop();
    this.secretFile = this.newSecretFile(next);
    if (this.listening !== undefined) this.listeningAt(this.listening);
    await old.sync.stop();
    await old.session.close();
    await this.secretFile.reread();
    this.secretFile.start();
    this.logger.info(
      { targets: next.targets.length, sources: next.sources.length, sameSources },
      'SIGHUP: spec reloaded',
    );
    this.startParts(this.parts);
    return true;
  }

  /** Finish the in-flight commits, stop every timer and channel, close the Infisical session. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.secretFile.stop();
    this.relay?.stop();
    const parts = this.parts;
    if (parts) {
      for (const s of parts.subscriptions) s.stop();
      // Close the session first: it aborts an in-flight request and its retry waits, so a
      // hung Infisical cannot hold SIGTERM past the pod's grace period.
      await parts.session.close();
      await parts.sync.stop();
    }
    await this.scheduler.stop();
  }

  /** Resolves when no fetch or target pass is pending or running (tests). */
  async idle(): Promise<void> {
    for (;;) {
      const sync = this.parts?.sync;
      await sync?.idle();
      await this.scheduler.idle();
      if ((sync?.isIdle ?? true) && this.scheduler.isIdle) return;
    }
  }

  get healthy(): boolean {
    return !this.stopping;
  }

  /** Every source has been tried and every target has rendered successfully at least once. */
  get ready(): boolean {
    return (this.parts?.sync.settled ?? false) && this.scheduler.allRendered;
  }

  /** The merged secrets now (undefined before the first fetch has settled); no I/O. */
  get merged(): SecretMap | undefined {
    const sync = this.parts?.sync;
    return sync?.settled ? sync.merged : undefined;
  }

  /** Names reading `key` (tests). */
  readersOf(key: string): string[] {
    return this.scheduler.readersOf(key);
  }

  /** JSON for GET /status: names, hashes, times and outcomes only. */
  status(): Record<string, unknown> {
    const parts = this.parts;
    const sync = parts?.sync;
    return {
      ready: this.ready,
      startedAt: this.startedAt.toISOString(),
      spec: this.spec.file,
      token: { expiresAt: this.tokenExpiry() },
      infisical: {
        url: this.spec.infisical.url,
        lastFetchAt: sync?.lastFetchAt(),
        lastError: sync?.lastError(),
      },
      sources: sync?.status() ?? [],
      targets: this.scheduler.status(),
      channels: {
        webhook: {
          path: this.spec.webhook.path,
          verifies: this.secrets.configured || this.spec.webhook.allowUnsigned,
          ...(this.secretFile.problem !== undefined ? { problem: this.secretFile.problem } : {}),
          payloadValues: this.spec.webhook.payloadValues,
        },
        relay:
          this.spec.webhook.peers === undefined
            ? { enabled: false }
            : {
                enabled: true,
                ...(this.spec.webhook.peers.dns !== undefined
                  ? { dns: this.spec.webhook.peers.dns }
                  : { addresses: this.spec.webhook.peers.addresses?.length }),
              },
        eventSubscription: {
          enabled: this.spec.infisical.eventSubscription.enabled,
          streams: parts?.subscriptions.map((s) => s.status()) ?? [],
        },
      },
    };
  }

  private tokenExpiry(): string | undefined {
    const ms = this.parts?.session.tokens.expiresAtMs();
    return ms === undefined ? undefined : new Date(ms).toISOString();
  }

  private openSession(spec: ReloaderSpec): Promise<InfisicalSession> {
    return this.sessionFactory(spec.infisical, {
      logger: this.logger,
      scrubber: this.scrubber,
      onTokenChange: (expiresAtMs) => {
        this.metrics.tokenExpiry(expiresAtMs);
        for (const s of this.parts?.subscriptions ?? []) s.tokenChanged();
      },
    });
  }

  private newSecretFile(spec: ReloaderSpec): WebhookSecretFile {
    return new WebhookSecretFile({
      webhook: spec.webhook,
      secrets: this.secrets,
      logger: this.logger,
      timers: this.timers,
    });
  }

  private newRelay(
    spec: ReloaderSpec,
    listen: { host: string; port: number },
  ): PeerRelay | undefined {
    if (spec.webhook.peers === undefined) return undefined;
    return new PeerRelay({
      peers: spec.webhook.peers,
      path: spec.webhook.path,
      listen,
      maxAgeMs: spec.webhook.maxAgeMs,
      logger: this.logger.child({ component: 'relay' }),
      metrics: this.metrics,
      env: this.options.env,
      timers: this.timers,
      resolve: this.options.resolvePeers,
    });
  }

  /** The sync and the channels of one spec (built, not started). */
  private buildParts(
    spec: ReloaderSpec,
    session: InfisicalSession,
    previous: SecretSync | undefined,
  ): Parts {
    const sync = new SecretSync({
      sources: spec.sources,
      session,
      logger: this.logger,
      scrubber: this.scrubber,
      metrics: this.metrics,
      wait: () => this.spec.defaults.wait,
      onChange: (change: SyncChange) => {
        this.scheduler.onChange(change.changed, change.firstEventAtMs, change.all);
        this.options.onSecretsChange?.(change);
      },
      timers: this.timers,
      snapshot: previous?.snapshot,
    });
    const subscriptions: EventSubscription[] = [];
    if (spec.infisical.eventSubscription.enabled) {
      const byProject = new Map<string, number[]>();
      spec.sources.forEach((s, i) =>
        byProject.set(s.projectId, [...(byProject.get(s.projectId) ?? []), i]),
      );
      for (const [projectId, indexes] of byProject) {
        subscriptions.push(
          new EventSubscription({
            projectId,
            sources: indexes.map((i) => spec.sources[i] as SourceSpec),
            session,
            spec: spec.infisical.eventSubscription,
            ingest: (events, meta) => this.intake.ingestStream(events, meta),
            onConnected: () => sync.refetch(indexes, this.timers.now()),
            logger: this.logger.child({ component: 'event-stream' }),
            metrics: this.metrics,
            timers: this.timers,
          }),
        );
      }
    }
    return { spec, session, sync, subscriptions };
  }

  private startParts(parts: Parts): void {
    parts.session.tokens.start();
    parts.sync.refetchAll(this.timers.now());
    for (const s of parts.subscriptions) s.start();
  }

  private valueEventSources(
    parts: Parts,
    event: Extract<ChangeEvent, { kind: 'value' }>,
  ): number[] {
    const index = sourceForValueEvent(parts.spec.sources, event, (i, key) =>
      parts.sync.sourceHas(i, key),
    );
    return index === undefined ? [] : [index];
  }
}
