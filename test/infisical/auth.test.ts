import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import {
  TokenManager,
  type TokenChange,
  type TokenManagerOptions,
} from '../../src/infisical/auth.js';
import { InfisicalClient } from '../../src/infisical/client.js';
import { ReloaderError } from '../../src/errors.js';
import { Scrubber, silentLogger } from '../../src/logger.js';
import type { AuthSpec, SourceSpec } from '../../src/config/types.js';
import {
  FakeClock,
  infisicalError,
  json,
  scriptedServer,
  waitFor,
  type Seen,
} from './scripted-server.js';

const SOURCE: SourceSpec = {
  projectId: 'proj-1',
  environment: 'prod',
  path: '/',
  recursive: false,
  includeImports: false,
  expandReferences: false,
};

/**
 * A small scripted Infisical issuing `tok-1`, `tok-2`, … on login and renew. Each route can be
 * overridden per test; `list` answers 200 with one secret unless `listAnswer` says otherwise.
 */
interface Fake {
  url: string;
  seen: Seen[];
  calls: (kind?: string) => Seen[];
  issued: number;
  ttlS: number;
  maxTtlS: number;
  loginDelayMs: number;
  renewAnswer?: (req: Seen, res: ServerResponse) => boolean;
  listAnswer?: (token: string, res: ServerResponse) => boolean;
}

function kindOf(s: Seen): string {
  if (s.path.endsWith('/kubernetes-auth/login') || s.path.endsWith('/universal-auth/login')) {
    return 'login';
  }
  if (s.path.endsWith('/token/renew')) return 'renew';
  if (s.path.endsWith('/token/revoke')) return 'revoke';
  return 'list';
}

async function fakeInfisical(t: TestContext, ttlS: number, maxTtlS: number): Promise<Fake> {
  const fake: Fake = {
    url: '',
    seen: [],
    calls: (kind) => fake.seen.filter((s) => kind === undefined || kindOf(s) === kind),
    issued: 0,
    ttlS,
    maxTtlS,
    loginDelayMs: 0,
  };
  const grant = () => ({
    accessToken: `tok-${++fake.issued}`,
    expiresIn: fake.ttlS,
    accessTokenMaxTTL: fake.maxTtlS,
    tokenType: 'Bearer',
  });
  const srv = await scriptedServer(t, async (req, res) => {
    const kind = kindOf(req);
    if (kind === 'login') {
      if (fake.loginDelayMs > 0) await new Promise((r) => setTimeout(r, fake.loginDelayMs));
      json(res, 200, grant());
    } else if (kind === 'renew') {
      if (!fake.renewAnswer?.(req, res)) json(res, 200, grant());
    } else if (kind === 'revoke') {
      json(res, 200, { message: 'Successfully revoked access token' });
    } else {
      const token = String(req.headers['authorization']).replace(/^Bearer /, '');
      if (!fake.listAnswer?.(token, res)) {
        json(res, 200, { secrets: [{ secretKey: 'SEEN_WITH', secretValue: token }] });
      }
    }
  });
  fake.url = srv.url;
  fake.seen = srv.seen;
  return fake;
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'rld-auth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function newClient(t: TestContext, url: string, attempts = 1): InfisicalClient {
  const client = new InfisicalClient({
    baseUrl: url,
    timeoutMs: 2000,
    retry: { attempts, baseDelayMs: 5, maxDelayMs: 10 },
    scrubber: new Scrubber(),
  });
  t.after(() => client.close());
  return client;
}

function manager(
  t: TestContext,
  client: InfisicalClient,
  auth: AuthSpec,
  extra: Partial<TokenManagerOptions> = {},
): { tm: TokenManager; changes: TokenChange[] } {
  const changes: TokenChange[] = [];
  const tm = new TokenManager({
    client,
    auth,
    renewAt: 0.8,
    logger: silentLogger(),
    scrubber: new Scrubber(),
    onChange: (c) => changes.push(c),
    ...extra,
  });
  t.after(() => tm.stop());
  return { tm, changes };
}

const describe = (fake: Fake, clock?: FakeClock) => () =>
  `${fake.seen.map((s) => kindOf(s)).join(',')}${clock ? ` armed=${clock.armed().join(',')}` : ''}`;

