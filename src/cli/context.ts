/**
 * What every command shares: the I/O of one CLI run, the parsed arguments, and the runtime
 * (logger + scrubber) a command builds from them. A leaf: it imports no command, so the CLI,
 * the commands and the dev tools import it without a cycle.
 */
import { loadSpec, parseSpec, resolveConfigPath } from '../config/load.js';
import type { ReloaderSpec } from '../config/types.js';
import { asReloaderError, type ReloaderError } from '../errors.js';
import { createLogger, prettyDestination, type Logger } from '../logger.js';
import { Scrubber } from '../secrets/scrubber.js';

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Register a handler for SIGTERM/SIGINT/SIGHUP (the daemon); main.ts wires it to `process`. */
  onSignal?: (signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP', handler: () => void) => void;
  /**
   * Tune V8 for a long-running daemon (main.ts sets a V8 flag); called first thing by the
   * commands that run one, before the spec and the server modules are loaded.
   */
  tuneForDaemon?: () => void;
}

export const COMMANDS = ['run', 'validate', 'render', 'dev', 'injector'] as const;
export type Command = (typeof COMMANDS)[number];

export interface ParsedArgs {
  command: Command;
  config?: string;
  once: boolean;
  logLevel: string;
  target?: string;
  secrets?: string;
  port?: number;
  /** injector: listen address and TLS pair. */
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  help: boolean;
  version: boolean;
}

/** The logger and scrubber of one command run: every value the run learns is scrubbed from its lines. */
export interface Runtime {
  logger: Logger;
  scrubber: Scrubber;
}

/** A fresh runtime at the requested log level. */
export function runtimeFor(args: ParsedArgs, io: CliIo): Runtime {
  const scrubber = new Scrubber();
  const tty = (io.stderr as { isTTY?: boolean }).isTTY === true;
  const destination = wantsPretty(args, io, tty) ? prettyDestination(tty) : undefined;
  return { scrubber, logger: createLogger({ level: args.logLevel, scrubber, destination }) };
}

/**
 * `dev` on a terminal logs human-readable lines; everything else JSON lines.
 * RELOADER_LOG_FORMAT=json or =pretty decides instead.
 */
function wantsPretty(args: ParsedArgs, io: CliIo, tty: boolean): boolean {
  const format = io.env['RELOADER_LOG_FORMAT'];
  if (format === 'json' || format === 'pretty') return format === 'pretty';
  return args.command === 'dev' && tty;
}

/**
 * Print a failure as one line `error: <code>: <message>` on stderr and return its exit code.
 * Messages are built from names only; they pass through `scrubber` too when one is given.
 */
export function fail(
  io: CliIo,
  err: unknown,
  fallback: ReloaderError['code'] = 'RLD_ERR_INTERNAL',
  scrubber?: Scrubber,
): 1 | 2 {
  const e = asReloaderError(err, fallback);
  const message = scrubber ? scrubber.scrub(e.message) : e.message;
  io.stderr.write(`error: ${e.code}: ${message}\n`);
  return e.exitCode;
}

/**
 * Load reloader.yaml from --config / $RELOADER_CONFIG / ./reloader.yaml, or, when neither is
 * given, from the text in $RELOADER_CONFIG_YAML (the injector passes a pod's generated spec so).
 */
export async function loadSpecFor(args: ParsedArgs, io: CliIo): Promise<ReloaderSpec> {
  const inline = io.env['RELOADER_CONFIG_YAML'];
  if (!args.config && !io.env['RELOADER_CONFIG'] && inline) {
    return parseSpec(inline, '$RELOADER_CONFIG_YAML', io.env);
  }
  return loadSpec(resolveConfigPath(args.config, io.env), io.env);
}
