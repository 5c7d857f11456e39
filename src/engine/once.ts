/**
 * `--once` (SPEC §2), the init-container mode: render and commit every target, run their
 * reloads, exit.
 *
 *   (1) compile every template — a template error exits 2 before any network call;
 *   (2) remove temp files a crash may have left next to the destinations;
 *   (3) log in and fetch every source once (bounded retries inside the client);
 *   (4) run one pass per target, in declared order, each independent of the others;
 *   (5) exit 0 when every target succeeded (a signal to a process not yet running counts as
 *       skipped), else 1.
 */
import type { ReloaderSpec } from '../config/types.js';
import { asReloaderError } from '../errors.js';
import type { Logger } from '../logger.js';
import { scrubber } from '../logger.js';
import { removeStaleTempFiles } from '../output/atomic-write.js';
import { SecretSnapshot } from '../secrets/snapshot.js';
import { fetchSources, openSession } from './fetch.js';
import { newTargetState, runTargetPass, type PassResult } from './runner.js';
import { compileTargets } from './targets.js';

export interface OnceOptions {
  spec: ReloaderSpec;
  logger: Logger;
  env: Readonly<Record<string, string | undefined>>;
}

export interface OnceResult {
  exitCode: 0 | 1 | 2;
  passes: PassResult[];
}

/** Run `--once`. Never throws: every failure is logged and mapped to an exit code. */
export async function runOnce({ spec, logger, env }: OnceOptions): Promise<OnceResult> {
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
  const removed = await removeStaleTempFiles(
    spec.targets.flatMap((t) => t.files.map((f) => f.destination)),
  );
  if (removed > 0) logger.warn({ removed }, 'removed temp files left by an earlier crash');

  // (3)
  const session = openSession(spec, logger);
  const snapshot = new SecretSnapshot(spec.sources.length, logger);
  try {
    const listings = await fetchSources(session, spec.sources);
    snapshot.replace(listings);
    scrubber.addAll(snapshot.merged.values());
    logger.info(
      { sources: spec.sources.length, keys: snapshot.merged.size },
      'fetched secrets from Infisical',
    );
  } catch (err) {
    const error = asReloaderError(err, 'RLD_ERR_INFISICAL_NETWORK');
    logger.error({ err: error }, 'could not fetch secrets; no file was written');
    await session.close();
    return { exitCode: 1, passes: [] };
  }
  await session.close();

  // (4)
  const passes: PassResult[] = [];
  for (const target of targets) {
    const state = newTargetState(target.spec.name);
    passes.push(
      await runTargetPass(target, snapshot.merged, state, {
        logger,
        env,
        firstRender: true,
        cwd: spec.dir,
      }),
    );
  }
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