test('fake clock: renew at 80 % of the TTL, use the renewed token, re-login when a full TTL no longer fits, re-read the SA token', async (t) => {
  const dir = tempDir(t);
  const saPath = join(dir, 'token');
  writeFileSync(saPath, 'jwt-A\n');
  const fake = await fakeInfisical(t, 20, 50);
  const clock = new FakeClock();
  const T = clock.t;
  const client = newClient(t, fake.url);
  const { tm, changes } = manager(
    t,
    client,
    { kind: 'kubernetes', identityId: 'id-1', tokenPath: saPath },
    { timers: clock.timers },
  );
  tm.start();
  assert.deepEqual(clock.armed(), [], 'no timer before the first login');
  assert.equal(tm.expiresAtMs(), undefined);

  // (1) lazy login, SA token read and trimmed
  assert.equal(await tm.token(), 'tok-1');
  assert.deepEqual(fake.calls('login')[0]!.body, { identityId: 'id-1', jwt: 'jwt-A' });
  assert.equal(tm.expiresAtMs(), T + 20000);
  assert.deepEqual(clock.armed(), [T + 16000], 'renew due at 80 % of 20 s');
  assert.deepEqual(changes, [{ kind: 'login', expiresAtMs: T + 20000 }]);

  // (4) renew at 16 s: 16 + 20 ≤ 50 fits
  clock.advanceTo(T + 15999);
  assert.equal(fake.calls('renew').length, 0, 'nothing before the due time');
  clock.advanceTo(T + 16000);
  await waitFor(() => changes.length === 2, describe(fake, clock));
  const renew = fake.calls('renew')[0]!;
  assert.deepEqual(renew.body, { accessToken: 'tok-1' });
  assert.equal(renew.headers['authorization'], undefined);
  assert.deepEqual(changes[1], { kind: 'renew', expiresAtMs: T + 36000 });
  assert.equal(await tm.token(), 'tok-2', 'the token the renew returned is kept');
  assert.deepEqual(clock.armed(), [T + 32000]);

  // (4) at 32 s, 32 + 20 > 50: a renew would be refused, so log in again (re-reading the file)
  writeFileSync(saPath, '  jwt-B  \n');
  clock.advanceTo(T + 32000);
  await waitFor(() => changes.length === 3, describe(fake, clock));
  assert.equal(changes[2]!.kind, 'login');
  assert.deepEqual(fake.calls('login')[1]!.body, { identityId: 'id-1', jwt: 'jwt-B' });
  assert.equal(fake.calls('renew').length, 1, 'no renew attempted past the max TTL');
  assert.equal(tm.expiresAtMs(), T + 52000, 'a new chain: max TTL counts from the new login');
  assert.deepEqual(clock.armed(), [T + 48000]);

  const listing = await tm.withToken((tok) => client.listSecrets(SOURCE, tok));
  assert.equal(listing.secrets.get('SEEN_WITH'), 'tok-3');
  assert.deepEqual(
    fake.seen.map(kindOf),
    ['login', 'renew', 'login', 'list'],
    'exactly these calls, in this order',
  );
});

test('fake clock: when max TTL is shorter than the TTL the token expires at the max TTL', async (t) => {
  const fake = await fakeInfisical(t, 10, 4);
  const clock = new FakeClock();
  const T = clock.t;
  const client = newClient(t, fake.url);
  const { tm } = manager(
    t,
    client,
    { kind: 'universal', clientId: 'c', clientSecret: 's3cret' },
    {
      timers: clock.timers,
    },
  );
  tm.start();
  await tm.token();
  assert.equal(tm.expiresAtMs(), T + 4000);
  assert.deepEqual(clock.armed(), [T + 3200]);
  clock.advanceTo(T + 3200);
  await waitFor(() => fake.calls('login').length === 2, describe(fake, clock));
  assert.equal(fake.calls('renew').length, 0);
});

