import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, errorOf, login, startServer } from './helpers.js';

type Secret = Record<string, unknown>;
const LISTED_KEYS = [
  'id',
  '_id',
  'workspace',
  'environment',
  'version',
  'type',
  'secretKey',
  'secretValue',
  'secretComment',
  'secretReminderNote',
  'secretReminderRepeatDays',
  'skipMultilineEncoding',
  'createdAt',
  'updatedAt',
  'actor',
  'isRotatedSecret',
  'rotationId',
  'secretPath',
  'secretValueHidden',
  'secretMetadata',
  'tags',
];

const values = (secrets: unknown) =>
  Object.fromEntries((secrets as Secret[]).map((s) => [s.secretKey as string, s.secretValue]));

test('v3 list: secretRawSchema shape, key order, no imports key when not asked', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  const res = await api(srv, '/v3/secrets/raw?workspaceId=proj-1&environment=dev', { token });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(Object.keys(res.json), ['secrets']);
  const [first] = res.json.secrets as Secret[];
  assert.deepEqual(Object.keys(first!), LISTED_KEYS);
  assert.equal(first!.id, first!._id);
  assert.match(first!.id as string, /^[0-9a-f-]{36}$/);
  assert.deepEqual(
    { ...first, id: 'x', _id: 'x', createdAt: 'c', updatedAt: 'u' },
    {
      id: 'x',
      _id: 'x',
      workspace: 'proj-1',
      environment: 'dev',
      version: 1,
      type: 'shared',
      secretKey: 'DB_USER',
      secretValue: 'app',
      secretComment: '',
      secretReminderNote: null,
      secretReminderRepeatDays: null,
      skipMultilineEncoding: false,
      createdAt: 'c',
      updatedAt: 'u',
      actor: null,
      isRotatedSecret: false,
      rotationId: null,
      secretPath: '/',
      secretValueHidden: false,
      secretMetadata: [],
      tags: [],
    },
  );
  assert.match(first!.createdAt as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(values(res.json.secrets), {
    DB_USER: 'app',
    DB_PASSWORD: 'pw',
    DSN: 'postgres://${DB_USER}:${DB_PASSWORD}@db/${dev.api.API_KEY}',
    SHARED_OVERRIDE: 'own',
  });
});

test('expandSecretReferences, trailing slash, recursive with secretPath on each secret', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  const expanded = await api(
    srv,
    '/v4/secrets?projectId=proj-1&environment=dev&expandSecretReferences=true',
    { token },
  );
  assert.equal(values(expanded.json.secrets).DSN, 'postgres://app:pw@db/k1');
  const sub = await api(srv, '/v4/secrets?projectId=proj-1&environment=dev&secretPath=/api/', {
    token,
  });
  assert.deepEqual(values(sub.json.secrets), { API_KEY: 'k1' });
  const rec = await api(
    srv,
    '/v4/secrets?projectId=proj-1&environment=dev&secretPath=/api&recursive=true',
    { token },
  );
  assert.deepEqual(
    (rec.json.secrets as Secret[]).map((s) => `${s.secretPath as string}:${s.secretKey as string}`),
    ['/api:API_KEY', '/api/billing:BILLING'],
  );
  const all = await api(srv, '/v4/secrets?projectId=proj-1&environment=dev&recursive=true', {
    token,
  });
  assert.equal((all.json.secrets as Secret[]).length, 10);
});

test('include_imports: nested imports flattened, expanded; the includeImports spelling is ignored', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  const res = await api(
    srv,
    '/v3/secrets/raw?workspaceId=proj-1&environment=dev&include_imports=true',
    { token },
  );
  const imports = res.json.imports as Secret[];
  assert.equal(imports.length, 1);
  const imp = imports[0]!;
  assert.deepEqual(Object.keys(imp), ['secretPath', 'environment', 'folderId', 'secrets']);
  assert.equal(imp.secretPath, '/shared');
  assert.equal(imp.environment, 'dev');
  const isecrets = imp.secrets as Secret[];
  assert.deepEqual(Object.keys(isecrets[0]!), [
    'id',
    '_id',
    'workspace',
    'environment',
    'version',
    'type',
    'secretKey',
    'secretValue',
    'secretComment',
    'skipMultilineEncoding',
    'secretValueHidden',
    'secretMetadata',
  ]);
  assert.equal(isecrets[0]!.workspace, '');
  assert.deepEqual(values(isecrets), {
    REDIS_URL: 'redis://r',
    SHARED_OVERRIDE: 'shared',
    FROM_COMMON: '${COMMON}', // expanded in /shared, where COMMON does not exist
    COMMON: 'c1', // from /shared's own import of /common
  });
  const alias = await api(srv, '/v4/secrets?projectId=proj-1&environment=dev&includeImports=true', {
    token,
  });
  assert.equal(alias.json.imports, undefined, 'only include_imports is read');
});

