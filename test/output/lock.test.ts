// Destination locks on real files: held/released, waiting for another holder (in this process
// and in another process), timing out, breaking a stale lock, and failing on a missing parent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { acquireLock, lockPathOf, withLocks } from '../../src/output/lock.js';
import { hasCode } from '../../src/errors.js';

let root: string;
before(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'rld-lock-'));
});
after(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

let seq = 0;
async function freshDir(): Promise<string> {
  const dir = path.join(root, `case-${++seq}`);
  await fsp.mkdir(dir);
  return dir;
}

async function exists(p: string): Promise<boolean> {
  return fsp.stat(p).then(
    () => true,
    () => false,
  );
}

/** Resolves to 'pending' if `p` has not settled after `ms`: for asserting that something waits. */
async function stillPending(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.then(
      () => 'settled',
      () => 'settled',
    ),
    new Promise<string>((res) => {
      timer = setTimeout(() => res('pending'), ms);
    }),
  ]);
  clearTimeout(timer);
  return r === 'pending';
}

test('the lock is a hidden .<basename>.rld-lock directory beside the destination while held, gone after release', async () => {
  const dir = await freshDir();
  const dest = path.join(dir, 'does-not-exist-yet.conf');
  const release = await acquireLock(dest);
  assert.equal(lockPathOf(dest), path.join(dir, '.does-not-exist-yet.conf.rld-lock'));
  assert.ok((await fsp.stat(lockPathOf(dest))).isDirectory());
  assert.deepEqual(
    (await fsp.readdir(dir)).filter((n) => !n.startsWith('.')),
    [],
    'nothing a glob such as conf.d/* would match',
  );
  await release();
  assert.equal(await exists(lockPathOf(dest)), false);
  await release(); // a second release is harmless
});

test('a second taker waits until the holder releases', async () => {
  const dir = await freshDir();
  const dest = path.join(dir, 'a.conf');
  const release1 = await acquireLock(dest);
  const order: string[] = [];
  const second = acquireLock(dest, { waitMs: 5000 }).then((rel) => {
    order.push('second acquired');
    return rel;
  });
  assert.ok(await stillPending(second, 250), 'the second taker must wait while the lock is held');
  order.push('first released');
  await release1();
  const release2 = await second;
  assert.deepEqual(order, ['first released', 'second acquired']);
  await release2();
});

test('waiting past waitMs is RLD_ERR_LOCK naming the destination', async () => {
  const dir = await freshDir();
  const dest = path.join(dir, 'b.conf');
  const release = await acquireLock(dest);
  const started = Date.now();
  await assert.rejects(acquireLock(dest, { waitMs: 300 }), (err: unknown) => {
    assert.ok(hasCode(err, 'RLD_ERR_LOCK'), String(err));
    assert.match(err.message, /b\.conf/);
    assert.match(err.message, /still held/);
    return true;
  });
  assert.ok(Date.now() - started >= 290, `gave up after ${Date.now() - started} ms`);
  await release();
});

test('a stale lock left by a dead process is broken', async () => {
  const dir = await freshDir();
  const dest = path.join(dir, 'c.conf');
  await fsp.mkdir(lockPathOf(dest));
  const old = new Date(Date.now() - 60_000);
  await fsp.utimes(lockPathOf(dest), old, old);
  const started = Date.now();
  const release = await acquireLock(dest, { waitMs: 1000, staleMs: 10_000 });
  assert.ok(Date.now() - started < 1000);
  await release();
});

test('a lock held by another process makes us wait for that process', async (t) => {
  const dir = await freshDir();
  const dest = path.join(dir, 'shared.conf');
  const lockfileModule = createRequire(import.meta.url).resolve('proper-lockfile');
  const holder = `
    const lockfile = require(process.argv[1]);
    lockfile.lock(process.argv[2], { realpath: false, lockfilePath: process.argv[3] }).then((release) => {
      process.stdout.write('locked\\n');
      process.stdin.on('data', () => release().then(() => process.stdout.write('released\\n')));
    });
  `;
  const child = spawn(process.execPath, ['-e', holder, lockfileModule, dest, lockPathOf(dest)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => (out += d));
  const deadline = Date.now() + 5000;
  while (!out.includes('locked')) {
    assert.ok(Date.now() < deadline, `child never locked; output ${JSON.stringify(out)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const ours = acquireLock(dest, { waitMs: 5000 });
  assert.ok(await stillPending(ours, 250), 'we must wait for the other process');
  child.stdin.write('release\n');
  const release = await ours;
  assert.match(out, /released/, 'we got the lock only after the other process released it');
  await release();
});

test('a missing parent directory is RLD_ERR_LOCK with the OS code', async () => {
  const dir = await freshDir();
  await assert.rejects(
    acquireLock(path.join(dir, 'nope', 'x.conf'), { waitMs: 100 }),
    (err: unknown) => {
      assert.ok(hasCode(err, 'RLD_ERR_LOCK'));
      assert.match(err.message, /ENOENT/);
      return true;
    },
  );
});

test('withLocks holds every lock during fn and releases them all when fn throws', async () => {
  const dir = await freshDir();
  const dests = ['z.conf', 'a.conf', 'm.conf', 'a.conf'].map((n) => path.join(dir, n));
  await assert.rejects(
    withLocks(dests, {}, async () => {
      for (const d of dests) assert.ok(await exists(lockPathOf(d)), `${d} locked`);
      throw new Error('boom');
    }),
    /boom/,
  );
  for (const d of dests) assert.equal(await exists(lockPathOf(d)), false, `${d} released`);
});

test('withLocks releases what it took when a later lock fails', async () => {
  const dir = await freshDir();
  const good = path.join(dir, 'a.conf');
  const bad = path.join(dir, 'missing', 'b.conf');
  let ran = false;
  await assert.rejects(
    withLocks([bad, good], { waitMs: 100 }, async () => {
      ran = true;
    }),
    (err: unknown) => hasCode(err, 'RLD_ERR_LOCK'),
  );
  assert.equal(ran, false);
  assert.equal(await exists(lockPathOf(good)), false);
});
