/** Shared helpers for the spec-loading tests. */
import assert from 'node:assert/strict';
import { SpecError } from '../../src/errors.js';
import { parseSpec } from '../../src/config/load.js';
import type { ReloaderSpec } from '../../src/config/types.js';

export const FILE = '/etc/reloader/reloader.yaml';
export const ENV = Object.freeze({
  INFISICAL_PROJECT_ID: 'proj-1',
  INFISICAL_IDENTITY_ID: 'ident-1',
});

/** A minimal valid spec body: one target with one inline file. */
export const TARGETS = `targets:
  - name: app
    files:
      - contents: hello
        destination: /out/app.conf
`;

/** 1-based line of the first line of `text` that contains `needle` (after `from` lines). */
export function lineOf(text: string, needle: string, from = 0): number {
  const lines = text.split('\n');
  const index = lines.findIndex((line, i) => i >= from && line.includes(needle));
  assert.ok(index >= 0, `test bug: ${JSON.stringify(needle)} not in the spec text`);
  return index + 1;
}

export function parse(text: string, env: Record<string, string | undefined> = ENV): ReloaderSpec {
  return parseSpec(text, FILE, env);
}

/** Asserts that parsing fails with a SpecError at `yamlPath` / `line` whose message matches. */
export function expectSpecError(
  text: string,
  expected: { yamlPath: string; line: number; message: RegExp },
  env: Record<string, string | undefined> = ENV,
): SpecError {
  let caught: unknown;
  try {
    parseSpec(text, FILE, env);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SpecError, `expected a SpecError, got ${String(caught)}`);
  assert.equal(caught.code, 'RLD_ERR_SPEC');
  assert.equal(caught.exitCode, 2);
  assert.equal(caught.location.file, FILE);
  assert.equal(caught.location.yamlPath, expected.yamlPath, caught.message);
  assert.equal(caught.location.line, expected.line, caught.message);
  assert.match(caught.message, expected.message);
  assert.ok(caught.message.startsWith(`${FILE}:${expected.line}: `), caught.message);
  return caught;
}
