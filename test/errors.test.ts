import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ERROR_CODES, ReloaderError, SpecError, asReloaderError, hasCode } from '../src/errors.js';
import { repoRoot } from './helpers/harness.js';

test('the README error table lists exactly the catalogue, with the same exit codes and meanings', async () => {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  const section = readme
    .split('<!-- error-codes:start -->')[1]
    ?.split('<!-- error-codes:end -->')[0];
  assert.ok(section, 'README has the error-codes markers');
  const rows = [...section.matchAll(/^\| `(RLD_ERR_[A-Z_]+)` \| (\d) \| (.+) \|$/gm)].map((m) => [
    m[1],
    Number(m[2]),
    m[3],
  ]);
  const catalogue = Object.entries(ERROR_CODES).map(([code, { exit, summary }]) => [
    code,
    exit,
    summary,
  ]);
  assert.deepEqual(rows, catalogue);
});

test('ReloaderError carries code, exit code, details and cause; toJSON has no stack', () => {
  const cause = new Error('inner');
  const err = new ReloaderError('RLD_ERR_CHECK', 'check failed', {
    cause,
    details: { target: 't' },
  });
  assert.equal(err.code, 'RLD_ERR_CHECK');
  assert.equal(err.exitCode, 1);
  assert.equal(err.cause, cause);
  assert.deepEqual(err.toJSON(), { code: 'RLD_ERR_CHECK', message: 'check failed', target: 't' });
  assert.ok(Object.isFrozen(err.details));
  assert.ok(hasCode(err, 'RLD_ERR_CHECK', 'RLD_ERR_RELOAD'));
  assert.ok(!hasCode(err, 'RLD_ERR_SPEC'));
  assert.ok(!hasCode(new Error('x'), 'RLD_ERR_CHECK'));
});

test('SpecError reads file:line: path: problem and maps to exit 2', () => {
  const err = new SpecError(
    { file: '/etc/r.yaml', yamlPath: 'targets[0].files', line: 12 },
    'must not be empty',
  );
  assert.equal(err.message, '/etc/r.yaml:12: targets[0].files: must not be empty');
  assert.equal(err.exitCode, 2);
  assert.equal(new SpecError({ file: 'f', yamlPath: '', line: 1 }, 'x').message, 'f:1: (root): x');
});

test('asReloaderError keeps ReloaderErrors and wraps anything else with a fallback code', () => {
  const own = new ReloaderError('RLD_ERR_LOCK', 'busy');
  assert.equal(asReloaderError(own), own);
  const wrapped = asReloaderError(new TypeError('boom'), 'RLD_ERR_WRITE');
  assert.equal(wrapped.code, 'RLD_ERR_WRITE');
  assert.equal(wrapped.message, 'boom');
  assert.equal(asReloaderError('text').code, 'RLD_ERR_INTERNAL');
});
