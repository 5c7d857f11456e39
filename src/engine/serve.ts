/**
 * Runs the daemon with its HTTP server until SIGTERM/SIGINT:
 *
 *   (1) read the webhook secret (secretFile or secret; required unless allowUnsigned);
 *   (2) compile every template — a template error ends with exit 2, before any network call;
 *   (3) listen (healthz 200, readyz 503 until every target has rendered);
 *   (4) start the daemon (first fetch with backoff, then render everything);
 *   (5) SIGHUP re-reads the spec; SIGTERM/SIGINT finish the in-flight commit, close the server,
 *       and resolve with 0.
 */
import { readFile } from 'node:fs/promises';
import { loadSpec, requireWebhookSecret } from '../config/load.js';
import type { ReloaderSpec } from '../config/types.js';
import { ReloaderError, asReloaderError } from '../errors.js';
import { scrubber, type Logger } from '../logger.js';
import type { FastifyInstance } from 'fastify';
import { buildServer, listen } from '../server/build.js';
import { Metrics } from '../server/metrics.js';
import { Daemon } from './daemon.js';
import { limitYoungGeneration } from './young-generation.js';

export interface ServeOptions {
  spec: ReloaderSpec;
  logger: Logger;
  env: Readonly<Record<string, string | undefined>>;
  onSignal?: (signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP', handler: () => void) => void;
  /** Called once the server listens (dev mode prints the URL, tests learn the port). */
  onListening?: (info: { url: string; port: number; daemon: Daemon }) => void;
  /** Resolve to stop the daemon (tests, dev mode) in addition to the signals. */
  stopSignal?: Promise<void>;
  /** How SIGHUP reloads the spec (dev mode re-applies its overrides); default: re-read the file. */
  reloadSpec?: () => Promise<ReloaderSpec>;
}

/** Read the webhook secret from `secretFile` or `secret`; undefined only when allowUnsigned. */
export async function resolveWebhookSecret(spec: ReloaderSpec): Promise<string | undefined> {
  requireWebhookSecret(spec);
  if (spec.webhook.secret !== undefined) return spec.webhook.secret;
  if (spec.webhook.secretFile !== undefined) {
    try {
      const secret = (await readFile(spec.webhook.secretFile, 'utf8')).trim();
      if (secret === '') throw new Error('empty');
      return secret;
    } catch (err) {
      throw new ReloaderError(
        'RLD_ERR_SPEC',
        `${spec.file}: webhook.secretFile: cannot read a webhook secret from ${spec.webhook.secretFile}`,
        { cause: err },
      );
    }
  }
  return undefined;
}

/**
 * The daemon and its HTTP server wired together: events, resync, health, readiness and status
 * of the server are the daemon's. Nothing is started and nothing listens yet.
 */
export function wireDaemon(options: {
  spec: ReloaderSpec;
  logger: Logger;
  env: Readonly<Record<string, string | undefined>>;
  webhookSecret: string | undefined;
  metrics?: Metrics;
  reloadSpec?: () => Promise<ReloaderSpec>;
}): { daemon: Daemon; server: FastifyInstance; metrics: Metrics } {
  const { spec, logger } = options;
  const metrics = options.metrics ?? new Metrics();
  const daemon = new Daemon({
    spec,
    logger,
    env: options.env,
    metrics,
    reloadSpec: options.reloadSpec,
  });
  const server = buildServer({
    webhook: spec.webhook,
    webhookSecret: options.webhookSecret,
    logger,
    metrics,
    onEvent: (event, meta) => daemon.handleEvent(event, meta.receivedAtMs),
    onResync: () => {
      daemon.resync();
      return { effect: 'queued' };
    },
    health: () => daemon.healthy,
    ready: () => daemon.ready,
    status: () => daemon.status(),
  });
  return { daemon, server, metrics };
}

/** Run until stopped; resolves to the exit code. */
export async function serve(options: ServeOptions): Promise<number> {
  const { spec, logger } = options;
  limitYoungGeneration();
  let secret: string | undefined;
  try {
    secret = await resolveWebhookSecret(spec); // (1)
  } catch (err) {
    logger.error({ err: asReloaderError(err, 'RLD_ERR_SPEC') }, 'cannot start');
    return 2;
  }
  if (secret !== undefined) scrubber.add(secret);
  const { daemon, server } = wireDaemon({
    spec,
    logger,
    env: options.env,
    webhookSecret: secret,
    reloadSpec: options.reloadSpec ?? (() => loadSpec(spec.file, options.env as NodeJS.ProcessEnv)),
  });

  try {
    await daemon.start(); // (2) compile + first fetch scheduled
  } catch (err) {
    const error = asReloaderError(err, 'RLD_ERR_TEMPLATE');
    logger.error({ err: error }, 'cannot start');
    await daemon.stop();
    return error.exitCode;
  }
  let address;
  try {
    address = await listen(server, spec.webhook.listen); // (3)
  } catch (err) {
    logger.error(
      { err: asReloaderError(err, 'RLD_ERR_LISTEN'), listen: spec.webhook.listen },
      'cannot listen',
    );
    await daemon.stop();
    return 1;
  }
  logger.info(
    { url: address.url, path: spec.webhook.path, targets: spec.targets.length },
    'listening for Infisical webhooks',
  );
  options.onListening?.({ url: address.url, port: address.port, daemon });

  // (5)
  let stopping: Promise<number> | undefined;
  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));
  const stop = (reason: string): void => {
    if (stopping) return;
    logger.info({ reason }, 'stopping: finishing in-flight commits');
    stopping = (async () => {
      await server.close();
      await daemon.stop();
      logger.info('stopped');
      return 0;
    })();
    void stopping.then(resolveStopped);
  };
  options.onSignal?.('SIGTERM', () => stop('SIGTERM'));
  options.onSignal?.('SIGINT', () => stop('SIGINT'));
  options.onSignal?.('SIGHUP', () => {
    logger.info('SIGHUP: re-reading the spec');
    daemon.reload().catch((err: unknown) => {
      logger.error({ err: asReloaderError(err) }, 'SIGHUP: reload failed');
    });
  });
  void options.stopSignal?.then(() => stop('requested'));
  return stopped;
}
