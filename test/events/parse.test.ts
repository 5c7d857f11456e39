import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ReloaderError } from '../../src/errors.js';
import { parseBody, parseEvent } from '../../src/events/parse.js';

const CANARY = 'canary-s3cr3t-VALUE-7f1e';

/** Asserts a 400 RLD_ERR_WEBHOOK with the given reason and field, and no canary in it. */
function assertMalformed(fn: () => unknown, reason: string, field?: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ReloaderError, `expected a ReloaderError, got ${String(caught)}`);
  assert.equal(caught.code, 'RLD_ERR_WEBHOOK');
  assert.equal(caught.details['status'], 400);
  assert.equal(caught.details['reason'], reason, caught.message);
  if (field !== undefined) {
    assert.equal(caught.details['field'], field);
    assert.ok(caught.message.includes(field), `message names ${field}: ${caught.message}`);
  }
  const everything = `${caught.message} ${caught.stack ?? ''} ${JSON.stringify(caught)} ${String(
    caught.cause,
  )}`;
  assert.ok(!everything.includes(CANARY), `canary leaked: ${caught.message}`);
  assert.equal(caught.cause, undefined);
}

// Infisical's webhook payloads (docs/infisical-api.md), verbatim.
const MODIFIED = {
  event: 'secrets.modified',
  project: {
    workspaceId: 'proj-uuid',
    projectId: 'proj-uuid',
    projectName: 'Payments',
    environment: 'prod',
    environmentName: 'Production',
    secretPath: '/api',
    changedBy: 'Ada Lovelace',
    changedByActorType: 'user',
  },
  timestamp: 1767225600000,
};
const ROTATION_FAILED = {
  event: 'secrets.rotation-failed',
  project: {
    projectId: 'proj-uuid',
    projectName: 'Payments',
    environment: 'prod',
    environmentName: 'Production',
    secretPath: '/db',
    rotationName: 'pg-rotation',
    errorMessage: 'connection refused',
    triggeredManually: false,
  },
  timestamp: 1767225600000,
};
const HONEY = {
  event: 'honey-token.triggered',
  project: {
    projectId: '…',
    projectName: '…',
    environment: 'prod',
    environmentName: 'Production',
    secretPath: '/',
  },
  honeyToken: {
    name: 'decoy-key',
    eventName: 'GetCallerIdentity',
    sourceIp: '203.0.113.4',
    awsRegion: 'us-east-1',
  },
  timestamp: 1767225600000,
};
const CHANGE_REQUEST = {
  event: 'secrets.change-request.modified',
  action: 'merged',
  project: { id: 'proj-1', name: 'Secrets management' },
  request: {
    id: 'req-1',
    slug: 'clever-otter',
    url: 'https://…/approval?requestId=req-1',
    target: { environment: { name: 'Production', slug: 'prod' }, secretPath: '/api' },
    status: 'close',
    hasMerged: true,
    isBypassed: false,
    policy: { id: 'pol-1', name: 'Production secrets', enforcementLevel: 'hard' },
    requestedBy: { type: 'user', id: 'user-1', name: 'Ada Lovelace', email: 'ada@example.com' },
    createdAt: '2026-08-20T10:00:00.000Z',
    updatedAt: '2026-08-20T10:42:00.000Z',
  },
  timestamp: 1767225600000,
};
const TEST = {
  event: 'test',
  project: {
    workspaceId: 'proj-uuid',
    projectId: 'proj-uuid',
    projectName: 'Payments',
    environment: 'prod',
    environmentName: 'Production',
    secretPath: '/',
  },
  timestamp: 1767225600000,
};

