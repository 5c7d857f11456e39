/**
 * `SecretSubscriber`: the daemon's engine inside a Node application, with no target and no
 * file. The same parts do the work — the token lifecycle, one fetch per source at start, the
 * webhook listener, the peer relay and the event streams, the secret sync — and the changed
 * keys go to callbacks instead of templates:
 *
 *   channels ──▶ event intake ──▶ secret sync ──▶ changed keys ──key debouncer──▶ callbacks
 *
 * Rules:
 *   (1) `start()` reads the options, logs in, fetches every source once and opens the channels;
 *       it rejects with a coded error (and leaves nothing running) when a source cannot be read;
 *   (2) a burst of changes to one key gives one call per callback, after `defaults.wait`, with
 *       the latest value and the value the previous call was given (or the value at start);
 *       a key that changed and changed back gives no call; calls for one key never overlap
 *       (an async callback is awaited);
 *   (3) a callback that throws (or rejects) is logged with the key and does not stop the
 *       others; `subscribe('*', cb)` is called for every key;
 *   (4) `get` reads the in-memory snapshot, never performs I/O;
 *   (5) no error the subscriber raises and no line it logs holds a secret value or a token.
 */
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadSpec, parseSpec, requireWebhookSecret } from '../config/load.js';
import type { ReloaderSpec } from '../config/types.js';
import type { Daemon } from '../engine/daemon.js';
import { wireDaemon } from '../engine/serve.js';
import { asReloaderError, ReloaderError, type ErrorCode } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';
import { Scrubber } from '../secrets/scrubber.js';
import type { SyncChange } from '../secrets/sync.js';
import { listen } from '../server/app.js';
import { Metrics } from '../server/metrics.js';
import { Debouncer } from '../util/debouncer.js';
import type { SubscriberOptions } from './options.js';

/** Told about one key: its new value (undefined: deleted) and the one the previous call had. */
export type SecretCallback = (
  key: string,
  newValue: string | undefined,
  oldValue: string | undefined,
) => void | Promise<void>;

/** The key that subscribes to every key. */
export const ALL_KEYS = '*';

/** Name the options' spec errors point at (the blocks are read as one YAML document). */
const OPTIONS_FILE = 'SecretSubscriber options';

interface Running {
  spec: ReloaderSpec;
  daemon: Daemon;
  webhook?: FastifyInstance;
  admin?: FastifyInstance;
  addresses: { webhook?: string; admin?: string };
}

export class SecretSubscriber {
  private readonly callbacks = new Map<string, Set<SecretCallback>>();
  /** The value each key had when the callbacks were last told (or at start). */
  private readonly delivered = new Map<string, string>();
  private readonly scrubber = new Scrubber();
  private readonly logger: Logger;
  private readonly env: Readonly<Record<string, string | undefined>>;
  private running: Running | undefined;
  private starting: Promise<void> | undefined;
  private debouncer: Debouncer<string> | undefined;
  /** Resolved by the first change report (the first fetch of every source has settled). */
  private settled: (() => void) | undefined;
  private baselined = false;
  private stopped = false;

  /** No I/O here: `start()` reads the options, logs in and listens. */
  constructor(private readonly options: SubscriberOptions = {}) {
    this.env = options.env ?? process.env;
    this.logger = createLogger({
      level: options.logLevel ?? 'info',
      destination: options.logDestination,
      scrubber: this.scrubber,
    }).child({ component: 'subscriber' });
  }

  /**
   * Call `callback` when `key` changes (`'*'`: every key). Returns a function that removes it.
   * Subscribing before or after `start()` are both fine.
   */
  subscribe(key: string, callback: SecretCallback): () => void {
    if (typeof key !== 'string' || key === '') {
      throw new ReloaderError('RLD_ERR_USAGE', 'subscribe needs a key name or "*"');
    }
    if (typeof callback !== 'function') {
      throw new ReloaderError('RLD_ERR_USAGE', `subscribe("${key}") needs a callback function`);
    }
    let set = this.callbacks.get(key);
    if (set === undefined) this.callbacks.set(key, (set = new Set()));
    set.add(callback);
    return () => {
      set.delete(callback);
    };
  }

  /** The current value of `key`, from memory (undefined before `start()` or when absent). */
  get(key: string): string | undefined {
    return this.running?.daemon.merged?.get(key);
  }

  /** The names of every key held now (no values). */
  keys(): string[] {
    return [...(this.running?.daemon.merged?.keys() ?? [])].sort();
  }

  /** Where the listeners are bound (useful with port 0). */
  get listening(): { webhook?: string; admin?: string } {
    return { ...this.running?.addresses };
  }

  /** Refetch every source now (what `POST /resync` does); changed keys reach the callbacks. */
  resync(): void {
    this.running?.daemon.resync();
  }

  /**
   * Log in, fetch every source once, open the webhook listener (and the admin listener and the
   * event streams when configured). Resolves once `get` answers; rejects with a coded error
   * (RLD_ERR_SPEC, RLD_ERR_AUTH, RLD_ERR_INFISICAL_HTTP, RLD_ERR_LISTEN, ...) and stops
   * everything it had started. Calling it again returns the same promise.
   */
  start(): Promise<void> {
    if (this.stopped) {
      return Promise.reject(new ReloaderError('RLD_ERR_USAGE', 'the subscriber was stopped'));
    }
    this.starting ??= this.startNow().catch(async (err: unknown) => {
      await this.stop();
      throw this.clean(err);
    });
    return this.starting;
  }

