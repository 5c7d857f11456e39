/**
 * The subcommands behind `cli.ts`, each `(args, io) → exit code`. Loaded lazily by `cli.run`.
 * Every command prints a failure as one line `error: <code>: <message>` on stderr (no value,
 * no token: messages are built from names only and pass through the run's scrubber).
 */
import type { ReloaderSpec } from '../config/types.js';
import { compileTargets } from '../engine/targets.js';
import { runOnce } from '../engine/once.js';
import { fail, loadSpecFor, runtimeFor, type CliIo, type ParsedArgs } from './context.js';

/** `validate`: parse + validate the spec and compile every template; no network. */
export async function validateCommand(args: ParsedArgs, io: CliIo): Promise<number> {
  try {
    const spec = await loadSpecFor(args, io);
    const targets = await compileTargets(spec);
    const files = targets.reduce((n, t) => n + t.files.length, 0);
    io.stdout.write(
      `${spec.file}: valid (${targets.length} target${targets.length === 1 ? '' : 's'}, ${files} file${files === 1 ? '' : 's'})\n`,
    );
    return 0;
  } catch (err) {
    return fail(io, err, 'RLD_ERR_SPEC');
  }
}

/** `run --once`: render, commit and reload every target once. */
export async function onceCommand(args: ParsedArgs, io: CliIo): Promise<number> {
  let spec: ReloaderSpec;
  try {
    spec = await loadSpecFor(args, io);
  } catch (err) {
    return fail(io, err, 'RLD_ERR_SPEC');
  }
  const { logger, scrubber } = runtimeFor(args, io);
  const result = await runOnce({ spec, logger, scrubber, env: io.env });
  return result.exitCode;
}

/** `run` (the daemon). */
export async function daemonCommand(args: ParsedArgs, io: CliIo): Promise<number> {
  io.tuneForDaemon?.(); // first: the earlier, the smaller V8's young generation stays
  let spec: ReloaderSpec;
  try {
    spec = await loadSpecFor(args, io);
  } catch (err) {
    return fail(io, err, 'RLD_ERR_SPEC');
  }
  const { serve } = await import('../engine/serve.js');
  const { logger, scrubber } = runtimeFor(args, io);
  const reloadSpec = (): Promise<ReloaderSpec> => loadSpecFor(args, io);
  return serve({ spec, logger, scrubber, env: io.env, onSignal: io.onSignal, reloadSpec });
}

/** `render`: print rendered files from a local secrets file; no writes, no reloads. */
export async function renderCommand(args: ParsedArgs, io: CliIo): Promise<number> {
  const { runRenderCommand } = await import('../dev/render-command.js');
  return runRenderCommand(args, io);
}

/** `dev`: local Infisical-compatible server + the daemon, seeded from a secrets file. */
export async function devCommand(args: ParsedArgs, io: CliIo): Promise<number> {
  io.tuneForDaemon?.();
  const { runDevCommand } = await import('../dev/dev-command.js');
  return runDevCommand(args, io);
}

/** `injector`: the mutating admission webhook (HTTPS). */
export async function injectorCommand(args: ParsedArgs, io: CliIo): Promise<number> {
  const { runInjectorCommand } = await import('../injector/command.js');
  return runInjectorCommand(args, io);
}
