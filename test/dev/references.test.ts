import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandReferences, type SecretLookup } from '../../src/dev/references.js';

const data: Record<string, string> = {
  'dev:/:A': 'a',
  'dev:/:B': '${A}-b',
  'dev:/api:KEY': 'k-${NAME}',
  'dev:/api:NAME': 'api-name',
  'prod:/:A': 'prod-a',
  'dev:/:LOOP1': 'x${LOOP2}',
  'dev:/:LOOP2': 'y${LOOP1}',
  'dev:/:KIND': 'api',
  'dev:/:EMPTY': '',
  'dev:/a/b:DEEP': 'deep',
};
const lookup: SecretLookup = (env, path, key) => data[`${env}:${path}:${key}`];
const at = (key: string, environment = 'dev', path = '/') => ({ environment, path, key });

test('same-folder and cross-env/path references', () => {
  assert.equal(expandReferences('${A}/${prod.A}', at('X'), lookup), 'a/prod-a');
  assert.equal(expandReferences('${dev.a.b.DEEP}', at('X'), lookup), 'deep');
  assert.equal(expandReferences('${dev.A}', at('X'), lookup), 'a', '${env.KEY} is the root folder');
});

test('nested references resolve in the referenced secret own folder', () => {
  assert.equal(expandReferences('${B}', at('X'), lookup), 'a-b');
  assert.equal(expandReferences('${dev.api.KEY}', at('X'), lookup), 'k-api-name');
});

test('missing references stay literal, empty values expand to empty', () => {
  assert.equal(expandReferences('${NOPE}:${qa.A}:${EMPTY}!', at('X'), lookup), '${NOPE}:${qa.A}:!');
});

test('cycles stop after bounded re-passes instead of looping', () => {
  const out = expandReferences('${LOOP1}', at('X'), lookup);
  // Infisical's algorithm unrolls a cycle once per pass, at most 10 passes, and leaves one
  // reference literal at the end: bounded, never an endless loop.
  assert.match(out, /^(xy)+x?\$\{LOOP[12]\}$/);
  assert.ok(out.length < 80, out);
});

test('a reference built by another reference is expanded in a second pass', () => {
  assert.equal(expandReferences('${dev.${KIND}.NAME}', at('X'), lookup), 'api-name');
});

test('cross-project references and plain text are left alone', () => {
  assert.equal(
    expandReferences('${@other.dev.A} $A {A}', at('X'), lookup),
    '${@other.dev.A} $A {A}',
  );
});
