/**
 * `--once`, the init-container mode: render and commit every target, run their
 * reloads, exit.
 *
 *   (1) compile every template — a template error exits 2 before any network call;
 *   (2) remove temp files a crash may have left next to the destinations;
 *   (3) log in and fetch every source once (bounded retries inside the client);
 *   (4) run one pass per target, each independent of the others: the targets with neither
 *       `check` nor `reload` only write their own files, so they run concurrently (at most
 *       PARALLEL_PASSES at a time; their fsyncs overlap instead of adding up: 50 targets took
 *       ≈ 0.4 s one after another). Then the targets with a check or a reload run one at a time
 *       in declared order, so that a check or reload sees every plain file already in place;
 *   (5) exit 0 when every target succeeded (a signal to a process not yet running counts as
 *       skipped), else 1.
 */
import type { ReloaderSpec } from '../config/types.js';
import { asReloaderError } from '../errors.js';
import type { Logger } from '../logger.js';
import { removeCrashLeftovers } from '../output/cleanup.js';
import type { Scrubber } from '../secrets/scrubber.js';
import { SecretSnapshot, type SecretMap } from '../secrets/snapshot.js';
import type { PassResult } from './runner.js';
import { compileTargets, type CompiledTarget } from './targets.js';

/** Plain-file passes run at the same time in `--once`. */
const PARALLEL_PASSES = 16;

export interface OnceOptions {
  spec: ReloaderSpec;
  logger: Logger;
  /** The runtime's scrubber (the logger's). */
  scrubber: Scrubber;
  env: Readonly<Record<string, string | undefined>>;
}

export interface OnceResult {
  exitCode: 0 | 1 | 2;
  passes: PassResult[];
}

/** Run `--once`. Never throws: every failure is logged and mapped to an exit code. */
export async function runOnce({ spec, logger, scrubber, env }: OnceOptions): Promise<OnceResult> {
  // (1)
  let targets;
  try {
    targets = await compileTargets(spec);
  } catch (err) {
    const error = asReloaderError(err, 'RLD_ERR_TEMPLATE');
    logger.error({ err: error }, 'template error');
    return { exitCode: error.exitCode, passes: [] };
  }
  // (2)
  const removed = await removeCrashLeftovers(
    spec.targets.flatMap((t) => t.files.map((f) => f.destination)),
  );
  if (removed > 0) logger.warn({ removed }, 'removed temp files left by an earlier crash');

  // (3) The network and file-writing modules (undici, proper-lockfile…) are loaded here, not at
  // import: `validate` imports this module too and never needs them (≈ 0.1 s of a cold start).
  const [{ openSession }, { newTargetState, runTargetPass }] = await Promise.all([
    import('../infisical/session.js'),
    import('./runner.js'),
  ]);
  const snapshot = new SecretSnapshot(spec.sources.length, logger);
  let session;
  try {
    session = await openSession(spec.infisical, { logger, scrubber });
  } catch (err) {
    logger.error({ err: asReloaderError(err) }, 'could not fetch secrets; no file was written');
    return { exitCode: 1, passes: [] };
  }
  try {
    const listed = await Promise.all(spec.sources.map((s) => session.listSource(s)));
    snapshot.replace(new Map<number, SecretMap>(listed.map((m, i) => [i, m])));
    // the client has registered every value with the scrubber
    logger.info(
      { sources: spec.sources.length, keys: snapshot.merged.size },
      'fetched secrets from Infisical',
    );
  } catch (err) {
    const error = asReloaderError(err, 'RLD_ERR_INFISICAL_NETWORK');
    logger.error(
      { err: error, infisical: spec.infisical.url },
      'could not fetch secrets; no file was written',
    );
    await session.close();
    return { exitCode: 1, passes: [] };
  }
  await session.close();

  // (4)
  const pass = (target: CompiledTarget): Promise<PassResult> =>
    runTargetPass(target, snapshot.merged, newTargetState(target.spec.name), {
      logger,
      scrubber,
      env,
      firstRender: true,
      cwd: spec.dir,
    });
  const results = new Map<CompiledTarget, PassResult>();
  const plain = targets.filter((t) => t.spec.check === undefined && t.spec.reload === undefined);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < plain.length) {
      const target = plain[next++] as CompiledTarget;
      results.set(target, await pass(target));
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_PASSES, plain.length) }, worker));
  for (const target of targets) {
    if (!results.has(target)) results.set(target, await pass(target));
  }
  const passes = targets.map((t) => results.get(t) as PassResult);
  // (5)
  const failed = passes.filter((p) => p.status === 'failed');
  logger.info(
    {
      targets: passes.length,
      committed: passes.filter((p) => p.status === 'committed').length,
      unchanged: passes.filter((p) => p.status === 'unchanged').length,
      failed: failed.map((p) => p.target),
    },
    failed.length === 0 ? 'once: every target is in place' : 'once: some targets failed',
  );
  return { exitCode: failed.length === 0 ? 0 : 1, passes };
}
