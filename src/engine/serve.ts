/**
 * Runs the daemon with its two listeners until SIGTERM/SIGINT:
 *
 *   (1) build the daemon and both apps (nothing listens, nothing is read yet);
 *   (2) start the daemon: compile every template (a template error ends with exit 2, before any
 *       network call), read the webhook secret, open the Infisical session, ask for the first
 *       fetch;
 *   (3) bind the admin listener (healthz 200, readyz 503 until every target has rendered) and
 *       the webhook listener, which serves only `POST <webhook.path>`; one `ready to serve`
 *       line names both addresses and the targets;
 *   (4) SIGHUP re-reads the spec and the webhook secret; SIGTERM/SIGINT close both listeners,
 *       finish the in-flight commit, and resolve with 0.
 */
import type { FastifyInstance } from 'fastify';
import { loadSpec, requireWebhookSecret } from '../config/load.js';
import type { ReloaderSpec } from '../config/types.js';
import { asReloaderError } from '../errors.js';
import type { Logger } from '../logger.js';
import { Scrubber } from '../secrets/scrubber.js';
import { buildAdminServer } from '../server/admin-routes.js';
import { listen, type ListenAddress } from '../server/app.js';
import { Metrics } from '../server/metrics.js';
import { buildWebhookServer } from '../server/webhook-routes.js';
import { Daemon, type DaemonOptions } from './daemon.js';

export interface ServeOptions {
  spec: ReloaderSpec;
  logger: Logger;
  /** The runtime's scrubber (the logger's); default a new one. */
  scrubber?: Scrubber;
  env: Readonly<Record<string, string | undefined>>;
  onSignal?: (signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP', handler: () => void) => void;
  /** Called once both listeners are bound (dev mode prints the URLs, tests learn the ports). */
  onListening?: (info: {
    url: string;
    port: number;
    admin: ListenAddress;
    webhook: ListenAddress;
    daemon: Daemon;
  }) => void;
  /** Resolve to stop the daemon (tests, dev mode) in addition to the signals. */
  stopSignal?: Promise<void>;
  /** How SIGHUP reloads the spec (dev mode re-applies its overrides); default: re-read the file. */
  reloadSpec?: () => Promise<ReloaderSpec>;
  /** Seams of the daemon (tests, benchmarks). */
  daemon?: Pick<DaemonOptions, 'sessionFactory' | 'resolvePeers' | 'timers' | 'onSecretsChange'>;
}

/** The daemon and its two apps, wired together; nothing is started and nothing listens yet. */
export interface Wired {
  daemon: Daemon;
  webhook: FastifyInstance;
  admin: FastifyInstance;
  metrics: Metrics;
}

/**
 * The daemon and its listeners wired together: the webhook app feeds the daemon's event
 * intake and relays through it; health, readiness, status and resync of the admin app are the
 * daemon's. Throws RLD_ERR_SPEC when the webhook path is not usable.
 */
export function wireDaemon(options: {
  spec: ReloaderSpec;
  logger: Logger;
  scrubber: Scrubber;
  env: Readonly<Record<string, string | undefined>>;
  metrics?: Metrics;
  reloadSpec?: () => Promise<ReloaderSpec>;
  daemon?: ServeOptions['daemon'];
}): Wired {
  const { spec, logger, scrubber } = options;
  const path = spec.webhook.path;
  const metrics = options.metrics ?? new Metrics();
  const daemon = new Daemon({
    spec,
    logger,
    scrubber,
    env: options.env,
    metrics,
    reloadSpec: options.reloadSpec,
    ...options.daemon,
  });
  const webhook = buildWebhookServer({
    path,
    intake: daemon.events,
    logger,
    relay: (body, signature) => daemon.relayDelivery(body, signature),
  });
  const admin = buildAdminServer({
    logger,
    metrics,
    scrubber,
    intake: daemon.events,
    health: () => daemon.healthy,
    ready: () => daemon.ready,
    status: () => daemon.status(),
    onResync: () => daemon.resync(),
  });
  return { daemon, webhook, admin, metrics };
}

/** Run until stopped; resolves to the exit code. */
export async function serve(options: ServeOptions): Promise<number> {
  const { spec, logger } = options;
  const scrubber = options.scrubber ?? new Scrubber();
  let wired: Wired;
  try {
    requireWebhookSecret(spec);
    wired = wireDaemon({
      spec,
      logger,
      scrubber,
      env: options.env,
      reloadSpec:
        options.reloadSpec ?? (() => loadSpec(spec.file, options.env as NodeJS.ProcessEnv)),
      daemon: options.daemon,
    });
  } catch (err) {
    logger.error({ err: asReloaderError(err, 'RLD_ERR_SPEC') }, 'cannot start');
    return 2;
  }
  const { daemon, webhook, admin } = wired; // (1)

  try {
    await daemon.start(); // (2)
  } catch (err) {
    const error = asReloaderError(err, 'RLD_ERR_TEMPLATE');
    logger.error({ err: error }, 'cannot start');
    await daemon.stop();
    return error.exitCode;
  }
  // (3)
  let adminAt: ListenAddress;
  let webhookAt: ListenAddress;
  try {
    adminAt = await listen(admin, spec.admin.listen);
    webhookAt = await listen(webhook, spec.webhook.listen);
  } catch (err) {
    logger.error({ err: asReloaderError(err, 'RLD_ERR_LISTEN') }, 'cannot listen');
    await admin.close();
    await webhook.close();
    await daemon.stop();
    return 1;
  }
  daemon.listeningAt({ host: webhookAt.host, port: webhookAt.port });
  logger.info(
    {
      url: webhookAt.url,
      path: spec.webhook.path,
      admin: adminAt.url,
      targets: spec.targets.map((t) => t.name),
      relay: spec.webhook.peers !== undefined,
      eventSubscription: spec.infisical.eventSubscription.enabled,
    },
    'ready to serve: listening for Infisical webhooks',
  );
  options.onListening?.({
    url: webhookAt.url,
    port: webhookAt.port,
    admin: adminAt,
    webhook: webhookAt,
    daemon,
  });

  // (4)
  let stopping: Promise<number> | undefined;
  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));
  const stop = (reason: string): void => {
    if (stopping) return;
    logger.info({ reason }, 'stopping: finishing in-flight commits');
    stopping = (async () => {
      await webhook.close();
      await daemon.stop();
      await admin.close();
      logger.info('stopped');
      return 0;
    })();
    void stopping.then(resolveStopped);
  };
  options.onSignal?.('SIGTERM', () => stop('SIGTERM'));
  options.onSignal?.('SIGINT', () => stop('SIGINT'));
  options.onSignal?.('SIGHUP', () => {
    logger.info('SIGHUP: re-reading the spec and the webhook secret');
    daemon.reload().catch((err: unknown) => {
      logger.error({ err: asReloaderError(err) }, 'SIGHUP: reload failed');
    });
  });
  void options.stopSignal?.then(() => stop('requested'));
  return stopped;
}
