import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { render } from './fixtures.js';

const secrets = { A: 'a', B: 'b', C: 'c', 'my-key': 'd', 'my.key': 'e', EMPTY: '' };

/** The sorted keys a render of `source` read. */
function keys(source: string, env: Record<string, string> = {}): string[] {
  return [...render(source, { secrets, env }).keysRead].sort();
}

describe('key tracking: keysRead is exactly the keys a render asked for', () => {
  const cases: Array<[string, string, string[]]> = [
    ['nothing', 'static text {{target.name}} {{env.HOME}}', []],
    ['a path', '{{secrets.A}}', ['A']],
    ['repeated reads count once', '{{secrets.A}}{{secrets.A}}{{secret "A"}}', ['A']],
    ['secret helper', '{{secret "B"}}', ['B']],
    [
      'lookup with odd characters',
      '{{lookup secrets "my-key"}}{{secrets.[my.key]}}',
      ['my-key', 'my.key'],
    ],
    ['with block', '{{#with secrets}}{{A}}{{C}}{{/with}}', ['A', 'C']],
    ['helper argument', '{{base64 secrets.B}}', ['B']],
    [
      '#if on a missing key still counts: it may appear later',
      '{{#if secrets.OPT}}x{{/if}}',
      ['OPT'],
    ],
    ['#if then read', '{{#if secrets.A}}{{secrets.A}}{{/if}}', ['A']],
    [
      'only the branch taken',
      '{{#if secrets.OPT}}{{secrets.B}}{{else}}{{secrets.C}}{{/if}}',
      ['C', 'OPT'],
    ],
    ['default on a missing key', '{{default secrets.OPT secrets.A}}', ['A', 'OPT']],
    ['secretOr', '{{secretOr "OPT" "x"}}{{secretOr "B" "x"}}', ['B', 'OPT']],
    [
      'each reads every key, and the "*" marker (an added key concerns it too)',
      '{{#each secrets}}{{@key}}{{/each}}',
      ['*', ...Object.keys(secrets)].sort(),
    ],
    ['json of the map reads every key', '{{json secrets}}', ['*', ...Object.keys(secrets)].sort()],
    ['empty value counts', '{{secrets.EMPTY}}', ['EMPTY']],
    ['env is not tracked', '{{env.HOME}}{{lookup env "HOME"}}', []],
  ];
  for (const [label, source, expected] of cases) {
    it(label, () => assert.deepEqual(keys(source, { HOME: '/h' }), expected));
  }

  it('each over an empty map reads nothing and renders the else branch', () => {
    const r = render('{{#each secrets}}x{{else}}none{{/each}}', { secrets: {} });
    assert.equal(r.output, 'none');
    assert.deepEqual([...r.keysRead], ['*'], 'an empty enumeration still depends on every key');
  });

  it('every render starts with an empty set', () => {
    const t = render('{{secrets.A}}', { secrets });
    const u = render('{{secrets.B}}', { secrets });
    assert.deepEqual([...t.keysRead], ['A']);
    assert.deepEqual([...u.keysRead], ['B']);
  });
});
