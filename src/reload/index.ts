/**
 * The reload action of a target and its `check` runner.
 *
 * `runReload` never throws: a reload failure is reported (log, metric, `/status`) and the
 * daemon keeps running, so the outcome is a value — `ok`, `skipped` or `failed` with a one-line,
 * scrubbed `detail`. The one `skipped` case: a signal target whose process is not there yet
 * on the first render (an init container, or a sidecar that starts before its app) — the app
 * will read the files when it starts, so there is nothing to reload. On later renders the same
 * miss is a failure: the app the files are for has gone away.
 */
import { performance } from 'node:perf_hooks';
import type { CommandSpec, ReloadSpec } from '../config/types.js';
import { hasCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Scrubber } from '../secrets/scrubber.js';
import { runCommand, type CommandOutcome } from './command.js';
import { BODY_BYTES, httpReload } from './http.js';
import { locateProcess, normalizeSignal, sendSignal } from './signal.js';

export type { CommandOutcome } from './command.js';

export interface ReloadOutcome {
  status: 'ok' | 'skipped' | 'failed';
  /** One line for logs and `/status`, passed through the scrubber. */
  detail: string;
  durationMs: number;
}

export interface ReloadOptions {
  /** True for the first render of this target since the reloader started. */
  firstRender: boolean;
  logger: Logger;
  /** The runtime's scrubber: output and details pass through it. */
  scrubber: Scrubber;
  /** Working directory of a command reload: the spec's folder, so relative paths match templates'. */
  cwd?: string;
}

/** How much of a failed command's stderr goes into `detail`. */
const DETAIL_STDERR_CHARS = 300;

/**
 * Up to `max` characters of whole lines of `text` (the last ones with `fromEnd`), joined with
 * ` | `. Lines are never cut: a secret cut in half is not a known value any more and would get
 * past the scrubber. A line longer than `max` is left out (`…`).
 */
export function wholeLines(text: string, max: number, fromEnd: boolean): string {
  const lines = text
    .trim()
    .split(/\s*\n\s*/)
    .filter((l) => l !== '');
  if (fromEnd) lines.reverse();
  const kept: string[] = [];
  let size = 0;
  for (const line of lines) {
    if (size + line.length > max) {
      kept.push('…');
      break;
    }
    kept.push(line);
    size += line.length + 3;
  }
  if (fromEnd) kept.reverse();
  return kept.join(' | ');
}

/** A short account of a command that did not succeed: exit code, signal or timeout, stderr tail. */
export function describeCommandFailure(argv0: string, outcome: CommandOutcome): string {
  let what: string;
  if (outcome.timedOut) what = `${argv0} timed out after ${outcome.durationMs} ms`;
  else if (outcome.exitCode !== null) what = `${argv0} exited ${outcome.exitCode}`;
  else if (outcome.signal !== null) what = `${argv0} was killed by ${outcome.signal}`;
  else what = outcome.stderrTail.trim() || `${argv0} could not be started`;
  const stderr = outcome.stderrTail.trim();
  if (stderr === '' || stderr === what) return what;
  return `${what}: ${wholeLines(stderr, DETAIL_STDERR_CHARS, true)}`;
}

async function signalReload(
  spec: Extract<ReloadSpec, { kind: 'signal' }>,
  firstRender: boolean,
): Promise<Pick<ReloadOutcome, 'status' | 'detail'>> {
  const miss = (reason: string): Pick<ReloadOutcome, 'status' | 'detail'> =>
    firstRender
      ? {
          status: 'skipped',
          detail: `${reason}; first render: the app reads the files when it starts`,
        }
      : { status: 'failed', detail: reason };
  const found = await locateProcess(spec);
  if (found.pid === undefined) return miss(found.reason);
  try {
    sendSignal(found.pid, spec.signal);
  } catch (err) {
    if (hasCode(err, 'RLD_ERR_RELOAD') && err.details.osCode === 'ESRCH') {
      return miss(`pid ${found.pid} exited before the signal was sent`);
    }
    throw err;
  }
  return { status: 'ok', detail: `sent ${normalizeSignal(spec.signal)} to pid ${found.pid}` };
}

/**
 * Run the reload action `spec` once and report how it went; never throws for a reload failure.
 * signal → find the process and signal it (a miss is `skipped` on the first render, else
 * `failed`); command → `runCommand` within `timeoutMs`; http → one request, 2xx is success.
 * Logs one line per reload (info, or warn when failed).
 */
export async function runReload(spec: ReloadSpec, opts: ReloadOptions): Promise<ReloadOutcome> {
  const started = performance.now();
  let result: Pick<ReloadOutcome, 'status' | 'detail'>;
  try {
    switch (spec.kind) {
      case 'signal':
        result = await signalReload(spec, opts.firstRender);
        break;
      case 'command': {
        const raw = await runCommand(spec.command, {
          timeoutMs: spec.timeoutMs,
          cwd: opts.cwd,
        });
        // Scrub whole values before any line is cut, joined or shortened below.
        const outcome = {
          ...raw,
          stdoutTail: opts.scrubber.scrub(raw.stdoutTail),
          stderrTail: opts.scrubber.scrub(raw.stderrTail),
        };
        const argv0 = spec.command[0] ?? '';
        const said = wholeLines(outcome.stdoutTail, 300, true);
        result = outcome.ok
          ? { status: 'ok', detail: `${argv0} exited 0${said === '' ? '' : `: ${said}`}` }
          : { status: 'failed', detail: describeCommandFailure(argv0, outcome) };
        break;
      }
      case 'http': {
        const outcome = await httpReload(spec);
        let detail = outcome.detail;
        // the body is the first 512 bytes: its last line may be cut, so it is left out
        const lines = opts.scrubber.scrub(outcome.body).split('\n');
        if (outcome.body.length >= BODY_BYTES) lines.pop();
        const body = wholeLines(lines.join('\n'), 200, false);
        if (!outcome.ok && body !== '') detail += `: ${body}`;
        result = { status: outcome.ok ? 'ok' : 'failed', detail };
        break;
      }
      default:
        result = { status: 'failed', detail: `unknown reload kind` };
    }
  } catch (err) {
    result = { status: 'failed', detail: err instanceof Error ? err.message : String(err) };
  }
  const outcome: ReloadOutcome = {
    status: result.status,
    detail: opts.scrubber.scrub(result.detail),
    durationMs: Math.round(performance.now() - started),
  };
  const line = { reload: spec.kind, ...outcome };
  if (outcome.status === 'failed') opts.logger.warn(line, 'reload failed');
  else opts.logger.info(line, outcome.status === 'ok' ? 'reloaded' : 'reload skipped');
  return outcome;
}

/**
 * Run a target's `check` command within its timeout. The outcome's tails are NOT scrubbed
 * here; `commitTarget` scrubs them before they reach an error, a log line or `/status`.
 */
export function runCheck(spec: CommandSpec, cwd?: string): Promise<CommandOutcome> {
  return runCommand(spec.command, { timeoutMs: spec.timeoutMs, cwd });
}
