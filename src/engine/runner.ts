/**
 * One pass over one target: render → commit (atomic write, check, rollback) → reload.
 *
 * Contract:
 *   (1) every file is rendered in memory; a render error writes nothing;
 *   (2) the files whose bytes or mode changed are committed atomically under a lock;
 *   (3) `check` runs after the new files are in place; on failure the previous files are back
 *       and no reload runs;
 *   (4) the reload runs once, only when something was written — a file other than those with
 *       `reloadOnChange: false` (or when the previous reload failed: it is retried even if the
 *       files did not change); on the first render a signal
 *       to a process that is not running yet is `skipped`, not a failure;
 *   (4b) with `verify`, after a reload that ran (`ok`), the app is asked whether it took the
 *       change; if not, the previous files are put back (for `atomic: set`, one swap back), the
 *       reload runs again so the app is on the last good set, and the pass fails with
 *       RLD_ERR_VERIFY. Until the verify passed, what a rollback needs is kept (a set's old data
 *       directory); then it is dropped (`settle`);
 *   (5) the outcome is recorded in the target's `TargetState` (for /status, /metrics, exit codes);
 *       the moment the files are in place — before the reload runs — `onCommitted` is told, so
 *       that readiness, the index of which keys the target reads and the event-to-file latency
 *       all change together, while the reload may still take seconds.
 * A pass never throws: failures are returned, so one target never blocks the others.
 */
import * as path from 'node:path';
import type { Logger } from '../logger.js';
import type { Scrubber } from '../secrets/scrubber.js';
import { ReloaderError, asReloaderError } from '../errors.js';
import type { VerifySpec } from '../config/types.js';
import { commitTarget, contentHash, type RenderedFile } from '../output/commit.js';
import { targetLogger } from '../output/target-logger.js';
import { runCheck, runReload, type ReloadOutcome } from '../reload/index.js';
import { firstCertificate, runVerify, type VerifyOutcome } from '../reload/verify.js';
import type { SecretMap } from '../secrets/snapshot.js';
import { renderTarget, type CompiledTarget } from './targets.js';

export type PassStatus = 'unchanged' | 'committed' | 'failed';

export interface PassResult {
  target: string;
  status: PassStatus;
  /** Destinations written by this pass (empty when unchanged or failed before writing). */
  written: string[];
  reload?: ReloadOutcome;
  verify?: VerifyOutcome;
  error?: ReloaderError;
  /** Secret keys the target's templates read (empty when the render failed). */
  keysRead: Set<string>;
  durationMs: number;
}

/** What /status shows per target; never a value, only hashes and outcomes. */
export interface TargetState {
  name: string;
  lastRenderAt?: string;
  lastSuccessAt?: string;
  lastStatus?: PassStatus;
  lastError?: { code: string; message: string };
  files: Record<string, string>;
  lastCheck?: { ok: boolean; at: string; detail?: string };
  lastReload?: { status: ReloadOutcome['status']; at: string; detail: string };
  lastVerify?: { ok: boolean; at: string; detail: string };
  /** Keys read by the last successful render, used to pick dependents of a change. */
  keysRead: string[];
  /** The files have been committed at least once (readiness; the first-render reload rule). */
  renderedOnce: boolean;
  /** The last reload failed: the next pass runs it again even if no file changed. */
  reloadPending: boolean;
}

export function newTargetState(name: string): TargetState {
  return { name, files: {}, keysRead: [], renderedOnce: false, reloadPending: false };
}