test('viewSecretValue=false hides values everywhere', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  const res = await api(
    srv,
    '/v3/secrets/raw?workspaceId=proj-1&environment=dev&viewSecretValue=false&include_imports=true&expandSecretReferences=true',
    { token },
  );
  for (const s of res.json.secrets as Secret[]) {
    assert.equal(s.secretValue, '<hidden-by-infisical>');
    assert.equal(s.secretValueHidden, true);
  }
  const imp = (res.json.imports as Secret[])[0]!;
  assert.ok(
    (imp.secrets as Secret[]).every(
      (s) => s.secretValue === '<hidden-by-infisical>' && s.secretValueHidden === true,
    ),
  );
});

test('missing folder/env lists nothing; recursive on a missing env is 404; bad path 400', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  assert.deepEqual(
    (await api(srv, '/v4/secrets?projectId=proj-1&environment=dev&secretPath=/nope', { token }))
      .json,
    { secrets: [] },
  );
  assert.deepEqual(
    (await api(srv, '/v4/secrets?projectId=proj-1&environment=qa', { token })).json,
    { secrets: [] },
  );
  assert.deepEqual(
    errorOf(
      await api(srv, '/v4/secrets?projectId=proj-1&environment=qa&recursive=true', { token }),
    ),
    {
      statusCode: 404,
      message: "Environment with slug 'qa' in project with ID proj-1 not found",
      error: 'NotFound',
    },
  );
  assert.deepEqual(
    errorOf(
      await api(srv, '/v4/secrets?projectId=proj-1&environment=dev&secretPath=/a%20b', { token }),
    ),
    {
      statusCode: 400,
      message:
        'Invalid secret path. Only alphanumeric characters, dashes, and underscores are allowed.',
      error: 'BadRequest',
    },
  );
});

test('project resolution, membership and 400s in router order', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  const bySlug = await api(srv, '/v3/secrets/raw?workspaceSlug=payments&environment=prod', {
    token,
  });
  assert.deepEqual(values(bySlug.json.secrets), { DB_USER: 'prod-app' });
  assert.deepEqual(errorOf(await api(srv, '/v3/secrets/raw?environment=dev', { token })), {
    statusCode: 400,
    message: 'You must provide projectSlug or workspaceId',
    error: 'BadRequest',
  });
  assert.equal(
    (await api(srv, '/v3/secrets/raw?workspaceId=proj-1', { token })).json.message,
    'Missing project id or environment',
  );
  assert.equal(
    (await api(srv, '/v4/secrets?environment=dev', { token })).json.message,
    'Missing project id or environment',
  );
  assert.deepEqual(
    errorOf(await api(srv, '/v4/secrets?projectId=nope&environment=dev', { token })),
    {
      statusCode: 403,
      message: 'You are not allowed to access this resource',
      error: "Identity is not a member of the specified project with ID 'nope'",
    },
  );
  const other = await login(srv, 'cid2', 'csec2');
  assert.equal(
    (await api(srv, '/v4/secrets?projectId=proj-1&environment=dev', { token: other })).status,
    403,
  );
  assert.equal(
    (await api(srv, '/v4/secrets?projectId=proj-2&environment=dev', { token: other })).status,
    200,
  );
});

test('422 lists every bad query field in schema order', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  const res = await api(
    srv,
    '/v3/secrets/raw?workspaceId=proj-1&environment=dev&environment=prod&recursive=1&include_imports=TRUE',
    { token },
  );
  assert.deepEqual(errorOf(res), {
    statusCode: 422,
    error: 'ValidationFailure',
    message: [
      {
        code: 'invalid_type',
        expected: 'string',
        received: 'array',
        path: ['environment'],
        message: 'Expected string, received array',
      },
      {
        received: '1',
        code: 'invalid_enum_value',
        options: ['true', 'false'],
        path: ['recursive'],
        message: "Invalid enum value. Expected 'true' | 'false', received '1'",
      },
      {
        received: 'TRUE',
        code: 'invalid_enum_value',
        options: ['true', 'false'],
        path: ['include_imports'],
        message: "Invalid enum value. Expected 'true' | 'false', received 'TRUE'",
      },
    ],
  });
  const v4 = await api(srv, '/v4/secrets/DB_USER?environment=dev&version=abc&type=team', { token });
  assert.deepEqual(
    (v4.json.message as Secret[]).map((i) => i.path),
    [['projectId'], ['version'], ['type']],
  );
});