  /** Close the listeners and streams, stop the token timers; pending calls are dropped. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.settled?.(); // a start() waiting for the first fetch goes on, sees `stopped` and rejects
    await this.debouncer?.stop();
    const running = this.running;
    if (running === undefined) return;
    await running.webhook?.close();
    await running.daemon.stop();
    await running.admin?.close();
  }

  private async startNow(): Promise<void> {
    const { spec, webhook: webhookWanted } = await this.readSpec();
    if (webhookWanted) requireWebhookSecret(spec);
    const metrics = new Metrics({ defaultMetrics: false });
    const settled = new Promise<void>((done) => (this.settled = done));
    const wired = wireDaemon({
      spec,
      logger: this.logger,
      scrubber: this.scrubber,
      env: this.env,
      metrics,
      daemon: { onSecretsChange: (change) => this.onChange(change) },
    });
    const running: Running = {
      spec,
      daemon: wired.daemon,
      ...(webhookWanted ? { webhook: wired.webhook } : {}),
      ...(this.options.admin !== undefined ? { admin: wired.admin } : {}),
      addresses: {},
    };
    this.running = running;
    this.debouncer = new Debouncer<string>({
      run: (key) => this.deliver(key),
      waitFor: () => spec.defaults.wait,
      onError: (key, err) =>
        this.logger.error({ err: asReloaderError(err), key }, 'delivering a change failed'),
    });
    await wired.daemon.start();
    await settled;
    if (this.stopped) throw new ReloaderError('RLD_ERR_USAGE', 'stopped while starting');
    this.failOnUnreadSources(wired.daemon);
    for (const [key, value] of wired.daemon.merged ?? []) this.delivered.set(key, value);
    this.baselined = true;

    if (running.webhook !== undefined) {
      const at = await listen(running.webhook, spec.webhook.listen);
      wired.daemon.listeningAt({ host: at.host, port: at.port });
      running.addresses.webhook = `${at.url}${spec.webhook.path}`;
    }
    if (running.admin !== undefined) {
      running.addresses.admin = (await listen(running.admin, spec.admin.listen)).url;
    }
    this.logger.info(
      {
        keys: this.delivered.size,
        sources: spec.sources.length,
        webhook: running.addresses.webhook,
        admin: running.addresses.admin,
        eventSubscription: spec.infisical.eventSubscription.enabled,
      },
      'subscriber ready',
    );
  }

  /** The spec from `config`, from the option blocks, or from the environment alone. */
  private async readSpec(): Promise<{ spec: ReloaderSpec; webhook: boolean }> {
    const { config, infisical, sources, webhook, admin, defaults } = this.options;
    const blocks = { infisical, sources, webhook, admin, defaults };
    const given = Object.entries(blocks).filter(([, v]) => v !== undefined);
    // `admin` alone with `config` only says "open the admin listener" (its address is the file's)
    if (config !== undefined && given.some(([k]) => k !== 'admin')) {
      throw new ReloaderError(
        'RLD_ERR_USAGE',
        `SecretSubscriber takes either config or the blocks ${given.map(([k]) => k).join(', ')}, not both`,
      );
    }
    const options = { withoutTargets: true };
    const file =
      config ?? (given.every(([k]) => k === 'admin') ? this.env['RELOADER_CONFIG'] : undefined);
    if (file !== undefined && file !== '') {
      return { spec: await loadSpec(file, this.env as NodeJS.ProcessEnv, options), webhook: true };
    }
    const data: Record<string, unknown> = Object.fromEntries(given);
    if (webhook === false) delete data['webhook'];
    const text = JSON.stringify(data, null, 2);
    return {
      spec: parseSpec(text, resolve(OPTIONS_FILE), this.env, options),
      webhook: webhook !== false,
    };
  }

  /** Rule 1: a source that did not answer the first fetch fails `start()` with its error. */
  private failOnUnreadSources(daemon: Daemon): void {
    const sources = daemon.status()['sources'] as Array<{
      projectId: string;
      environment: string;
      path: string;
      lastError?: { code: string; message: string };
    }>;
    const failed = sources.find((s) => s.lastError !== undefined);
    if (failed?.lastError === undefined) return;
    const { code, message } = failed.lastError;
    throw new ReloaderError(
      code as ErrorCode,
      `cannot read source ${failed.projectId}/${failed.environment}${failed.path}: ${message}`,
      { details: { projectId: failed.projectId, environment: failed.environment } },
    );
  }

  private onChange(change: SyncChange): void {
    if (!this.baselined) {
      this.settled?.();
      return;
    }
    for (const key of change.changed) this.debouncer?.trigger(key, change.firstEventAtMs);
  }

  /** Rule 2 and 3: one call per callback with the latest value, each isolated. */
  private async deliver(key: string): Promise<void> {
    if (this.stopped) return;
    const newValue = this.running?.daemon.merged?.get(key);
    const oldValue = this.delivered.get(key);
    if (newValue === oldValue) return;
    if (newValue === undefined) this.delivered.delete(key);
    else this.delivered.set(key, newValue);
    const callbacks = [
      ...(this.callbacks.get(key) ?? []),
      ...(key === ALL_KEYS ? [] : (this.callbacks.get(ALL_KEYS) ?? [])),
    ];
    for (const callback of callbacks) {
      try {
        await callback(key, newValue, oldValue);
      } catch (err) {
        this.logger.error({ err, key }, 'a subscriber callback failed');
      }
    }
  }

  /** Rule 5: an error as a coded ReloaderError whose message holds no known secret value. */
  private clean(err: unknown): ReloaderError {
    const error = asReloaderError(err);
    const message = this.scrubber.scrub(error.message);
    if (message === error.message && error.cause === undefined) return error;
    return new ReloaderError(error.code, message, { details: { ...error.details } });
  }
}
