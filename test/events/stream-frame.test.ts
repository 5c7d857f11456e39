/**
 * Reading Event Subscriptions frames (keys only, lenient across Infisical's field renames) and
 * the registrations a project's sources ask for (at most 10 per stream).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registrationsFor } from '../../src/channels/subscription.js';
import type { SourceSpec } from '../../src/config/types.js';
import { readStreamFrame } from '../../src/events/stream-frame.js';

const envelope = (inner: unknown) =>
  JSON.stringify({ type: 'secret-manager', source: 'infisical', time: 't', data: inner });

test('a secret-manager frame names its keys, folders and environment', () => {
  const data = envelope({
    specversion: 1,
    event: 'secret:update',
    payload: [
      { secretId: 'i1', secretKey: 'DB_PASSWORD', secretPath: '/api', environment: 'prod' },
      { secretId: 'i2', secretKey: 'DB_USER', secretPath: '/api', environment: 'prod' },
    ],
  });
  assert.deepEqual(readStreamFrame(data), [
    { event: 'secret:update', environment: 'prod', secretPath: '/api', key: 'DB_PASSWORD' },
    { event: 'secret:update', environment: 'prod', secretPath: '/api', key: 'DB_USER' },
  ]);
});

test('older field names and a single-object payload are read too', () => {
  assert.deepEqual(
    readStreamFrame(
      JSON.stringify({
        eventType: 'secret:create',
        payload: { secretKey: 'K', environment: 'dev' },
      }),
    ),
    [{ event: 'secret:create', environment: 'dev', key: 'K' }],
  );
  assert.deepEqual(
    readStreamFrame(
      envelope({ event_type: 'secret:delete', payload: [{ environmentSlug: 'st' }] }),
    ),
    [{ event: 'secret:delete', environment: 'st' }],
  );
});

test('an import mutation names the folder, without keys', () => {
  assert.deepEqual(
    readStreamFrame(
      envelope({
        event: 'secret:import-mutation',
        payload: { secretPath: '/', environment: 'prod' },
      }),
    ),
    [{ event: 'secret:import-mutation', environment: 'prod', secretPath: '/' }],
  );
});

test('a frame that is not JSON or names nothing means "refetch every source of the project"', () => {
  assert.deepEqual(readStreamFrame('not json'), [{}]);
  assert.deepEqual(readStreamFrame('[1,2]'), [{}]);
  assert.deepEqual(readStreamFrame(envelope({ event: 'secret:update' })), [
    { event: 'secret:update' },
  ]);
  // A relative path is not a folder: it is left out, so more is fetched rather than less.
  assert.deepEqual(
    readStreamFrame(envelope({ payload: [{ secretPath: 'api', environment: 'p' }] })),
    [{ environment: 'p' }],
  );
});

const source = (environment: string, path: string, recursive = false): SourceSpec =>
  ({ projectId: 'p', environment, path, recursive }) as SourceSpec;

test('registrations: the four events per folder, a recursive source as a glob', () => {
  const regs = registrationsFor([source('prod', '/'), source('prod', '/svc', true)]);
  assert.equal(regs.length, 8);
  assert.deepEqual(
    new Set(regs.map((r) => JSON.stringify(r['conditions']))),
    new Set([
      JSON.stringify({ environmentSlug: 'prod', secretPath: '/' }),
      JSON.stringify({ environmentSlug: 'prod', secretPath: '/svc/**' }),
    ]),
  );
  assert.deepEqual(
    registrationsFor([source('prod', '/', true)]).map((r) => r['conditions']),
    Array(4).fill({ environmentSlug: 'prod', secretPath: '/**' }),
  );
});

test('registrations: more than 10 collapse to one per environment, then to one per event', () => {
  const three = registrationsFor([
    source('prod', '/a'),
    source('prod', '/b'),
    source('prod', '/c'),
  ]);
  assert.equal(three.length, 4);
  assert.ok(
    three.every(
      (r) => JSON.stringify(r['conditions']) === '{"environmentSlug":"prod","secretPath":"/**"}',
    ),
  );
  const envs = registrationsFor(['a', 'b', 'c'].map((e) => source(e, '/x')));
  assert.equal(envs.length, 4, '12 registrations for 3 environments collapse to 4');
  assert.ok(envs.every((r) => r['conditions'] === undefined));
  assert.deepEqual(
    envs.map((r) => r['event']),
    ['secret:create', 'secret:update', 'secret:delete', 'secret:import-mutation'],
  );
});
