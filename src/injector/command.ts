/**
 * `infisical-reloader injector --tls-cert F --tls-key F [--listen HOST:PORT] [--config FILE]`:
 * serve the mutating admission webhook until SIGTERM/SIGINT. Exit 2 on a usage or config
 * problem (no certificate, a pair that does not load, a bad injector.yaml), 1 when the address
 * cannot be bound, 0 after a graceful stop.
 */
import { fail, runtimeFor, type CliIo, type ParsedArgs } from '../cli/context.js';
import { parseListen } from '../config/validate.js';
import { ReloaderError, asReloaderError } from '../errors.js';
import { DEFAULT_INJECTOR_CONFIG, loadInjectorConfig, type InjectorConfig } from './config.js';
import { buildInjectorServer, type InjectorServer } from './server.js';

export const DEFAULT_INJECTOR_LISTEN = '0.0.0.0:8443';

export async function runInjectorCommand(args: ParsedArgs, io: CliIo): Promise<number> {
  const { logger } = runtimeFor(args, io);
  let server: InjectorServer;
  let at: { host: string; port: number };
  try {
    if (!args.tlsCert || !args.tlsKey) {
      throw new ReloaderError('RLD_ERR_USAGE', 'injector needs --tls-cert FILE and --tls-key FILE');
    }
    try {
      at = parseListen(args.listen ?? DEFAULT_INJECTOR_LISTEN);
    } catch (err) {
      throw new ReloaderError('RLD_ERR_USAGE', `--listen: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const config: Readonly<InjectorConfig> =
      args.config !== undefined ? await loadInjectorConfig(args.config) : DEFAULT_INJECTOR_CONFIG;
    server = await buildInjectorServer({
      config,
      logger,
      tls: { certFile: args.tlsCert, keyFile: args.tlsKey },
    });
  } catch (err) {
    return fail(io, err, 'RLD_ERR_USAGE');
  }
  try {
    const address = await server.listen(at);
    logger.info({ url: address.url }, 'injector: serving POST /mutate');
  } catch (err) {
    logger.error({ err: asReloaderError(err, 'RLD_ERR_LISTEN') }, 'cannot listen');
    await server.close();
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (reason: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ reason }, 'injector: stopping');
      void server.close().then(() => resolve(0));
    };
    io.onSignal?.('SIGTERM', () => stop('SIGTERM'));
    io.onSignal?.('SIGINT', () => stop('SIGINT'));
    io.onSignal?.('SIGHUP', () => void server.reloadTls());
  });
}