describe('parseEvent: Infisical payloads (docs/infisical-api.md)', () => {
  it('secrets.modified', () => {
    assert.deepEqual(parseEvent(MODIFIED), {
      kind: 'modified',
      projectId: 'proj-uuid',
      environment: 'prod',
      secretPath: '/api',
      timestampMs: 1767225600000,
    });
  });

  it('secrets.modified from the queue producer (optional fields absent) and the docs spelling', () => {
    const body = {
      event: 'secret.modified',
      project: { workspaceId: 'ws-1', projectName: 'P', environment: 'dev', secretPath: '/a/b/' },
    };
    assert.deepEqual(parseEvent(body), {
      kind: 'modified',
      projectId: 'ws-1',
      environment: 'dev',
      secretPath: '/a/b',
    });
  });

  it('prefers projectId over workspaceId and normalises the path', () => {
    const body = {
      event: 'secrets.modified',
      project: { workspaceId: 'old', projectId: 'new', environment: 'e', secretPath: '//x//y//' },
    };
    const ev = parseEvent(body);
    assert.equal(ev.kind, 'modified');
    assert.equal(ev.kind === 'modified' && ev.projectId, 'new');
    assert.equal(ev.kind === 'modified' && ev.secretPath, '/x/y');
    const root = parseEvent({ ...body, project: { ...body.project, secretPath: '/' } });
    assert.equal(root.kind === 'modified' && root.secretPath, '/');
  });

  it('test, with and without its project', () => {
    assert.deepEqual(parseEvent(TEST), {
      kind: 'test',
      projectId: 'proj-uuid',
      environment: 'prod',
    });
    assert.deepEqual(parseEvent({ event: 'test' }), { kind: 'test' });
    assert.deepEqual(parseEvent({ event: 'test', project: 'x' }), { kind: 'test' });
  });

  it('ignores the other Infisical events with a reason', () => {
    for (const body of [ROTATION_FAILED, HONEY, CHANGE_REQUEST]) {
      const ev = parseEvent(body);
      assert.equal(ev.kind, 'ignored', body.event);
      assert.equal(ev.kind === 'ignored' && ev.event, body.event);
      assert.ok(ev.kind === 'ignored' && ev.reason.length > 0);
      assert.notEqual(ev.kind === 'ignored' && ev.reason, 'unknown event type');
    }
    const access = parseEvent({ event: 'secrets.access-request.modified', project: {} });
    assert.equal(access.kind, 'ignored');
  });

  it('ignores unknown event strings, truncating long ones', () => {
    assert.deepEqual(parseEvent({ event: 'secret:update' }), {
      kind: 'ignored',
      event: 'secret:update',
      reason: 'unknown event type',
    });
    const long = parseEvent({ event: 'x'.repeat(5000) });
    assert.ok(long.kind === 'ignored' && long.event.length <= 101);
  });
});

describe('parseEvent: value-carrying events (integration guide)', () => {
  it('secret.updated with every optional field', () => {
    const body = {
      event: 'secret.updated',
      payload: {
        secretKey: 'DB_PASSWORD',
        secretValue: CANARY,
        environment: 'prod',
        secretPath: '/db/',
        projectId: 'p1',
        rotation: false,
      },
    };
    assert.deepEqual(parseEvent(body), {
      kind: 'value',
      action: 'updated',
      key: 'DB_PASSWORD',
      value: CANARY,
      projectId: 'p1',
      environment: 'prod',
      secretPath: '/db',
      rotation: false,
    });
  });

  it('created, rotated and deleted', () => {
    assert.deepEqual(
      parseEvent({ event: 'secret.created', payload: { secretKey: 'K', secretValue: '' } }),
      { kind: 'value', action: 'created', key: 'K', value: '' },
    );
    assert.deepEqual(
      parseEvent({
        event: 'secret.rotated',
        payload: { secretKey: 'K', secretValue: 'v2', rotation: true },
      }),
      { kind: 'value', action: 'rotated', key: 'K', value: 'v2', rotation: true },
    );
    assert.deepEqual(parseEvent({ event: 'secret.deleted', payload: { secretKey: 'K' } }), {
      kind: 'value',
      action: 'deleted',
      key: 'K',
    });
    // A deleted event never carries a value onward, even if the sender put one in.
    const del = parseEvent({
      event: 'secret.deleted',
      payload: { secretKey: 'K', secretValue: CANARY },
    });
    assert.ok(!JSON.stringify(del).includes(CANARY));
  });

  it('drops a non-boolean rotation flag instead of failing', () => {
    const ev = parseEvent({
      event: 'secret.rotated',
      payload: { secretKey: 'K', secretValue: 'v', rotation: 'yes' },
    });
    assert.ok(ev.kind === 'value' && !('rotation' in ev));
  });
});

