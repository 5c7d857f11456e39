/**
 * Commit the rendered files of one target as a set: write what changed,
 * run `check`, and put the previous files back when a write or the check fails.
 *
 * `commitTarget`, marked `// (n)` in the body:
 *
 *  (1) make sure every parent directory exists (`createDirs`), then lock every destination in
 *      sorted order (the lock directory lives beside the destination);
 *  (2) read what is on disk now: contents, mode, owner — or absence;
 *  (3) skip the files whose bytes and mode (and owner, when the spec sets uid/gid) are
 *      already what we would write: unchanged output means no write;
 *  (4) if nothing changed, return `{ written: [] }`: no check, no reload (the caller decides
 *      on reload from `written.length`);
 *  (5) write every changed file atomically, as a set: (a) a complete, fsynced temp file for
 *      each, all at once (their fsyncs overlap); (b) rename them over their destinations in
 *      declared order, back to back with no other step in between; (c) fsync each directory
 *      once;
 *  (6) if a temp file cannot be made, remove the others: nothing was replaced. If a rename or
 *      a directory fsync fails, restore the files already renamed — the previous bytes, mode
 *      and owner with the same atomic procedure, or unlink a file that did not exist. Either
 *      way, throw RLD_ERR_WRITE;
 *  (7) run `check` if set; if it fails or times out, restore every written file the same way
 *      and throw RLD_ERR_CHECK with the exit code and the scrubbed tail of its stderr;
 *  (8) release the locks, whatever happened.
 *
 * The lock is held through the check, so another reloader process cannot change the set
 * while it is being checked. Each file is replaced atomically, but the set is not: between
 * the first and the last rename a reader may see a mix of old and new files. That is why the
 * reload runs only after the whole set (and its check) is in place — and why (5b) renames
 * the set back to back: the mixed window is the time of a few rename calls (microseconds
 * when the file system is quiet), not of a write and an fsync per file. A restore that fails too
 * is logged and listed in the error's `details.restoreFailed`.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { CommandSpec, FileSpec, TargetSpec } from '../config/types.js';
import { ReloaderError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Scrubber } from '../secrets/scrubber.js';
import { runCommand, type CommandOutcome } from '../reload/command.js';
import {
  discardTemp,
  ensureParentDir,
  fsyncDir,
  fsyncDirStep,
  installTemp,
  osCode,
  prepareTemp,
  readCurrent,
  writeFileAtomic,
  type CurrentFile,
  type PreparedFile,
} from './atomic-write.js';
import { DEFAULT_WAIT_MS, withLocks, type LockOptions } from './lock.js';
import { commitSet } from './set-swap.js';
import { targetLogger } from './target-logger.js';

export interface RenderedFile {
  spec: FileSpec;
  /** Text (written as UTF-8) or bytes (`encoding: base64`, `pkcs12`). */
  contents: string | Buffer;
  /** DER of the leaf certificate of a pkcs12 file (what a `tls` verify expects). */
  certificate?: Buffer;
}

/** The bytes a rendered file is written as. */
export function renderedBytes(file: RenderedFile): Buffer {
  return typeof file.contents === 'string' ? Buffer.from(file.contents, 'utf8') : file.contents;
}

export interface CommitResult {
  /** Destinations written, in declared order. Empty: nothing changed, nothing to reload. */
  written: string[];
  /** Destinations left alone because they already held the rendered bytes and mode. */
  unchanged: string[];
  /** The check's outcome, tails scrubbed; absent when there is no check or nothing changed. */
  check?: CommandOutcome;
  /**
   * Put the previous files back (a `verify` after the reload failed), under the locks again;
   * returns the destinations that could not be restored. For an `atomic: set` target, one swap
   * back. Nothing to do when nothing was written.
   */
  rollback(): Promise<string[]>;
  /** Keep what was committed: drops what a rollback would need (a set's old data directory). */
  settle(): Promise<void>;
}

const NOTHING_TO_UNDO = {
  rollback: async (): Promise<string[]> => [],
  settle: async (): Promise<void> => undefined,
};

