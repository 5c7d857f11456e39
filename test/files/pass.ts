/**
 * Runs real passes (render → commit → check → reload → verify) of one target from a spec text,
 * with the secrets given, in process: the engine's own `runTargetPass` over `compileTargets`.
 * Reload commands append a line to `reloads.log` in the test's directory, so tests count them.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { parseSpec } from '../../src/config/load.js';
import { compileTargets, type CompiledTarget } from '../../src/engine/targets.js';
import {
  newTargetState,
  runTargetPass,
  type PassResult,
  type TargetState,
} from '../../src/engine/runner.js';
import { recordingLogger } from '../reliability/support.js';
import { tempDir } from '../helpers/harness.js';

export interface PassRig {
  dir: string;
  target: CompiledTarget;
  state: TargetState;
  lines: string[];
  /** One pass over `secrets`. */
  pass(secrets: Record<string, string>): Promise<PassResult>;
  /** How many times the reload command ran. */
  reloads(): Promise<number>;
}

/** Environment the specs are read with (kubernetes auth needs an identity to parse). */
export const SPEC_ENV = { INFISICAL_IDENTITY_ID: 'id-1', INFISICAL_PROJECT_ID: 'p1' };

/** A reload block that counts its runs in `reloads.log` (argv, no shell of ours). */
export const COUNTING_RELOAD = `reload: { command: [sh, -c, "echo reloaded >> reloads.log"] }`;

/** Build a rig for the first target of `yaml` (relative paths resolve in a fresh temp dir). */
export async function passRig(
  t: TestContext,
  yaml: (dir: string) => string,
  prefix = 'rld-files-',
): Promise<PassRig> {
  const dir = await tempDir(t, prefix);
  const spec = parseSpec(yaml(dir), join(dir, 'reloader.yaml'), SPEC_ENV);
  const [target] = await compileTargets(spec);
  if (target === undefined) throw new Error('the spec has no target');
  const state = newTargetState(target.spec.name);
  const { logger, lines, scrubber } = recordingLogger();
  let first = true;
  return {
    dir,
    target,
    state,
    lines,
    async pass(secrets) {
      for (const v of Object.values(secrets)) scrubber.add(v);
      const result = await runTargetPass(target, new Map(Object.entries(secrets)), state, {
        logger,
        scrubber,
        env: {},
        firstRender: first,
        cwd: dir,
      });
      first = false;
      return result;
    },
    async reloads() {
      const text = await fsp.readFile(join(dir, 'reloads.log'), 'utf8').catch(() => '');
      return text.split('\n').filter((l) => l !== '').length;
    },
  };
}
