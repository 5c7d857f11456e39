/**
 * The injector's HTTPS server: `POST /mutate` (AdmissionReview in and out) and `GET /healthz`.
 *
 * The certificate and key are files (a Secret that cert-manager renews, mounted as a volume);
 * they are re-read whenever their folders change — the kubelet updates a Secret volume by
 * writing a new `..data` directory and swapping one symlink, so the folders are watched, not
 * the files — and the new pair serves every new connection without a restart. A pair that does
 * not load (the key of one certificate, the certificate of another, half-way through a
 * rotation) keeps the pair in use; the next change tries again.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { ReloaderError } from '../errors.js';
import type { Logger } from '../logger.js';
import { acceptRawBodies, buildApp, listen, rawBody, type ListenAddress } from '../server/app.js';
import { codeSuffix } from '../util/os-error.js';
import { realTimers, type Timers } from '../util/timers.js';
import type { InjectorConfig } from './config.js';
import { answerReview } from './review.js';

/** How long file events settle before the pair is read again. */
const SETTLE_MS = 100;

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface InjectorServerOptions {
  config: Readonly<InjectorConfig>;
  logger: Logger;
  tls: TlsFiles;
  timers?: Timers;
}

export interface InjectorServer {
  app: FastifyInstance;
  listen(at: { host: string; port: number }): Promise<ListenAddress>;
  /** Reads the pair now and serves it to new connections; false (and logged) when it does not load. */
  reloadTls(): Promise<boolean>;
  close(): Promise<void>;
}

/** The pair as read, checked by building a TLS context from it. */
async function readPair(files: TlsFiles): Promise<{ cert: Buffer; key: Buffer }> {
  let cert: Buffer;
  let key: Buffer;
  try {
    [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
  } catch (err) {
    throw new ReloaderError(
      'RLD_ERR_USAGE',
      `cannot read the TLS certificate ${files.certFile} or key ${files.keyFile}${codeSuffix(err)}`,
      { cause: err },
    );
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    // OpenSSL's reason names the problem (e.g. "key values mismatch"), never key material.
    const reason = (err as { reason?: string }).reason ?? (err as Error).message;
    throw new ReloaderError(
      'RLD_ERR_USAGE',
      `the TLS certificate ${files.certFile} and key ${files.keyFile} do not load (${reason})`,
      { cause: err },
    );
  }
  return { cert, key };
}

/**
 * Builds the server with the pair read once (a pair that cannot be read or does not load is
 * RLD_ERR_USAGE); it does not listen until `listen()`.
 */
export async function buildInjectorServer(opts: InjectorServerOptions): Promise<InjectorServer> {
  const { config, logger } = opts;
  const timers = opts.timers ?? realTimers;
  const pair = await readPair(opts.tls);
  const app = buildApp({ logger, bodyLimit: config.bodyLimit, https: pair });

  app.get('/healthz', async () => ({ status: 'ok' }));
  await app.register(async (scope) => {
    acceptRawBodies(scope, config.bodyLimit);
    scope.post('/mutate', async (request, reply) => {
      const answer = answerReview(rawBody(request), config);
      if (answer.status === 400) {
        logger.warn({ reason: answer.body.reason }, 'malformed AdmissionReview');
        return reply.code(400).send(answer.body);
      }
      const response = answer.body['response'] as Record<string, unknown>;
      const result = answer.result;
      logger.info(
        {
          uid: response['uid'],
          allowed: result.allowed,
          ...(result.allowed ? { outcome: result.reason, operations: result.patch.length } : {}),
          ...(!result.allowed ? { message: result.message } : {}),
        },
        result.allowed ? 'review answered' : 'review refused',
      );
      return reply.code(200).send(answer.body);
    });
  });

  const tlsServer = (): TlsServer => app.server as unknown as TlsServer;
  const reloadTls = async (): Promise<boolean> => {
    try {
      const next = await readPair(opts.tls);
      tlsServer().setSecureContext({ cert: next.cert, key: next.key });
      logger.info({ cert: opts.tls.certFile }, 'TLS certificate loaded');
      return true;
    } catch (err) {
      logger.warn({ err }, 'TLS pair not loaded; serving the previous one');
      return false;
    }
  };

  const watchers: FSWatcher[] = [];
  let timer: unknown;
  const changed = (): void => {
    if (timer !== undefined) timers.clearTimeout(timer);
    timer = timers.setTimeout(() => {
      timer = undefined;
      void reloadTls();
    }, SETTLE_MS);
  };
  for (const dir of new Set([dirname(opts.tls.certFile), dirname(opts.tls.keyFile)])) {
    try {
      const w = watch(dir, { persistent: false }, changed);
      w.on('error', (err) => logger.warn({ err, dir }, 'TLS folder: watching stopped'));
      watchers.push(w);
    } catch (err) {
      logger.warn({ err, dir }, 'TLS folder cannot be watched; a rotated pair needs a restart');
    }
  }

  return {
    app,
    listen: (at) => listen(app, at),
    reloadTls,
    close: async () => {
      for (const w of watchers) w.close();
      if (timer !== undefined) timers.clearTimeout(timer);
      await app.close();
    },
  };
}