test('single secret v3/v4: shape, expansion, versions, imports, not found', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  const v3 = await api(
    srv,
    '/v3/secrets/raw/DSN?workspaceId=proj-1&environment=dev&expandSecretReferences=true',
    { token },
  );
  assert.equal(v3.status, 200, v3.text);
  const s = v3.json.secret as Secret;
  assert.deepEqual(Object.keys(s), [
    ...LISTED_KEYS.slice(0, 17),
    'secretValueHidden',
    'secretPath',
    'tags',
    'secretMetadata',
  ]);
  assert.equal(s.secretValue, 'postgres://app:pw@db/k1');
  srv.setSecret({
    projectId: 'proj-1',
    environment: 'dev',
    path: '/api',
    key: 'API_KEY',
    value: 'k2',
  });
  const v4 = await api(
    srv,
    '/v4/secrets/API_KEY?projectId=proj-1&environment=dev&secretPath=/api',
    { token },
  );
  assert.equal((v4.json.secret as Secret).secretValue, 'k2');
  assert.equal((v4.json.secret as Secret).version, 2);
  const old = await api(
    srv,
    '/v4/secrets/API_KEY?projectId=proj-1&environment=dev&secretPath=/api&version=1',
    { token },
  );
  assert.equal((old.json.secret as Secret).secretValue, 'k1');
  const imported = await api(
    srv,
    '/v4/secrets/REDIS_URL?projectId=proj-1&environment=dev&include_imports=true',
    { token },
  );
  assert.deepEqual(
    {
      v: (imported.json.secret as Secret).secretValue,
      p: (imported.json.secret as Secret).secretPath,
    },
    { v: 'redis://r', p: '/shared' },
  );
  assert.deepEqual(
    errorOf(await api(srv, '/v4/secrets/REDIS_URL?projectId=proj-1&environment=dev', { token })),
    {
      statusCode: 404,
      message: "Secret with name 'REDIS_URL' not found",
      error: 'NotFound',
    },
  );
  assert.deepEqual(
    errorOf(
      await api(srv, '/v4/secrets/X?projectId=proj-1&environment=dev&secretPath=/nope', { token }),
    ),
    {
      statusCode: 404,
      message: "Folder with path '/nope' in environment with slug 'dev' not found",
      error: 'GetSecretByName',
    },
  );
  assert.equal(
    (await api(srv, '/v3/secrets/raw/X?workspaceId=proj-1', { token })).json.message,
    'Missing environment',
  );
  const hidden = await api(
    srv,
    '/v4/secrets/DB_USER?projectId=proj-1&environment=dev&viewSecretValue=false',
    { token },
  );
  assert.equal((hidden.json.secret as Secret).secretValue, '<hidden-by-infisical>');
});

test('ETag and If-None-Match 304 like @fastify/etag', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  const path = '/v4/secrets?projectId=proj-1&environment=dev';
  const a = await api(srv, path, { token });
  const etag = a.headers.get('etag')!;
  assert.equal((await api(srv, path, { token })).headers.get('etag'), etag, 'same body, same etag');
  const cached = await api(srv, path, { token, headers: { 'if-none-match': etag } });
  assert.equal(cached.status, 304);
  assert.equal(cached.text, '');
  srv.setSecret({
    projectId: 'proj-1',
    environment: 'dev',
    path: '/',
    key: 'DB_USER',
    value: 'app2',
  });
  const changed = await api(srv, path, { token, headers: { 'if-none-match': etag } });
  assert.equal(changed.status, 200);
  assert.notEqual(changed.headers.get('etag'), etag);
});

test('requests are recorded with route patterns; unknown routes are fastify 404s', async (t) => {
  const srv = await startServer(t);
  const token = await login(srv);
  srv.clearRequests();
  await api(srv, '/v4/secrets/DB_USER?projectId=proj-1&environment=dev', { token });
  const nf = await api(srv, '/v9/nothing');
  assert.deepEqual(nf.json, {
    message: 'Route GET:/api/v9/nothing not found',
    error: 'Not Found',
    statusCode: 404,
  });
  assert.deepEqual(
    srv.requests.map((r) => `${r.route} ${r.status}`),
    ['GET /api/v4/secrets/:secretName 200', 'GET /api/v9/nothing 404'],
  );
});

test('mutation API: paths normalised, bad paths refused, issueAccessToken works without login', async (t) => {
  const srv = await startServer(t);
  const token = srv.issueAccessToken({ identityId: 'ident-1', ttl: 30 });
  srv.setSecret({
    projectId: 'proj-1',
    environment: 'dev',
    path: '/new/deep/',
    key: 'K',
    value: 'v',
  });
  const res = await api(srv, '/v4/secrets?projectId=proj-1&environment=dev&secretPath=/new/deep', {
    token,
  });
  assert.deepEqual(values(res.json.secrets), { K: 'v' });
  assert.throws(
    () =>
      srv.setSecret({ projectId: 'proj-1', environment: 'dev', path: 'api', key: 'K', value: 'v' }),
    /bad folder path api/,
  );
  assert.throws(
    () =>
      srv.setSecret({ projectId: 'proj-1', environment: 'qa', path: '/', key: 'K', value: 'v' }),
    /no environment qa in project proj-1/,
  );
  srv.replaceFolder({
    projectId: 'proj-1',
    environment: 'dev',
    path: '/api',
    secrets: { OTHER: 'o' },
  });
  const api2 = await api(srv, '/v4/secrets?projectId=proj-1&environment=dev&secretPath=/api', {
    token,
  });
  assert.deepEqual(values(api2.json.secrets), { OTHER: 'o' });
  assert.throws(() => srv.issueAccessToken({ identityId: 'nobody' }), /no identity nobody/);
});