export interface PassOptions {
  logger: Logger;
  /** The runtime's scrubber (check and reload output). */
  scrubber: Scrubber;
  /**
   * Called once the files are in place (after the check), before the reload: with the
   * destinations written (possibly none) and the keys the render read. Must not throw.
   */
  onCommitted?: (info: { written: readonly string[]; keysRead: readonly string[] }) => void;
  /**
   * Asked after the render, before anything is written, with the keys the render read: an
   * error keeps the files as they are and fails the pass with it (a source those keys may come
   * from has not answered yet).
   */
  gate?: (keysRead: ReadonlySet<string>) => ReloaderError | undefined;
  env: Readonly<Record<string, string | undefined>>;
  /** True for the first pass after start (signal reloads to absent processes are skipped). */
  firstRender: boolean;
  /** Working directory of check and reload commands (the spec's folder). */
  cwd?: string;
  now?: () => Date;
}

/** Run one pass for `target` over `secrets` and update `state`. Never throws. */
export async function runTargetPass(
  target: CompiledTarget,
  secrets: SecretMap,
  state: TargetState,
  options: PassOptions,
): Promise<PassResult> {
  const started = performance.now();
  const now = options.now ?? (() => new Date());
  const log = targetLogger(options.logger, target.spec.name);
  const done = (partial: Omit<PassResult, 'target' | 'durationMs'>): PassResult => {
    const result = {
      target: target.spec.name,
      durationMs: performance.now() - started,
      ...partial,
    };
    state.lastStatus = result.status;
    if (result.error) {
      state.lastError = { code: result.error.code, message: result.error.message };
    } else {
      state.lastError = undefined;
      state.lastSuccessAt = now().toISOString();
    }
    return result;
  };

  // (1) render in memory
  let rendered;
  let renderedAt = started;
  try {
    rendered = renderTarget(target, secrets, options.env);
    renderedAt = performance.now();
  } catch (err) {
    const error = asReloaderError(err, 'RLD_ERR_RENDER');
    log.error({ err: error }, 'render failed; the files on disk are unchanged');
    return done({ status: 'failed', written: [], error, keysRead: new Set() });
  }
  const blocked = options.gate?.(rendered.keysRead);
  if (blocked) {
    log.warn({ err: blocked }, 'render not written: a source it may read has not answered');
    return done({ status: 'failed', written: [], error: blocked, keysRead: rendered.keysRead });
  }
  state.lastRenderAt = now().toISOString();

  const wantsReload = new Map(
    target.spec.files.map((f) => [path.resolve(f.destination), f.reloadOnChange]),
  );

  // (2)+(3) commit with check and rollback
  let written: string[];
  let commit: Awaited<ReturnType<typeof commitTarget>>;
  const previousHashes = { ...state.files };
  try {
    const result = await commitTarget(target.spec, rendered.files, {
      logger: options.logger,
      scrubber: options.scrubber,
      runCheck: (spec) => runCheck(spec, options.cwd),
    });
    written = result.written;
    commit = result;
    if (result.check) state.lastCheck = { ok: result.check.ok, at: now().toISOString() };
  } catch (err) {
    const error = asReloaderError(err, 'RLD_ERR_WRITE');
    if (error.code === 'RLD_ERR_CHECK') {
      state.lastCheck = { ok: false, at: now().toISOString(), detail: error.message };
    }
    log.error({ err: error }, 'commit failed; the previous files are in place');
    return done({ status: 'failed', written: [], error, keysRead: rendered.keysRead });
  }
  for (const file of rendered.files)
    state.files[file.spec.destination] = contentHash(file.contents);
  state.keysRead = [...rendered.keysRead].sort();
  // The files are in place: the app can start on them, whatever the reload does next.
  state.renderedOnce = true;
  options.onCommitted?.({ written, keysRead: state.keysRead });

  if (written.length === 0 && !(state.reloadPending && target.spec.reload)) {
    log.debug('output unchanged: no write, no reload');
    return done({ status: 'unchanged', written, keysRead: rendered.keysRead });
  }
  const reloadWanted =
    state.reloadPending || written.some((d) => wantsReload.get(path.resolve(d)) !== false);
  if (written.length > 0) {
    const committedAt = performance.now();
    log.info(
      {
        files: written,
        hashes: written.map((d) => state.files[d]),
        renderMs: roundMs(renderedAt - started),
        commitMs: roundMs(committedAt - renderedAt),
      },
      'files committed',
    );
  } else {
    log.info('files unchanged; retrying the reload that failed last time');
  }

  // (4) reload once
  if (!target.spec.reload || !reloadWanted) {
    if (target.spec.reload) log.info('only files with reloadOnChange: false changed; no reload');
    await commit.settle();
    return done({ status: 'committed', written, keysRead: rendered.keysRead });
  }
  const reloadSpec = target.spec.reload;
  const reloadOnce = async (): Promise<ReloadOutcome> => {
    const outcome = await runReload(reloadSpec, {
      firstRender: options.firstRender,
      logger: log,
      scrubber: options.scrubber,
      cwd: options.cwd,
    });
    state.lastReload = { status: outcome.status, at: now().toISOString(), detail: outcome.detail };
    state.reloadPending = outcome.status === 'failed';
    return outcome;
  };
  const reload = await reloadOnce();
  // (4b) verify, and put the last good set back if the app did not take this one
  const verifySpec = target.spec.verify;
  if (verifySpec !== undefined && reload.status === 'ok' && written.length > 0) {
    const verify = await runVerify(verifySpec, {
      scrubber: options.scrubber,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...expectedCertificate(rendered.files, verifySpec),
    });
    state.lastVerify = { ok: verify.ok, at: now().toISOString(), detail: verify.detail };
    if (verify.ok) {
      log.info({ attempts: verify.attempts, detail: verify.detail }, 'verified');
      await commit.settle();
      return done({ status: 'committed', written, reload, verify, keysRead: rendered.keysRead });
    }
    const restoreFailed = await commit.rollback().catch((err: unknown) => {
      log.error({ err }, 'could not put the previous files back');
      return written;
    });
    state.files = previousHashes;
    const again = await reloadOnce();
    const error = new ReloaderError(
      'RLD_ERR_VERIFY',
      `target "${target.spec.name}": verify failed after ${verify.attempts} attempt(s): ${verify.detail}; ` +
        (restoreFailed.length === 0
          ? `the previous files were put back and reloaded (${again.status})`
          : `${restoreFailed.length} previous files could NOT be put back: ${restoreFailed.join(', ')}`),
      { details: { target: target.spec.name, attempts: verify.attempts, restoreFailed } },
    );
    log.error({ err: error }, 'verify failed; rolled back to the last good files');
    return done({
      status: 'failed',
      written,
      reload: again,
      verify,
      error,
      keysRead: rendered.keysRead,
    });
  }
  await commit.settle();
  if (reload.status === 'failed') {
    const error = new ReloaderError(
      'RLD_ERR_RELOAD',
      `reload of target "${target.spec.name}" failed: ${reload.detail}`,
      { details: { target: target.spec.name } },
    );
    return done({ status: 'failed', written, reload, error, keysRead: rendered.keysRead });
  }
  return done({ status: 'committed', written, reload, keysRead: rendered.keysRead });
}

/**
 * The certificate a `tls` verify expects: from the file `verify.tls.certificate` names, else the
 * first rendered file holding one (a pkcs12 file's leaf, or the first PEM certificate of a text
 * file).
 */
function expectedCertificate(
  files: readonly RenderedFile[],
  verify: VerifySpec,
): { expectedCertificate?: Buffer } {
  if (verify.kind !== 'tls') return {};
  const wanted = verify.certificate;
  for (const f of files) {
    if (wanted !== undefined && path.resolve(f.spec.destination) !== path.resolve(wanted)) continue;
    const der =
      f.certificate ?? (typeof f.contents === 'string' ? firstCertificate(f.contents) : undefined);
    if (der !== undefined) return { expectedCertificate: der };
  }
  return {};
}

/** Milliseconds to 0.01 ms, for the timings in log lines. */
function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}