export interface CommitDeps {
  /** The daemon's logger; lines carry `target` through `targetLogger`. */
  logger: Logger;
  /** The runtime's scrubber: check output passes through it before any log line or error. */
  scrubber: Scrubber;
  /** Runs `target.check`; default: `runCommand(check.command, { timeoutMs })`. */
  runCheck?: (spec: CommandSpec) => Promise<CommandOutcome>;
  /** Lock tuning; `waitMs` defaults to 30 s plus the check's timeout. */
  lock?: Omit<LockOptions, 'lockfilePath'>;
}

/** The first 12 hex digits of the sha256 of `contents`: for `/status` and logs, never the bytes. */
export function contentHash(contents: string | Buffer): string {
  return createHash('sha256').update(contents).digest('hex').slice(0, 12);
}

interface Plan {
  spec: FileSpec;
  destination: string;
  data: Buffer;
  previous: CurrentFile | undefined;
}

function isUnchanged(p: Plan): boolean {
  const cur = p.previous;
  if (cur === undefined) return false;
  if (cur.mode !== (p.spec.mode & 0o7777) || !cur.contents.equals(p.data)) return false;
  if (p.spec.uid !== undefined && cur.uid !== p.spec.uid) return false;
  if (p.spec.gid !== undefined && cur.gid !== p.spec.gid) return false;
  return true;
}

/**
 * Put back what `plans` replaced, last written first. Ownership is restored only when we run
 * as root (anyone else could not have given the file away, nor can give it back). Returns the
 * destinations that could not be restored; never throws.
 */
async function restore(plans: Plan[], log: Logger): Promise<string[]> {
  const failed: string[] = [];
  const asRoot = process.geteuid?.() === 0;
  for (const p of [...plans].reverse()) {
    try {
      if (p.previous === undefined) {
        await fsp.unlink(p.destination).catch((err: unknown) => {
          if (osCode(err) !== 'ENOENT') throw err;
        });
        await fsyncDir(path.dirname(p.destination)).catch(() => undefined);
      } else {
        await writeFileAtomic(p.destination, p.previous.contents, {
          mode: p.previous.mode,
          ...(asRoot ? { uid: p.previous.uid, gid: p.previous.gid } : {}),
          createDirs: false,
        });
      }
    } catch (err) {
      failed.push(p.destination);
      log.error({ destination: p.destination, err }, 'could not restore the previous file');
    }
  }
  return failed;
}

/**
 * Step (5a): a durable temp file for every changed destination, all at once, so their fsyncs
 * overlap instead of adding up. If one fails, every temp file already made is removed and
 * nothing has been replaced: the failure is returned, never thrown.
 */
async function prepareAll(
  plans: Plan[],
): Promise<{ files: PreparedFile[]; failed?: { plan: Plan; err: unknown } }> {
  const settled = await Promise.allSettled(
    plans.map((p) =>
      prepareTemp(p.destination, p.data, {
        mode: p.spec.mode,
        ...(p.spec.uid !== undefined ? { uid: p.spec.uid } : {}),
        ...(p.spec.gid !== undefined ? { gid: p.spec.gid } : {}),
        createDirs: p.spec.createDirs,
        parentReady: true,
      }),
    ),
  );
  const files = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const bad = settled.findIndex((r) => r.status === 'rejected');
  if (bad < 0) return { files };
  for (const f of files) await discardTemp(f);
  return {
    files: [],
    failed: { plan: plans[bad] as Plan, err: (settled[bad] as PromiseRejectedResult).reason },
  };
}

/**
 * Write the rendered files of `target` as a set, check them, roll back on failure; see the
 * module comment for the numbered algorithm. Throws RLD_ERR_WRITE, RLD_ERR_LOCK or
 * RLD_ERR_CHECK (after restoring); error messages and details hold names, codes and scrubbed
 * command output only, never file contents.
 */