test('fake clock: max TTL 0 renews forever; TTL 0 arms no timer at all', async (t) => {
  const fake = await fakeInfisical(t, 10, 0);
  const clock = new FakeClock();
  const T = clock.t;
  const client = newClient(t, fake.url);
  const { tm, changes } = manager(
    t,
    client,
    { kind: 'universal', clientId: 'c', clientSecret: 's3cret' },
    {
      timers: clock.timers,
    },
  );
  tm.start();
  await tm.token();
  for (let i = 1; i <= 3; i++) {
    clock.advanceTo(T + i * 8000);
    await waitFor(() => changes.length === i + 1, describe(fake, clock));
  }
  assert.deepEqual(fake.seen.map(kindOf), ['login', 'renew', 'renew', 'renew']);
  assert.equal(await tm.token(), 'tok-4');

  const fake0 = await fakeInfisical(t, 0, 0);
  const clock0 = new FakeClock();
  const m0 = manager(
    t,
    newClient(t, fake0.url),
    { kind: 'universal', clientId: 'c', clientSecret: 's3cret' },
    {
      timers: clock0.timers,
    },
  );
  m0.tm.start();
  assert.equal(await m0.tm.token(), 'tok-1');
  assert.deepEqual(clock0.armed(), []);
  assert.equal(m0.tm.expiresAtMs(), undefined);
  assert.deepEqual(m0.changes, [{ kind: 'login', expiresAtMs: undefined }]);
  clock0.advanceTo(clock0.t + 365 * 86_400_000);
  assert.equal(await m0.tm.token(), 'tok-1', 'still the same token a year later');
});

test('fake clock: a renew refused with 401 falls back to one fresh login', async (t) => {
  const fake = await fakeInfisical(t, 10, 100);
  fake.renewAnswer = (_req, res) => {
    infisicalError(res, 401, 'UnauthorizedError', 'No identity access token found');
    return true;
  };
  const clock = new FakeClock();
  const client = newClient(t, fake.url);
  const { tm, changes } = manager(
    t,
    client,
    { kind: 'universal', clientId: 'c', clientSecret: 's3cret' },
    {
      timers: clock.timers,
    },
  );
  tm.start();
  await tm.token();
  clock.advanceTo(clock.t + 8000);
  await waitFor(() => changes.length === 2, describe(fake, clock));
  assert.deepEqual(fake.seen.map(kindOf), ['login', 'renew', 'login']);
  assert.equal(await tm.token(), 'tok-2');
});

test('fake clock: renew failures back off (1 s, 2 s) without spinning, then succeed; past expiry it logs in', async (t) => {
  const fake = await fakeInfisical(t, 100, 0);
  let failuresLeft = 2;
  fake.renewAnswer = (_req, res) => {
    if (failuresLeft-- <= 0) return false;
    infisicalError(res, 503, 'ServiceUnavailable', 'down');
    return true;
  };
  const clock = new FakeClock();
  const T = clock.t;
  const client = newClient(t, fake.url);
  const { tm, changes } = manager(
    t,
    client,
    { kind: 'universal', clientId: 'c', clientSecret: 's3cret' },
    {
      timers: clock.timers,
      // no jitter: the test reads the exact due times
      backoff: { baseMs: 1000, maxMs: 30_000, jitter: 0 },
    },
  );
  tm.start();
  await tm.token();
  clock.advanceTo(T + 80_000);
  await waitFor(() => clock.armed()[0] === T + 81_000, describe(fake, clock));
  assert.equal(fake.calls('renew').length, 1, 'one renew, then a single timer 1 s later');
  clock.advanceTo(T + 81_000);
  await waitFor(() => clock.armed()[0] === T + 83_000, describe(fake, clock));
  assert.equal(fake.calls('renew').length, 2);
  clock.advanceTo(T + 83_000);
  await waitFor(() => changes.length === 2, describe(fake, clock));
  assert.equal(changes[1]!.kind, 'renew');
  assert.equal(await tm.token(), 'tok-2');

  // Infisical down until the token has expired: the next step is a login, not a renew.
  const fake2 = await fakeInfisical(t, 2, 0);
  fake2.renewAnswer = (_req, res) => {
    infisicalError(res, 502, 'BadGateway', 'down');
    return true;
  };
  const clock2 = new FakeClock();
  const m2 = manager(
    t,
    newClient(t, fake2.url),
    { kind: 'universal', clientId: 'c', clientSecret: 's3cret' },
    {
      timers: clock2.timers,
    },
  );
  m2.tm.start();
  await m2.tm.token();
  clock2.advanceTo(clock2.t + 1600);
  await waitFor(
    () => clock2.armed().length === 1 && fake2.calls('renew').length === 1,
    describe(fake2, clock2),
  );
  clock2.advanceTo(clock2.armed()[0]!); // 2.6 s: past the 2 s expiry
  await waitFor(() => m2.changes.length === 2, describe(fake2, clock2));
  assert.deepEqual(fake2.seen.map(kindOf), ['login', 'renew', 'login']);
});

