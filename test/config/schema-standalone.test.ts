/**
 * The build-time validator (`writeStandaloneValidator`): it must decide and word every document
 * exactly as ajv's run-time compilation does, and a stale one (another schema) must be ignored.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import {
  loadStandaloneValidator,
  schemaPath,
  specSchema,
  writeStandaloneValidator,
} from '../../src/config/schema.js';

const DOCS = [
  `targets: [{ name: a, files: [{ contents: x, destination: /tmp/a }] }]`,
  `infisical: { auth: { universal: { clientId: a, clientSecretFile: /s } }, renewAt: 0.5, timeout: 5s }
sources: [{ projectId: p, path: /x, recursive: true }]
webhook: { listen: "127.0.0.1:0", secret: s, payloadValues: apply }
defaults: { mode: "0640", wait: { min: 0ms, max: 2s } }
targets:
  - name: t
    files: [{ template: a.hbs, destination: /tmp/a, mode: "0600" }]
    check: { command: [nginx, -t], timeout: 10s }
    reload: { signal: HUP, processName: nginx }`,
  `bogus: 1
targets: []`,
  `targets: [{ name: "bad name!", files: [{ destination: 1, mode: 600 }] }]`,
  `defaults: { wait: { min: 5, max: soon } }
targets: [{ name: a, files: [{ contents: x, destination: /a }], reload: { signal: NOPE } }]`,
  `infisical: { auth: { kubernetes: {}, token: { tokenFile: /t } }, renewAt: 2 }`,
  `targets: "not a list"`,
];

/** A temp dir inside the repository: the generated code requires `ajv/dist/runtime/*`. */
async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(dirname(fileURLToPath(import.meta.url)), '.tmp-schema-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('the standalone validator accepts, rejects and words errors exactly like ajv at run time', async () => {
  await withTemp(async (dir) => {
    const file = writeStandaloneValidator(join(dir, 'schema-validator.cjs'));
    const standalone = loadStandaloneValidator(file);
    assert.ok(standalone, 'the freshly written validator is accepted');
    const schema = JSON.parse(await readFile(schemaPath(), 'utf8')) as object;
    const compiled = new Ajv({
      allErrors: true,
      strict: true,
      strictRequired: false,
      allowUnionTypes: true,
    }).compile(schema);
    let rejected = 0;
    for (const text of DOCS) {
      const doc = parseYaml(text) as unknown;
      const expected = compiled(doc);
      assert.equal(standalone(doc), expected, `same verdict for:\n${text}`);
      assert.deepEqual(
        standalone.errors ?? null,
        compiled.errors ?? null,
        `same errors for:\n${text}`,
      );
      if (!expected) rejected += 1;
    }
    assert.ok(rejected >= 4, `the samples exercise rejections (${rejected})`);
  });
});

test('a validator generated from another schema text is ignored', async () => {
  await withTemp(async (dir) => {
    const file = writeStandaloneValidator(join(dir, 'schema-validator.cjs'));
    const code = await readFile(file, 'utf8');
    const stale = join(dir, 'stale-validator.cjs');
    await writeFile(
      stale,
      code.replace(/schemaHash = "[0-9a-f]{64}"/, `schemaHash = "${'0'.repeat(64)}"`),
    );
    assert.equal(loadStandaloneValidator(stale), undefined);
    assert.equal(loadStandaloneValidator(join(dir, 'missing.cjs')), undefined);
    const damaged = join(dir, 'damaged-validator.cjs');
    await writeFile(damaged, code.slice(0, code.length / 2));
    assert.equal(loadStandaloneValidator(damaged), undefined);
  });
});

test('specSchema says where its validator came from', () => {
  const { source, validate } = specSchema();
  assert.ok(source === 'standalone' || source === 'ajv');
  assert.equal(typeof validate, 'function');
});
