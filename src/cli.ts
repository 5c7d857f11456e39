/**
 * The command line: `run [--once]`, `validate`, `render`, `dev`, `injector`, `--help`,
 * `--version`. `run(argv, io)` returns the exit code and never calls `process.exit`, so tests
 * drive it without spawning; `main.ts` is the only file that touches the real process.
 *
 * Heavy modules (fastify, undici, handlebars) are imported lazily, after argument parsing, so
 * `--help` and `validate` start fast (measured on a 2-core machine: ≈55 ms lazily vs ≈234 ms eagerly).
 */
import { parseArgs } from 'node:util';
import { COMMANDS, type CliIo, type Command, type ParsedArgs } from './cli/context.js';
import { ReloaderError, asReloaderError } from './errors.js';
import { packageVersion } from './util/version.js';

export type { CliIo, ParsedArgs } from './cli/context.js';

export const USAGE = `infisical-reloader — render Infisical secrets into config files, push-driven

Usage:
  infisical-reloader [run] [--config FILE] [--once] [--log-level LEVEL]
  infisical-reloader validate [--config FILE]
  infisical-reloader render   [--config FILE] [--target NAME] [--secrets FILE]
  infisical-reloader dev      [--config FILE] [--secrets FILE] [--port N]
  infisical-reloader injector --tls-cert FILE --tls-key FILE [--listen HOST:PORT] [--config FILE] [--log-level LEVEL]
  infisical-reloader --help | --version

Commands:
  run        the daemon (sidecar); with --once: render every target once and exit (init container)
  validate   parse and validate the spec, compile every template; no network
  render     print the rendered files of one or all targets from a local secrets file; no writes
  dev        a local Infisical-compatible server seeded from --secrets, plus the daemon;
             editing the secrets file rotates secrets and fires signed webhooks
  injector   the mutating admission webhook (HTTPS, POST /mutate): wires the reloader into pods
             from their infisical.com/* annotations; --config is injector.yaml

Options:
  --config FILE      reloader.yaml (default: $RELOADER_CONFIG, else the text of
                     $RELOADER_CONFIG_YAML, else ./reloader.yaml); injector: injector.yaml
  --once             render, commit and reload every target once, then exit
  --log-level LEVEL  trace | debug | info | warn | error | fatal | silent (default: info)
  --target NAME      render: only this target
  --secrets FILE     render/dev: YAML secrets file (flat KEY: value, or the full seed form)
  --port N           dev: port of the local Infisical server (default: a free port)
  --listen HOST:PORT injector: address to serve on (default: 0.0.0.0:8443)
  --tls-cert FILE    injector: certificate (PEM, chain after the leaf); re-read when it changes
  --tls-key FILE     injector: its private key (PEM); re-read when it changes

Exit codes: 0 success, 1 runtime failure, 2 usage, spec or template error.
`;

/** The usage line of each command: the one line of help a usage error prints. */
const USAGE_LINES: Record<Command, string> = {
  run: 'infisical-reloader [run] [--config FILE] [--once] [--log-level LEVEL]',
  validate: 'infisical-reloader validate [--config FILE]',
  render: 'infisical-reloader render [--config FILE] [--target NAME] [--secrets FILE]',
  dev: 'infisical-reloader dev [--config FILE] [--secrets FILE] [--port N] [--log-level LEVEL]',
  injector:
    'infisical-reloader injector --tls-cert FILE --tls-key FILE [--listen HOST:PORT] [--config FILE] [--log-level LEVEL]',
};

/** The options each command reads (besides --help / --version); any other is refused. */
const OPTIONS_OF: Record<Command, readonly string[]> = {
  run: ['config', 'once', 'log-level'],
  validate: ['config'],
  render: ['config', 'target', 'secrets'],
  dev: ['config', 'secrets', 'port', 'log-level'],
  injector: ['config', 'listen', 'tls-cert', 'tls-key', 'log-level'],
};

/** A usage error: RLD_ERR_USAGE, with the usage line of `command` when it is known. */
function usageError(message: string, command?: Command, cause?: unknown): ReloaderError {
  return new ReloaderError('RLD_ERR_USAGE', message, {
    cause,
    details: command === undefined ? {} : { usage: USAGE_LINES[command] },
  });
}

/** Parse argv (without node and the script). Throws RLD_ERR_USAGE on anything unknown. */
export function parseCli(argv: string[]): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        once: { type: 'boolean' },
        'log-level': { type: 'string' },
        target: { type: 'string' },
        secrets: { type: 'string' },
        port: { type: 'string' },
        listen: { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    const named = argv.find((a): a is Command => (COMMANDS as readonly string[]).includes(a));
    throw usageError((err as Error).message, named ?? 'run', err);
  }
  const { values, positionals } = parsed;
  const command = (positionals[0] ?? 'run') as Command;
  if (!COMMANDS.includes(command)) {
    throw usageError(`unknown command "${command}" (commands: ${COMMANDS.join(', ')})`);
  }
  if (positionals.length > 1) {
    throw usageError(`unexpected argument "${positionals[1]}"`, command);
  }
  if (!values.help && !values.version) {
    const refused = Object.keys(values).filter(
      (k) => !OPTIONS_OF[command].includes(k) && values[k as keyof typeof values] !== undefined,
    );
    if (refused.length > 0) {
      const flags = refused.map((k) => `--${k}`).join(', ');
      throw usageError(
        `${flags} ${refused.length === 1 ? 'does' : 'do'} not apply to ${command}`,
        command,
      );
    }
  }
  const logLevel = values['log-level'] ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) {
    throw usageError(`unknown log level "${logLevel}"`, command);
  }
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw usageError(`--port must be 0..65535, got "${values.port}"`, command);
    }
  }
  return {
    command,
    config: values.config,
    once: values.once ?? false,
    logLevel,
    target: values.target,
    secrets: values.secrets,
    port,
    help: values.help ?? false,
    version: values.version ?? false,
    ...(values.listen !== undefined ? { listen: values.listen } : {}),
    ...(values['tls-cert'] !== undefined ? { tlsCert: values['tls-cert'] } : {}),
    ...(values['tls-key'] !== undefined ? { tlsKey: values['tls-key'] } : {}),
  };
}

/** Run the CLI; resolves to the process exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  let args: ParsedArgs;
  try {
    args = parseCli(argv);
  } catch (err) {
    const e = asReloaderError(err, 'RLD_ERR_USAGE');
    const usage = (e.details as { usage?: string } | undefined)?.usage;
    io.stderr.write(
      `error: ${e.code}: ${e.message}\n` +
        `usage: ${usage ?? 'infisical-reloader [run|validate|render|dev|injector] [options]'} (--help for all)\n`,
    );
    return 2;
  }
  if (args.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  if (args.version) {
    io.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const commands = await import('./cli/commands.js');
  switch (args.command) {
    case 'validate':
      return commands.validateCommand(args, io);
    case 'render':
      return commands.renderCommand(args, io);
    case 'dev':
      return commands.devCommand(args, io);
    case 'injector':
      return commands.injectorCommand(args, io);
    case 'run':
      return args.once ? commands.onceCommand(args, io) : commands.daemonCommand(args, io);
  }
}