test('concurrent token() callers share one login', async (t) => {
  const fake = await fakeInfisical(t, 60, 0);
  fake.loginDelayMs = 50;
  const { tm } = manager(t, newClient(t, fake.url), {
    kind: 'universal',
    clientId: 'c',
    clientSecret: 's3cret',
  });
  const tokens = await Promise.all([tm.token(), tm.token(), tm.token(), tm.token()]);
  assert.deepEqual(tokens, ['tok-1', 'tok-1', 'tok-1', 'tok-1']);
  assert.equal(fake.calls('login').length, 1);
});

test('withToken: on 403 TokenError it logs in once and retries once; concurrent rejections share the login', async (t) => {
  const fake = await fakeInfisical(t, 60, 0);
  const rejected = new Set(['tok-1']);
  fake.listAnswer = (token, res) => {
    if (!rejected.has(token)) return false;
    infisicalError(res, 403, 'TokenError', 'Your token has expired. Please re-authenticate.');
    return true;
  };
  const client = newClient(t, fake.url);
  const { tm } = manager(t, client, { kind: 'universal', clientId: 'c', clientSecret: 's3cret' });
  const list = () => tm.withToken((tok) => client.listSecrets(SOURCE, tok));

  const [a, b] = await Promise.all([list(), list()]);
  assert.equal(a.secrets.get('SEEN_WITH'), 'tok-2');
  assert.equal(b.secrets.get('SEEN_WITH'), 'tok-2');
  assert.equal(fake.calls('login').length, 2, 'one initial login + one shared re-login');
  assert.equal(fake.calls('list').length, 4);

  // A token that keeps being rejected: one re-login, one retry, then the error — no loop.
  rejected.add('tok-2').add('tok-3');
  let err: unknown;
  try {
    await list();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ReloaderError && err.code === 'RLD_ERR_TOKEN', String(err));
  assert.equal(fake.calls('login').length, 3);
  assert.equal(fake.calls('list').length, 6);

  // Other errors are not a reason to log in again.
  fake.listAnswer = (_token, res) => {
    infisicalError(res, 403, 'PermissionDenied', 'You are not allowed to read secrets');
    return true;
  };
  await assert.rejects(
    list(),
    (e: unknown) => e instanceof ReloaderError && e.code === 'RLD_ERR_INFISICAL_HTTP',
  );
  assert.equal(fake.calls('login').length, 3);
});

test('kubernetes credential problems are RLD_ERR_AUTH naming the path, never the content', async (t) => {
  const dir = tempDir(t);
  const fake = await fakeInfisical(t, 60, 0);
  const client = newClient(t, fake.url);
  const missing = join(dir, 'nope', 'token');
  const m1 = manager(t, client, { kind: 'kubernetes', identityId: 'id', tokenPath: missing });
  await assert.rejects(m1.tm.token(), (e: unknown) => {
    assert.ok(e instanceof ReloaderError && e.code === 'RLD_ERR_AUTH', String(e));
    assert.ok(e.message.includes(missing) && e.message.includes('ENOENT'), e.message);
    return true;
  });

  const empty = join(dir, 'empty');
  writeFileSync(empty, ' \n');
  const m2 = manager(t, client, { kind: 'kubernetes', identityId: 'id', tokenPath: empty });
  await assert.rejects(m2.tm.token(), /RLD_ERR_AUTH|is empty/);

  const JWT = 'CANARY-SA-JWT-eyJhbGciOi';
  const canary = join(dir, 'canary');
  writeFileSync(canary, JWT);
  fake.loginDelayMs = 0;
  const refusing = await scriptedServer(t, (req, res) =>
    infisicalError(res, 401, 'UnauthorizedError', `Access denied for ${req.raw}`),
  );
  const m3 = manager(t, newClient(t, refusing.url), {
    kind: 'kubernetes',
    identityId: 'id',
    tokenPath: canary,
  });
  await assert.rejects(m3.tm.token(), (e: unknown) => {
    assert.ok(e instanceof ReloaderError && e.code === 'RLD_ERR_AUTH', String(e));
    assert.ok(!`${e.message}${JSON.stringify(e.toJSON())}`.includes(JWT), e.message);
    return true;
  });
  assert.equal((refusing.seen[0]!.body as { jwt: string }).jwt, JWT, 'the JWT was sent');
  assert.equal(fake.calls('login').length, 0);
});

