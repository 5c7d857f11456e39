/**
 * Where the CLI takes reloader.yaml from: `--config`, else `$RELOADER_CONFIG`, else the text of
 * `$RELOADER_CONFIG_YAML` (the injector's default config), else ./reloader.yaml.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/cli.js';
import { tempDir } from '../helpers/harness.js';

async function validate(
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await run(['validate', ...argv], { stdout, stderr, env });
  return { code, out };
}

const spec = (n: number): string =>
  `targets:\n${Array.from({ length: n }, (_, i) => `  - name: t${i}\n    files:\n      - { contents: "x", destination: /tmp/rld-x-${i} }\n`).join('')}`;

test('reloader.yaml: --config, then RELOADER_CONFIG, then the text of RELOADER_CONFIG_YAML', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'reloader.yaml');
  await writeFile(file, spec(2));
  const base = { INFISICAL_IDENTITY_ID: 'i', INFISICAL_PROJECT_ID: 'p' };
  const inline = await validate([], { ...base, RELOADER_CONFIG_YAML: spec(3) });
  assert.equal(inline.code, 0, inline.out);
  assert.match(inline.out, /\$RELOADER_CONFIG_YAML: valid \(3 targets/);
  const byEnv = await validate([], {
    ...base,
    RELOADER_CONFIG_YAML: spec(3),
    RELOADER_CONFIG: file,
  });
  assert.match(byEnv.out, /reloader\.yaml: valid \(2 targets/);
  const byFlag = await validate(['--config', file], { ...base, RELOADER_CONFIG_YAML: spec(3) });
  assert.match(byFlag.out, /reloader\.yaml: valid \(2 targets/);
  const bad = await validate([], { ...base, RELOADER_CONFIG_YAML: 'targets: 3\n' });
  assert.equal(bad.code, 2);
  assert.match(bad.out, /RLD_ERR_SPEC: .*\$RELOADER_CONFIG_YAML:\d+: targets/);
});