describe('parseEvent: malformed bodies', () => {
  const cases: Array<[string, unknown, string, string?]> = [
    ['null', null, 'not-object'],
    ['array', [{ event: 'test' }], 'not-object'],
    ['string', 'secrets.modified', 'not-object'],
    ['no event', { project: {} }, 'missing-field', 'event'],
    ['event not a string', { event: 42 }, 'invalid-field', 'event'],
    ['empty event', { event: '  ' }, 'invalid-field', 'event'],
    ['modified without project', { event: 'secrets.modified' }, 'missing-field', 'project'],
    [
      'modified, project not object',
      { event: 'secrets.modified', project: [] },
      'invalid-field',
      'project',
    ],
    [
      'modified without projectId',
      { event: 'secrets.modified', project: { environment: 'e', secretPath: '/' } },
      'missing-field',
      'project.projectId',
    ],
    [
      'modified with a numeric projectId',
      { event: 'secrets.modified', project: { projectId: 7, environment: 'e', secretPath: '/' } },
      'invalid-field',
      'project.projectId',
    ],
    [
      'modified without environment',
      { event: 'secrets.modified', project: { projectId: 'p', secretPath: '/' } },
      'missing-field',
      'project.environment',
    ],
    [
      'modified without secretPath',
      { event: 'secrets.modified', project: { projectId: 'p', environment: 'e' } },
      'missing-field',
      'project.secretPath',
    ],
    [
      'modified with a relative secretPath',
      {
        event: 'secrets.modified',
        project: { projectId: 'p', environment: 'e', secretPath: 'api' },
      },
      'invalid-field',
      'project.secretPath',
    ],
    ['value event without payload', { event: 'secret.updated' }, 'missing-field', 'payload'],
    [
      'value event, payload a string',
      { event: 'secret.updated', payload: CANARY },
      'invalid-field',
      'payload',
    ],
    [
      'value event without secretKey',
      { event: 'secret.updated', payload: { secretValue: CANARY } },
      'missing-field',
      'payload.secretKey',
    ],
    [
      'value event with a numeric secretKey',
      { event: 'secret.created', payload: { secretKey: 1, secretValue: CANARY } },
      'invalid-field',
      'payload.secretKey',
    ],
    [
      'value event without secretValue',
      { event: 'secret.updated', payload: { secretKey: 'K' } },
      'missing-field',
      'payload.secretValue',
    ],
    [
      'value event with a null secretValue',
      { event: 'secret.rotated', payload: { secretKey: 'K', secretValue: null } },
      'missing-field',
      'payload.secretValue',
    ],
    [
      'value event with an object secretValue',
      { event: 'secret.updated', payload: { secretKey: 'K', secretValue: { v: CANARY } } },
      'invalid-field',
      'payload.secretValue',
    ],
    [
      'value event with a numeric secretValue',
      { event: 'secret.updated', payload: { secretKey: 'K', secretValue: 12345 } },
      'invalid-field',
      'payload.secretValue',
    ],
    [
      'value event with a relative secretPath',
      {
        event: 'secret.updated',
        payload: { secretKey: 'K', secretValue: CANARY, secretPath: 'db' },
      },
      'invalid-field',
      'payload.secretPath',
    ],
    [
      'value event with an empty environment',
      {
        event: 'secret.updated',
        payload: { secretKey: 'K', secretValue: CANARY, environment: '' },
      },
      'invalid-field',
      'payload.environment',
    ],
  ];
  for (const [name, body, reason, field] of cases) {
    it(name, () => assertMalformed(() => parseEvent(body), reason, field));
  }
});

describe('parseBody', () => {
  it('parses a JSON object from UTF-8 bytes, with or without a JSON content type', () => {
    const raw = Buffer.from(JSON.stringify(MODIFIED));
    assert.deepEqual(parseBody(raw), MODIFIED);
    assert.deepEqual(parseBody(raw, 'application/json'), MODIFIED);
    assert.deepEqual(parseBody(raw, 'application/json; charset=utf-8'), MODIFIED);
    assert.deepEqual(parseBody(raw, 'Application/JSON;charset="UTF-8"'), MODIFIED);
    assert.deepEqual(parseBody(raw, 'application/cloudevents+json'), MODIFIED);
    assert.deepEqual(parseBody(raw, ''), MODIFIED);
    assert.deepEqual(parseBody(Buffer.from(`\uFEFF${JSON.stringify(TEST)}`)), TEST);
    assert.deepEqual(parseBody(Buffer.from('{"k":"é✓"}')), { k: 'é✓' });
  });

  it('rejects other content types and charsets', () => {
    const raw = Buffer.from('{}');
    assertMalformed(() => parseBody(raw, 'text/plain'), 'content-type');
    assertMalformed(() => parseBody(raw, 'application/x-www-form-urlencoded'), 'content-type');
    assertMalformed(() => parseBody(raw, 'application/json; charset=latin1'), 'content-type');
  });

  it('rejects an empty body, invalid UTF-8 and invalid JSON without quoting the body', () => {
    assertMalformed(() => parseBody(Buffer.alloc(0)), 'empty-body');
    assertMalformed(
      () => parseBody(Buffer.concat([Buffer.from(`{"v":"${CANARY}`), Buffer.from([0xff, 0xfe])])),
      'invalid-utf8',
    );
    assertMalformed(() => parseBody(Buffer.from(`{"v": ${CANARY}}`)), 'invalid-json');
    assertMalformed(() => parseBody(Buffer.from(`{"v": "${CANARY}"`)), 'invalid-json');
    assertMalformed(() => parseBody(Buffer.from(`${CANARY}`)), 'invalid-json');
  });

  it('points at the failing position when the JSON engine reports one', () => {
    try {
      parseBody(Buffer.from('{"a": 1,, "b": 2}'));
      assert.fail('should have thrown');
    } catch (err) {
      assert.ok(err instanceof ReloaderError);
      assert.match(err.message, /not valid JSON \(at character 8\)/);
    }
  });

  it('rejects JSON that is not an object', () => {
    for (const text of ['[]', '"s"', '1', 'null', 'true']) {
      assertMalformed(() => parseBody(Buffer.from(text)), 'not-object');
    }
  });
});