test('universal: the client secret file is re-read at every login', async (t) => {
  const dir = tempDir(t);
  const secretFile = join(dir, 'client-secret');
  writeFileSync(secretFile, 'secret-one\n');
  const fake = await fakeInfisical(t, 2, 2);
  const clock = new FakeClock();
  const { tm, changes } = manager(
    t,
    newClient(t, fake.url),
    { kind: 'universal', clientId: 'cid', clientSecretFile: secretFile },
    { timers: clock.timers },
  );
  tm.start();
  await tm.token();
  writeFileSync(secretFile, 'secret-two\n');
  clock.advanceTo(clock.t + 1600); // 1.6 + 2 > 2: log in again
  await waitFor(() => changes.length === 2, describe(fake, clock));
  assert.deepEqual(
    fake.calls('login').map((s) => s.body),
    [
      { clientId: 'cid', clientSecret: 'secret-one' },
      { clientId: 'cid', clientSecret: 'secret-two' },
    ],
  );
});

test('static token: never logs in or renews; tokenFile is re-read; withToken retries once with a changed file', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'access-token');
  writeFileSync(file, 'static-one\n');
  const fake = await fakeInfisical(t, 60, 0);
  const rejected = new Set(['static-one']);
  fake.listAnswer = (token, res) => {
    if (!rejected.has(token)) return false;
    infisicalError(res, 401, 'UnauthorizedError', 'No identity access token found');
    return true;
  };
  const clock = new FakeClock();
  const client = newClient(t, fake.url);
  const { tm, changes } = manager(
    t,
    client,
    { kind: 'token', tokenFile: file },
    {
      timers: clock.timers,
    },
  );
  tm.start();
  assert.equal(await tm.token(), 'static-one');
  assert.deepEqual(clock.armed(), []);
  writeFileSync(file, 'static-two');
  assert.equal(await tm.token(), 'static-two');

  writeFileSync(file, 'static-one');
  const pending = tm.withToken(async (tok) => {
    const r = await client.listSecrets(SOURCE, tok);
    return r;
  });
  // The first call fails with static-one; the file now says static-one too → no retry possible.
  await assert.rejects(
    pending,
    (e: unknown) => e instanceof ReloaderError && e.code === 'RLD_ERR_TOKEN',
  );

  let calls = 0;
  const listing = await tm.withToken(async (tok) => {
    if (++calls === 1) writeFileSync(file, 'static-three'); // the operator replaces the file
    return client.listSecrets(SOURCE, tok);
  });
  assert.equal(listing.secrets.get('SEEN_WITH'), 'static-three');
  assert.equal(fake.calls('login').length + fake.calls('renew').length, 0);
  assert.deepEqual(changes, []);

  const inline = manager(t, client, { kind: 'token', token: 'inline-token' });
  assert.equal(await inline.tm.token(), 'inline-token');
});

test('revoke() revokes the held token and forgets it', async (t) => {
  const fake = await fakeInfisical(t, 60, 0);
  const { tm } = manager(t, newClient(t, fake.url), {
    kind: 'universal',
    clientId: 'c',
    clientSecret: 's3cret',
  });
  await tm.token();
  await tm.revoke();
  assert.deepEqual(fake.calls('revoke')[0]!.body, { accessToken: 'tok-1' });
  assert.equal(tm.expiresAtMs(), undefined);
  assert.equal(await tm.token(), 'tok-2', 'a later call logs in again');
});

