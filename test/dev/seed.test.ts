import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hasCode, SpecError } from '../../src/errors.js';
import { DEFAULT_IDENTITY, loadSeedFile, parseSeed } from '../../src/dev/seed.js';
import { SEED_YAML } from './helpers.js';

test('flat form goes into the defaults, scalars keep their source text', () => {
  const seed = parseSeed(
    'A: x\nPORT: 5432\nRATE: 1.50\nON: true\nEMPTY:\nBIG: 12345678901234567890\n',
    's.yaml',
    {
      projectId: 'p9',
      environment: 'prod',
      path: '/api/',
    },
  );
  assert.equal(seed.projects.length, 1);
  const p = seed.projects[0]!;
  assert.equal(p.id, 'p9');
  assert.equal(p.environments[0]!.slug, 'prod');
  assert.equal(p.environments[0]!.name, 'Production');
  const api = p.environments[0]!.folders.find((f) => f.path === '/api');
  assert.deepEqual(api?.secrets, {
    A: 'x',
    PORT: '5432',
    RATE: '1.50',
    ON: 'true',
    EMPTY: '',
    BIG: '12345678901234567890',
  });
  assert.ok(
    p.environments[0]!.folders.some((f) => f.path === '/'),
    'root folder always exists',
  );
  assert.deepEqual(seed.identities, [DEFAULT_IDENTITY]);
});

test('flat form without defaults uses local-project/dev//', () => {
  const seed = parseSeed('K: v', 's.yaml');
  assert.equal(seed.projects[0]!.id, 'local-project');
  assert.equal(seed.projects[0]!.environments[0]!.slug, 'dev');
  assert.deepEqual(seed.projects[0]!.environments[0]!.folders[0], {
    path: '/',
    secrets: { K: 'v' },
    imports: [],
  });
});

test('full form: projects, folders, imports, identities with defaults', () => {
  const seed = parseSeed(SEED_YAML, 'seed.yaml');
  const p = seed.projects[0]!;
  assert.equal(p.name, 'Payments');
  assert.equal(p.slug, 'payments');
  const dev = p.environments[0]!;
  assert.equal(dev.name, 'Development');
  assert.deepEqual(dev.folders.find((f) => f.path === '/')?.imports, [
    { environment: 'dev', path: '/shared' },
  ]);
  assert.equal(seed.projects[1]!.slug, 'other');
  const id1 = seed.identities[0]!;
  assert.deepEqual(id1.kubernetes, {
    allowedNamespaces: 'default,team-*',
    allowedNames: 'reloader,web-*',
    allowedAudience: '',
  });
  assert.equal(id1.universal?.lockout && id1.universal.lockout.threshold, 3);
  assert.equal(seed.identities[2]!.universal?.lockout, false);
  assert.deepEqual(seed.identities[2]!.projects, ['proj-2']);
});

function specError(fn: () => unknown): SpecError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SpecError, `expected SpecError, got ${String(err)}`);
    return err;
  }
  assert.fail('no error thrown');
}

test('errors name the file, the YAML path and the line', () => {
  const e1 = specError(() => parseSeed('A: x\nB: [1, 2]\n', 'flat.yaml'));
  assert.match(e1.message, /^flat\.yaml:2: B: a secret value must be a string, number or boolean$/);
  const e2 = specError(() =>
    parseSeed(
      'projects:\n  - id: p\n    environments:\n      - slug: dev\n        folders:\n          api: { K: v }\n',
      'full.yaml',
    ),
  );
  assert.match(
    e2.message,
    /^full\.yaml:6: projects\[0\]\.environments\[0\]\.folders\.api: must be a folder path/,
  );
  const e3 = specError(() =>
    parseSeed('identities:\n  - id: x\n    universal: { clientId: a }\n', 'id.yaml'),
  );
  assert.match(
    e3.message,
    /^id\.yaml:3: identities\[0\]\.universal\.clientSecret: must be a non-empty string$/,
  );
  const e4 = specError(() =>
    parseSeed(
      'identities:\n  - id: x\n    accessTokenTTL: 10\n    accessTokenMaxTTL: 5\n',
      'ttl.yaml',
    ),
  );
  assert.match(
    e4.message,
    /accessTokenTTL: Access Token TTL cannot be greater than Access Token Max TTL\./,
  );
  const e5 = specError(() => parseSeed('projects: []\ncolour: red\n', 'k.yaml'));
  assert.match(e5.message, /^k\.yaml:2: colour: unknown key$/);
  const e6 = specError(() => parseSeed('A: 1\nA: 2\n', 'dup.yaml'));
  assert.match(e6.message, /^dup\.yaml:2: \(root\): Map keys must be unique/);
  const e7 = specError(() =>
    parseSeed(
      'projects:\n  - id: p\n    environments:\n      - slug: dev\n        imports:\n          /: [ { environment: qa, path: /x } ]\n',
      'imp.yaml',
    ),
  );
  assert.match(e7.message, /imported environment qa is not in project p/);
  const e8 = specError(() => parseSeed('"BAD KEY": v\n', 'key.yaml'));
  assert.match(e8.message, /BAD KEY: a secret name cannot be empty or contain spaces/);
  assert.equal(e8.exitCode, 2);
});

test('loadSeedFile reads a file and names it when unreadable', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'seed-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'secrets.yaml');
  await writeFile(file, 'K: v\n');
  const seed = await loadSeedFile(file, { projectId: 'abc' });
  assert.equal(seed.file, file);
  assert.equal(seed.projects[0]!.id, 'abc');
  await assert.rejects(loadSeedFile(join(dir, 'missing.yaml')), (err: unknown) => {
    assert.ok(hasCode(err, 'RLD_ERR_SPEC'));
    assert.match((err as Error).message, /missing\.yaml/);
    return true;
  });
});
