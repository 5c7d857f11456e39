import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandEnv } from '../../src/config/env.js';

const env = { HOST: 'db.local', EMPTY: '', PORT: '5432' };

function value(text: string): string {
  const result = expandEnv(text, env);
  assert.ok(result.ok, `expected success for ${text}`);
  return result.value;
}

function problem(text: string, environment: Record<string, string | undefined> = env): string {
  const result = expandEnv(text, environment);
  assert.ok(!result.ok, `expected a failure for ${text}`);
  return result.problem;
}

test('text without references is returned unchanged and not marked substituted', () => {
  const result = expandEnv('plain $HOME and $ alone', env);
  assert.deepEqual(result, {
    ok: true,
    value: 'plain $HOME and $ alone',
    names: [],
    substituted: false,
  });
});

test('${VAR} is replaced, several per string, and the names are reported', () => {
  const result = expandEnv('${HOST}:${PORT}', env);
  assert.deepEqual(result, {
    ok: true,
    value: 'db.local:5432',
    names: ['HOST', 'PORT'],
    substituted: true,
  });
});

test('${VAR:-default} uses the default when unset or empty, the value otherwise', () => {
  assert.equal(value('${MISSING:-fallback}'), 'fallback');
  assert.equal(value('${EMPTY:-fallback}'), 'fallback');
  assert.equal(value('${HOST:-fallback}'), 'db.local');
  assert.equal(value('${MISSING:-}'), '');
  assert.equal(value('${MISSING:-http://x:8080/api}'), 'http://x:8080/api');
  assert.equal(value('${MISSING:-a ${b}'), 'a ${b', 'the default ends at the first }');
});

test('a set but empty ${VAR} gives the empty string', () => {
  assert.equal(value('[${EMPTY}]'), '[]');
});

test('$${ is a literal ${ and is not substituted', () => {
  const result = expandEnv('$${HOST} and ${HOST}', env);
  assert.deepEqual(result, {
    ok: true,
    value: '${HOST} and db.local',
    names: ['HOST'],
    substituted: true,
  });
  assert.deepEqual(expandEnv('$${X}', env), {
    ok: true,
    value: '${X}',
    names: [],
    substituted: false,
  });
});

test('an unset ${VAR} without default is an error naming the variable', () => {
  assert.equal(problem('${NOPE}'), 'environment variable NOPE is not set');
});

test('malformed references are errors', () => {
  assert.match(problem('${'), /unterminated/);
  assert.match(problem('x ${HOST'), /unterminated/);
  assert.match(problem('${}'), /malformed/);
  assert.match(problem('${1ABC}'), /malformed/);
  assert.match(problem('${A-B}'), /malformed/);
  assert.match(problem('${HOST:?x}'), /malformed/);
});

test('problems never contain the value of any variable', () => {
  const canary = 'topsecret-canary';
  const environment = { SECRET: canary };
  for (const text of ['${SECRET} ${NOPE}', '${SECRET}${', '${SECRET} ${BAD-NAME}']) {
    assert.ok(!problem(text, environment).includes(canary), text);
  }
});
