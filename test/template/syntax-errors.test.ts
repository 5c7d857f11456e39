// A template syntax error an operator can act on: the spec file and line, the target, the
// template, and for a block left open, which block and where it was opened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileTargets } from '../../src/engine/targets.js';
import { parseSpec } from '../../src/config/load.js';
import { unclosedBlock } from '../../src/template/engine.js';
import { hasCode } from '../../src/errors.js';

const SPEC = (contents: string) => `infisical:
  url: http://127.0.0.1:9/api
  auth: { token: { tokenFile: t } }
sources:
  - { projectId: p, environment: dev, path: / }
targets:
  - name: ok
    files:
      - { contents: "fine", destination: /tmp/ok }
  - name: web
    files:
      - contents: ${JSON.stringify(contents)}
        destination: /tmp/web.conf
`;

test('an unclosed block names the spec, the target, the template and the block with its line', async () => {
  const spec = parseSpec(
    SPEC('a\n{{#if secrets.A}}\n{{#each secrets}}\nx={{this}}\n{{/each}}\n'),
    '/etc/r.yaml',
    {},
  );
  await assert.rejects(compileTargets(spec), (err: unknown) => {
    assert.ok(hasCode(err, 'RLD_ERR_TEMPLATE'));
    assert.match(
      err.message,
      /^\/etc\/r\.yaml:12: target "web": template "targets\[1\]\.files\[0\]\.contents"/,
    );
    assert.match(err.message, /\{\{#if\}\} opened on line 2 is never closed \(add \{\{\/if\}\}\)/);
    assert.doesNotMatch(err.message, /OPEN_ENDBLOCK/, 'not the parser token list');
    assert.equal(err.details?.['target'], 'web');
    return true;
  });
});

test('unclosedBlock: innermost open block, comments and else skipped', () => {
  assert.deepEqual(unclosedBlock('{{#each a}}\n{{#if b}}{{/if}}\n'), { name: 'each', line: 1 });
  assert.deepEqual(unclosedBlock('{{!-- {{#if x}} --}}\n{{#with y}}{{^}}{{else}}'), {
    name: 'with',
    line: 2,
  });
  assert.equal(unclosedBlock('{{#each a}}{{/each}}'), undefined);
});
