import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { SourceSpec } from '../../src/config/types.js';
import {
  normalizeSecretPath,
  pathCovers,
  sourceForValueEvent,
  sourcesForEvent,
} from '../../src/events/match.js';

function src(over: Partial<SourceSpec> = {}): SourceSpec {
  return {
    projectId: 'p1',
    environment: 'prod',
    path: '/',
    recursive: false,
    includeImports: false,
    expandReferences: false,
    ...over,
  };
}

describe('normalizeSecretPath', () => {
  it('collapses slashes and drops the trailing one except at the root', () => {
    assert.equal(normalizeSecretPath('/'), '/');
    assert.equal(normalizeSecretPath('//'), '/');
    assert.equal(normalizeSecretPath('/a/'), '/a');
    assert.equal(normalizeSecretPath('/a//b///'), '/a/b');
    assert.equal(normalizeSecretPath('/a/b'), '/a/b');
  });
});

describe('pathCovers', () => {
  const table: Array<[string, boolean, string, boolean]> = [
    ['/a', false, '/a', true],
    ['/a', false, '/a/', true],
    ['/a/', false, '/a', true],
    ['/a', false, '/a/b', false],
    ['/a', false, '/', false],
    ['/a', true, '/a', true],
    ['/a', true, '/a/b', true],
    ['/a', true, '/a/b/c', true],
    ['/a', true, '/ab', false],
    ['/a', true, '/b/a', false],
    ['/a', true, '/', false],
    ['/a/b', true, '/a', false],
    ['/', true, '/', true],
    ['/', true, '/x', true],
    ['/', true, '/x/y/z', true],
    ['/', false, '/', true],
    ['/', false, '/x', false],
  ];
  for (const [source, recursive, event, expected] of table) {
    it(`${source}${recursive ? ' (recursive)' : ''} ${expected ? 'covers' : 'does not cover'} ${event}`, () => {
      assert.equal(pathCovers(source, recursive, event), expected);
    });
  }

  it('property: recursive covering is the prefix-by-segments relation', () => {
    const seg = fc.constantFrom('a', 'b', 'ab', 'c');
    const pathArb = fc.array(seg, { maxLength: 4 }).map((s) => `/${s.join('/')}`);
    fc.assert(
      fc.property(pathArb, pathArb, (source, event) => {
        const s = source === '/' ? [] : source.slice(1).split('/');
        const e = event === '/' ? [] : event.slice(1).split('/');
        const isPrefix = s.length <= e.length && s.every((x, i) => e[i] === x);
        assert.equal(pathCovers(source, true, event), isPrefix);
        assert.equal(pathCovers(source, false, event), source === event);
      }),
      { numRuns: 500 },
    );
  });
});

describe('sourcesForEvent', () => {
  const ev = { projectId: 'p1', environment: 'prod', secretPath: '/api' };

  it('matches project + environment + covering path when imports and references are off', () => {
    const sources = [
      src({ path: '/api' }),
      src({ path: '/' }),
      src({ path: '/', recursive: true }),
      src({ path: '/api', environment: 'dev' }),
      src({ path: '/api', projectId: 'p2' }),
      src({ path: '/api/sub' }),
      src({ path: '/ap', recursive: true }),
    ];
    assert.deepEqual(sourcesForEvent(sources, ev), [0, 2]);
  });

  it('refetches a source with imports or references for any change in its project', () => {
    const sources = [
      src({ path: '/web', includeImports: true }),
      src({ path: '/web', environment: 'dev', expandReferences: true }),
      src({ path: '/web', projectId: 'p2', includeImports: true, expandReferences: true }),
      src({ path: '/web' }),
    ];
    assert.deepEqual(sourcesForEvent(sources, ev), [0, 1]);
  });

  it('the default source (imports + references on) is refetched for any event of its project', () => {
    const s = [src({ path: '/a', includeImports: true, expandReferences: true })];
    assert.deepEqual(
      sourcesForEvent(s, { projectId: 'p1', environment: 'x', secretPath: '/z' }),
      [0],
    );
    assert.deepEqual(
      sourcesForEvent(s, { projectId: 'p9', environment: 'prod', secretPath: '/a' }),
      [],
    );
  });

  it('normalises the event path', () => {
    assert.deepEqual(sourcesForEvent([src({ path: '/api' })], { ...ev, secretPath: '/api/' }), [0]);
  });
});

describe('sourceForValueEvent', () => {
  it('with one source, picks it when the fields match, and nothing otherwise', () => {
    const one = [src({ path: '/api' })];
    assert.equal(sourceForValueEvent(one, {}), 0);
    assert.equal(sourceForValueEvent(one, { environment: 'prod', secretPath: '/api' }), 0);
    assert.equal(sourceForValueEvent(one, { environment: 'dev' }), undefined);
    assert.equal(sourceForValueEvent(one, { secretPath: '/other' }), undefined);
    assert.equal(sourceForValueEvent(one, { projectId: 'p2' }), undefined);
    assert.equal(sourceForValueEvent([], {}), undefined);
  });

  it('without location, takes the last source (the one whose keys win in the merge)', () => {
    const sources = [
      src({ path: '/a' }),
      src({ path: '/b' }),
      src({ path: '/c', environment: 'dev' }),
    ];
    assert.equal(sourceForValueEvent(sources, {}), 2);
    assert.equal(sourceForValueEvent(sources, { environment: 'prod' }), 1);
  });

  it('prefers a source that already holds the key', () => {
    const sources = [src({ path: '/a' }), src({ path: '/b' }), src({ path: '/c' })];
    const holds = (index: number, key: string) => key === 'K' && index === 0;
    assert.equal(sourceForValueEvent(sources, { key: 'K' }, holds), 0);
    assert.equal(sourceForValueEvent(sources, { key: 'OTHER' }, holds), 2);
  });

  it('with a path, an exact source beats a recursive ancestor, a deeper ancestor a shallower', () => {
    const sources = [
      src({ path: '/a/b' }),
      src({ path: '/', recursive: true }),
      src({ path: '/a', recursive: true }),
    ];
    assert.equal(sourceForValueEvent(sources, { secretPath: '/a/b' }), 0);
    assert.equal(sourceForValueEvent(sources, { secretPath: '/a/b/c' }), 2);
    assert.equal(sourceForValueEvent(sources, { secretPath: '/x' }), 1);
    assert.equal(sourceForValueEvent(sources, { secretPath: '/' }), 1);
  });
});