export async function commitTarget(
  target: TargetSpec,
  rendered: RenderedFile[],
  deps: CommitDeps,
): Promise<CommitResult> {
  const log = targetLogger(deps.logger, target.name);
  const destinations = rendered.map((f) => path.resolve(f.spec.destination));
  if (new Set(destinations).size !== destinations.length) {
    throw new ReloaderError(
      'RLD_ERR_INTERNAL',
      `target "${target.name}" writes one destination twice`,
      {
        details: { target: target.name },
      },
    );
  }
  const lockOpts = {
    waitMs: DEFAULT_WAIT_MS + (target.check?.timeoutMs ?? 0),
    onCompromised: (err: Error, destination: string) =>
      log.warn({ destination, err }, 'lost the lock on a destination while holding it'),
    ...deps.lock,
  };
  if (target.atomic === 'set') return commitAsSet(target, rendered, deps, log, lockOpts);
  // (1)
  for (const f of rendered) await ensureParentDir(f.spec.destination, f.spec.createDirs);
  return withLocks(destinations, lockOpts, async () => {
    // (2)
    const plans: Plan[] = [];
    for (const [i, f] of rendered.entries()) {
      const destination = destinations[i] as string;
      const previous = await readCurrent(destination);
      plans.push({ spec: f.spec, destination, data: renderedBytes(f), previous });
    }
    // (3)
    const changed = plans.filter((p) => !isUnchanged(p));
    const unchanged = plans.filter((p) => isUnchanged(p)).map((p) => p.destination);
    // (4)
    if (changed.length === 0) {
      log.debug({ unchanged: unchanged.length }, 'output unchanged; nothing written');
      return { written: [], unchanged, ...NOTHING_TO_UNDO };
    }
    // (5)
    const done: Plan[] = [];
    const prepared = await prepareAll(changed);
    let failure = prepared.failed;
    if (failure === undefined) {
      // Back to back, nothing else in between: the set goes live within a few rename calls.
      for (const [i, p] of changed.entries()) {
        try {
          await installTemp(prepared.files[i] as PreparedFile);
          done.push(p);
        } catch (err) {
          for (const rest of prepared.files.slice(i + 1)) await discardTemp(rest);
          failure = { plan: p, err };
          break;
        }
      }
    }
    if (failure === undefined) {
      const dirs = new Map(changed.map((p) => [path.dirname(p.destination), p]));
      const synced = await Promise.allSettled(
        [...dirs.values()].map((p) => fsyncDirStep(p.destination, p.spec.createDirs)),
      );
      const bad = synced.findIndex((r) => r.status === 'rejected');
      if (bad >= 0) {
        const plan = [...dirs.values()][bad] as Plan;
        failure = { plan, err: (synced[bad] as PromiseRejectedResult).reason };
      }
    }
    if (failure !== undefined) {
      // (6)
      const { plan: p, err } = failure;
      const restoreFailed = await restore(done, log);
      if (done.length > 0) {
        log.warn({ restored: done.length - restoreFailed.length }, 'write failed; rolled back');
      }
      const cause = err instanceof ReloaderError ? err : undefined;
      throw new ReloaderError(
        'RLD_ERR_WRITE',
        `target "${target.name}": ${cause?.message ?? `cannot write ${p.destination}`}` +
          rolledBackText(done.length, restoreFailed),
        {
          cause: err,
          details: {
            ...(cause?.details ?? { destination: p.destination }),
            target: target.name,
            restored: done.map((d) => d.destination).filter((d) => !restoreFailed.includes(d)),
            restoreFailed,
          },
        },
      );
    }
    if (log.isLevelEnabled('debug')) {
      for (const p of done) {
        log.debug({ destination: p.destination, hash: contentHash(p.data) }, 'file written');
      }
    }
    const written = done.map((p) => p.destination);
    const undo = {
      rollback: () =>
        withLocks(
          done.map((p) => p.destination),
          lockOpts,
          () => restore(done, log),
        ),
      settle: async (): Promise<void> => undefined,
    };
    // (7)
    if (target.check === undefined) return { written, unchanged, ...undo };
    const checkSpec = target.check;
    const check = await runCheckSafely(checkSpec, deps.runCheck ?? defaultRunCheck, deps.scrubber);
    if (check.ok) return { written, unchanged, check, ...undo };
    const restoreFailed = await restore(done, log);
    throw checkError({ ...target, check: checkSpec }, check, log, written, restoreFailed);
    // (8) withLocks releases every lock in its `finally`.
  });
}