test('real time (~3 s): TTL 1 s, max TTL 3 s against a server enforcing Infisical rules', async (t) => {
  // The server applies Infisical's renew rule: renew refused once now + TTL passes createdAt + maxTTL,
  // listing refused (403 TokenError) with an expired token. The manager must never trip either.
  const TTL = 1000;
  const MAX = 3000;
  const tokens = new Map<string, { createdAt: number; expiresAt: number }>();
  let n = 0;
  const refused: string[] = [];
  const issue = (createdAt: number) => {
    const tok = `rt-${++n}`;
    tokens.set(tok, { createdAt, expiresAt: Date.now() + TTL });
    return { accessToken: tok, expiresIn: TTL / 1000, accessTokenMaxTTL: MAX / 1000 };
  };
  const srv = await scriptedServer(t, (req, res) => {
    const now = Date.now();
    const kind = kindOf(req);
    if (kind === 'login') return json(res, 200, issue(now));
    if (kind === 'renew') {
      const old = tokens.get((req.body as { accessToken: string }).accessToken);
      if (!old || now > old.expiresAt || now + TTL > old.createdAt + MAX) {
        refused.push(`renew at ${now}`);
        return infisicalError(
          res,
          401,
          'UnauthorizedError',
          'Failed to renew MI access token past its Max TTL expiration',
        );
      }
      return json(res, 200, issue(old.createdAt));
    }
    const tok = String(req.headers['authorization']).replace(/^Bearer /, '');
    const rec = tokens.get(tok);
    if (!rec || now > rec.expiresAt || now > rec.createdAt + MAX) {
      refused.push(`list with ${tok}`);
      return infisicalError(
        res,
        403,
        'TokenError',
        'Your token has expired. Please re-authenticate.',
      );
    }
    return json(res, 200, { secrets: [] });
  });
  const dir = tempDir(t);
  const saPath = join(dir, 'token');
  writeFileSync(saPath, 'jwt-real-1');
  const client = newClient(t, srv.url);
  const { tm } = manager(t, client, { kind: 'kubernetes', identityId: 'id', tokenPath: saPath });
  tm.start();
  const started = Date.now();
  await tm.token();
  const logins = () => srv.seen.filter((s) => kindOf(s) === 'login');
  // Use the token every 100 ms while the lifecycle runs.
  let listErrors = 0;
  const user = setInterval(() => {
    tm.withToken((tok) => client.listSecrets(SOURCE, tok)).catch(() => listErrors++);
  }, 100);
  t.after(() => clearInterval(user));
  setTimeout(() => writeFileSync(saPath, 'jwt-real-2'), 1900);
  await waitFor(
    () => logins().length === 2,
    () =>
      srv.seen
        .filter((s) => kindOf(s) !== 'list')
        .map((s) => `${kindOf(s)}@${s.atMs - started}`)
        .join(','),
    6000,
  );
  clearInterval(user);
  const lifecycle = srv.seen.filter((s) => kindOf(s) !== 'list');
  const kinds = lifecycle.map(kindOf);
  // With a 1 s TTL the manager renews at half the TTL (JWT `exp` has whole-second granularity,
  // so it acts at least 1 s before obtained + TTL, never earlier than half the span).
  assert.equal(kinds[0], 'login');
  assert.equal(kinds.at(-1), 'login');
  assert.ok(kinds.slice(1, -1).every((k) => k === 'renew') && kinds.length >= 4, kinds.join(','));
  const at = lifecycle.map((s) => s.atMs - started);
  assert.ok(at[1]! >= 450 && at[1]! < 1000, `first renew at ~500 ms (before expiry), was ${at[1]}`);
  for (let i = 2; i < at.length - 1; i++) {
    const gap = at[i]! - at[i - 1]!;
    assert.ok(gap >= 450 && gap < 1000, `renew ${i} ~500 ms after the previous, was ${gap}`);
  }
  assert.ok(at.at(-1)! < 3000, `re-login before the 3 s max TTL, was ${at.at(-1)}`);
  const last = lifecycle.at(-1)!;
  assert.equal((last.body as { jwt: string }).jwt, 'jwt-real-2', 'SA token re-read');
  assert.deepEqual(refused, [], 'no renew refused, no expired token used');
  assert.equal(listErrors, 0);
  assert.ok(srv.seen.filter((s) => kindOf(s) === 'list').length >= 15, 'the token was in use');
});
