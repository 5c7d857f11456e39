import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { schemaPath } from '../../src/config/schema.js';

/** The shipped file, compiled by a plain ajv as an editor or CI linter would. */
function shipped(): (data: unknown) => boolean {
  const schema = JSON.parse(readFileSync(schemaPath(), 'utf8')) as object;
  return new Ajv({ allErrors: true, allowUnionTypes: true, strictRequired: false }).compile(schema);
}

test('the schema ships at schema/reloader.schema.json and is valid JSON Schema (draft-07)', () => {
  assert.match(schemaPath(), /schema\/reloader\.schema\.json$/);
  const schema = JSON.parse(readFileSync(schemaPath(), 'utf8')) as Record<string, unknown>;
  assert.equal(schema['$schema'], 'http://json-schema.org/draft-07/schema#');
  assert.equal(schema['additionalProperties'], false);
  shipped();
});

test('every object in the schema closes its keys (additionalProperties: false or a value schema)', () => {
  const schema = JSON.parse(readFileSync(schemaPath(), 'utf8')) as unknown;
  const open: string[] = [];
  const visit = (node: unknown, where: string): void => {
    if (node === null || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    if (record['properties'] !== undefined && record['additionalProperties'] !== false)
      open.push(where);
    for (const [key, child] of Object.entries(record)) visit(child, `${where}/${key}`);
  };
  visit(schema, '#');
  assert.deepEqual(open, []);
});

test('the schema accepts a full spec and rejects an unknown key and the exclusive-choice mistakes', () => {
  const validate = shipped();
  const good = parseYaml(`
infisical: { auth: { universal: { clientId: a, clientSecretFile: /s } }, renewAt: 0.5, timeout: 5s }
sources: [{ projectId: p, path: /x, recursive: true }]
webhook: { listen: "[::]:8080", secretFile: /w, maxAge: 1m, payloadValues: refetch }
defaults: { mode: "0640", wait: { min: 1s } }
targets:
  - name: t
    files: [{ template: a.hbs, destination: /a, uid: 1 }]
    check: { command: [nginx, -t] }
    reload: { signal: HUP, processName: nginx, timeout: 1s }
  - name: u
    files: [{ contents: x, destination: /b }]
    reload: { http: { url: "http://127.0.0.1/r", method: POST } }
`);
  assert.equal(validate(good), true);
  const bad = (yaml: string) => assert.equal(validate(parseYaml(yaml)), false, yaml);
  bad('targets: [{ name: t, files: [{ contents: x, destination: /a }] }]\nfoo: 1\n');
  bad('targets: [{ name: t, files: [{ contents: x, destination: /a, colour: red }] }]\n');
  bad('targets: [{ name: t, files: [{ contents: x, template: y, destination: /a }] }]\n');
  bad('targets: [{ name: t, files: [{ destination: /a }] }]\n');
  bad(
    'targets: [{ name: t, files: [{ contents: x, destination: /a }], reload: { signal: HUP } }]\n',
  );
  bad(
    'targets: [{ name: t, files: [{ contents: x, destination: /a }], reload: { command: [x], pid: 1 } }]\n',
  );
  bad('targets: [{ name: t, files: [{ contents: x, destination: /a, mode: 600 }] }]\n');
  bad(
    'infisical: { auth: { kubernetes: {}, token: { token: t } } }\ntargets: [{ name: t, files: [{ contents: x, destination: /a }] }]\n',
  );
  bad(
    'webhook: { secret: a, secretFile: /b }\ntargets: [{ name: t, files: [{ contents: x, destination: /a }] }]\n',
  );
  bad(
    'infisical: { timeout: 10 }\ntargets: [{ name: t, files: [{ contents: x, destination: /a }] }]\n',
  );
});