/** RLD_ERR_CHECK for a failed `check` whose files were put back (but `restoreFailed`). */
function checkError(
  target: TargetSpec & { check: CommandSpec },
  check: CommandOutcome,
  log: Logger,
  written: string[],
  restoreFailed: string[],
): ReloaderError {
  const argv0 = target.check.command[0] ?? '';
  const what = check.timedOut
    ? `timed out after ${target.check.timeoutMs} ms`
    : check.exitCode !== null
      ? `failed (exit ${check.exitCode})`
      : check.signal !== null
        ? `was killed by ${check.signal}`
        : `could not run`;
  log.warn(
    { check: argv0, exitCode: check.exitCode, timedOut: check.timedOut },
    'check failed; rolled back',
  );
  return new ReloaderError(
    'RLD_ERR_CHECK',
    `target "${target.name}": check ${argv0} ${what}` +
      rolledBackText(written.length, restoreFailed),
    {
      details: {
        target: target.name,
        command: argv0,
        exitCode: check.exitCode,
        signal: check.signal,
        timedOut: check.timedOut,
        stderrTail: check.stderrTail,
        stdoutTail: check.stdoutTail,
        restored: written.filter((d) => !restoreFailed.includes(d)),
        restoreFailed,
      },
    },
  );
}

/** An `atomic: set` target: the whole set swapped at once (set-swap.ts), the check inside. */
async function commitAsSet(
  target: TargetSpec,
  rendered: RenderedFile[],
  deps: CommitDeps,
  log: Logger,
  lock: Omit<LockOptions, 'lockfilePath'>,
): Promise<CommitResult> {
  let check: CommandOutcome | undefined;
  const spec = target.check;
  const result = await commitSet(
    target,
    rendered.map((f) => ({ spec: f.spec, data: renderedBytes(f) })),
    {
      logger: log,
      lock,
      ...(spec === undefined
        ? {}
        : {
            check: async () => {
              check = await runCheckSafely(spec, deps.runCheck ?? defaultRunCheck, deps.scrubber);
              if (!check.ok) {
                throw checkError({ ...target, check: spec }, check, log, written(), []);
              }
            },
          }),
    },
  );
  function written(): string[] {
    return rendered.map((f) => path.resolve(f.spec.destination));
  }
  return {
    written: result.written,
    unchanged: result.unchanged,
    ...(check === undefined ? {} : { check }),
    rollback: async () => {
      await result.rollback();
      return [];
    },
    settle: () => result.settle(),
  };
}

function rolledBackText(count: number, restoreFailed: string[]): string {
  if (count === 0) return '';
  if (restoreFailed.length === 0) return '; the previous files were put back';
  return `; ${restoreFailed.length} of ${count} previous files could NOT be put back: ${restoreFailed.join(', ')}`;
}

function defaultRunCheck(spec: CommandSpec): Promise<CommandOutcome> {
  return runCommand(spec.command, { timeoutMs: spec.timeoutMs });
}

/** Run the check; an exception becomes a failed outcome; both tails are scrubbed. */
async function runCheckSafely(
  spec: CommandSpec,
  run: (spec: CommandSpec) => Promise<CommandOutcome>,
  scrubber: Scrubber,
): Promise<CommandOutcome> {
  let outcome: CommandOutcome;
  try {
    outcome = await run(spec);
  } catch (err) {
    outcome = {
      ok: false,
      exitCode: null,
      signal: null,
      timedOut: false,
      durationMs: 0,
      stdoutTail: '',
      stderrTail: err instanceof Error ? err.message : String(err),
    };
  }
  return {
    ...outcome,
    stdoutTail: scrubber.scrub(outcome.stdoutTail),
    stderrTail: scrubber.scrub(outcome.stderrTail),
  };
}
