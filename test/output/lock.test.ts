// Destination locks on real files: held/released, waiting for another holder (in this process
// and in another process), timing out, breaking a stale lock, breaking at once the lock of a
// dead holder (SIGKILLed, pid reused, socket closed) but never a live one's, two live
// processes racing on one set, and failing on a missing parent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import {
  acquireLock,
  lockPathOf,
  OWNER_FILE,
  OWNERLESS_GRACE_MS,
  withLocks,
} from '../../src/output/lock.js';
import { parseOwner, startTimeOf, type HolderIdentity } from '../../src/output/holder.js';
import { hasCode } from '../../src/errors.js';

const LOCK_MODULE = new URL('../../src/output/lock.js', import.meta.url).href;

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

/** A child process running `script` (an ES module, argv[1..] = args) that prints `locked`. */
async function spawnHolder(
  t: { after(fn: () => unknown): void },
  script: string,
  args: string[],
): Promise<{ child: ReturnType<typeof spawn>; out: () => string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => (out += d));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!out.includes('locked')) {
    assert.ok(Date.now() < deadline, `child never locked; output ${JSON.stringify(out)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return { child, out: () => out };
}

const HOLD = `
  const { acquireLock } = await import(process.argv[1]);
  await acquireLock(process.argv[2]);
  process.stdout.write('locked\\n');
  setInterval(() => {}, 60_000);
`;

test('the lock names its holder: pid, start time, boot, namespaces, liveness socket', async () => {
  const dir = await freshDir();
  const dest = path.join(dir, 'who.conf');
  const release = await acquireLock(dest);
  const owner = parseOwner(await fsp.readFile(path.join(lockPathOf(dest), OWNER_FILE), 'utf8'));
  assert.ok(owner);
  assert.equal(owner.pid, process.pid);
  assert.equal(owner.start, startTimeOf('self'));
  if (process.platform === 'linux') {
    assert.match(owner.boot ?? '', /^[0-9a-f-]{36}$/);
    assert.match(owner.pidns ?? '', /^pid:\[\d+\]$/);
    assert.ok(owner.sock, 'listens on an abstract socket');
  }
  await release();
  assert.equal(await exists(lockPathOf(dest)), false, 'owner file and directory both removed');
});

test('a lock whose holder was SIGKILLed is taken at once, not after the stale time', async (t) => {
  const dir = await freshDir();
  const dest = path.join(dir, 'killed.conf');
  const { child } = await spawnHolder(t, HOLD, [LOCK_MODULE, dest]);
  const ours = acquireLock(dest, { waitMs: 5000 });
  assert.ok(await stillPending(ours, 300), 'the live holder is waited for');
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  const started = Date.now();
  const release = await ours;
  const ms = Date.now() - started;
  assert.ok(ms < 1000, `taken ${ms} ms after the kill (the stale time is 10 s)`);
  await release();
});

test('a lock directory without an owner file (its taker killed right after mkdir) is broken after a second', async () => {
  const dir = await freshDir();
  const dest = path.join(dir, 'ownerless.conf');
  await fsp.mkdir(lockPathOf(dest));
  const started = Date.now();
  const release = await acquireLock(dest, { waitMs: 5000 });
  const ms = Date.now() - started;
  assert.ok(ms >= OWNERLESS_GRACE_MS - 50 && ms < 3000, `taken after ${ms} ms`);
  await release();
});

/** Plant a lock on `dest` whose owner file says `owner` (fields over our own identity). */
async function plantLock(dest: string, owner: Partial<HolderIdentity>): Promise<void> {
  const dir = await freshDir();
  const probe = path.join(dir, 'probe.conf');
  const release = await acquireLock(probe);
  const mine = parseOwner(await fsp.readFile(path.join(lockPathOf(probe), OWNER_FILE), 'utf8'));
  await release();
  await fsp.mkdir(lockPathOf(dest));
  await fsp.writeFile(
    path.join(lockPathOf(dest), OWNER_FILE),
    JSON.stringify({ ...mine, n: 999, ...owner }),
  );
}

test('a reused pid does not keep a dead holder alive: the start time must match', async (t) => {
  if (startTimeOf('self') === undefined) {
    t.skip('no /proc here: the holder cannot be judged, the stale time decides');
    return;
  }
  const dir = await freshDir();
  const reused = path.join(dir, 'reused.conf');
  // Our parent lives, but did not take this lock: it started at another tick.
  await plantLock(reused, { pid: process.ppid, start: '1' });
  const started = Date.now();
  const release = await acquireLock(reused, { waitMs: 2000 });
  assert.ok(Date.now() - started < 500, `broken in ${Date.now() - started} ms`);
  await release();

  const live = path.join(dir, 'live.conf');
  await plantLock(live, { pid: process.ppid, start: startTimeOf(process.ppid) });
  await assert.rejects(acquireLock(live, { waitMs: 400 }), (err: unknown) =>
    hasCode(err, 'RLD_ERR_LOCK'),
  );
});

test('a holder in another pid namespace is judged by its socket: refused → dead, accepting → alive', async (t) => {
  if (process.platform !== 'linux') {
    t.skip('abstract sockets are Linux only');
    return;
  }
  const dir = await freshDir();
  const gone = path.join(dir, 'gone.conf');
  await plantLock(gone, { pidns: 'pid:[1]', sock: `rld-test-nobody-${process.pid}` });
  const started = Date.now();
  const release = await acquireLock(gone, { waitMs: 2000 });
  assert.ok(Date.now() - started < 500, `broken in ${Date.now() - started} ms`);
  await release();

  const name = `rld-test-listening-${process.pid}`;
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen({ path: `\0${name}` }, r));
  t.after(() => server.close());
  const held = path.join(dir, 'held.conf');
  await plantLock(held, { pidns: 'pid:[1]', sock: name });
  await assert.rejects(acquireLock(held, { waitMs: 400 }), (err: unknown) =>
    hasCode(err, 'RLD_ERR_LOCK'),
  );
});

test('a holder on another host cannot be judged: the stale time decides', async () => {
  const dir = await freshDir();
  const dest = path.join(dir, 'remote.conf');
  await plantLock(dest, { host: 'another-node', boot: '00000000-0000-0000-0000-000000000000' });
  await assert.rejects(acquireLock(dest, { waitMs: 400 }), (err: unknown) =>
    hasCode(err, 'RLD_ERR_LOCK'),
  );
  const old = new Date(Date.now() - 60_000);
  await fsp.utimes(lockPathOf(dest), old, old);
  const release = await acquireLock(dest, { waitMs: 1000 });
  await release();
});

const RACER = `
  import * as fs from 'node:fs';
  import * as path from 'node:path';
  const { withLocks } = await import(process.argv[1]);
  const [, , dir, tag, rounds] = process.argv;
  const files = ['one.conf', 'two.conf', 'three.conf'].map((f) => path.join(dir, f));
  const marker = path.join(dir, 'inside');
  process.stdout.write('locked\\n');
  let bad = 0;
  for (let i = 0; i < Number(rounds); i++) {
    await withLocks(files, { waitMs: 30_000 }, async () => {
      try { fs.writeFileSync(marker, tag, { flag: 'wx' }); } catch { bad++; }
      const text = tag + ':' + i;
      for (const f of files) {
        fs.writeFileSync(f, text);
        await new Promise((r) => setTimeout(r, Math.random() * 2));
      }
      for (const f of files) if (fs.readFileSync(f, 'utf8') !== text) bad++;
      fs.rmSync(marker, { force: true });
    });
  }
  process.stdout.write('done ' + bad + '\\n');
`;

test('two live processes racing on one destination set never interleave it', async (t) => {
  const dir = await freshDir();
  const rounds = 150;
  const started = Date.now();
  const racers = await Promise.all(
    ['X', 'Y'].map((tag) => spawnHolder(t, RACER, [LOCK_MODULE, dir, tag, String(rounds)])),
  );
  await Promise.all(
    racers.map(
      ({ child }) => new Promise((r) => (child.exitCode !== null ? r(0) : child.once('exit', r))),
    ),
  );
  for (const { out } of racers) assert.match(out(), /done 0\n/, out());
  t.diagnostic(
    `lock race: 2 processes × ${rounds} sets of 3 files in ${Date.now() - started} ms, no overlap`,
  );
});

test("another user's dead lock that we may not enter is broken once stale, set aside", async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root, to hold the lock as root and take it as nobody');
    return;
  }
  const dir = await freshDir();
  await fsp.chmod(root, 0o755);
  await fsp.chmod(dir, 0o777);
  const dest = path.join(dir, 'shared-uid.conf');
  const holdPrivately = `process.umask(0o077);\n${HOLD}`;
  const { child } = await spawnHolder(t, holdPrivately, [LOCK_MODULE, dest]);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  assert.equal((await fsp.stat(lockPathOf(dest))).mode & 0o777, 0o700, 'the dead lock is private');
  const take = `
    const { acquireLock } = await import(process.argv[1]);
    const started = Date.now();
    const release = await acquireLock(process.argv[2], { staleMs: 2000, waitMs: 10_000 });
    process.stdout.write('locked after ' + (Date.now() - started) + ' ms\\n');
    await release();
  `;
  const nobody = spawn(process.execPath, ['--input-type=module', '-e', take, LOCK_MODULE, dest], {
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: 65534,
    gid: 65534,
  });
  t.after(() => nobody.kill('SIGKILL'));
  let out = '';
  nobody.stdout.on('data', (d: Buffer) => (out += d.toString()));
  nobody.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise((r) => nobody.once('exit', r));
  assert.equal(code, 0, out);
  assert.match(out, /locked after \d+ ms/);
  const names = await fsp.readdir(dir);
  assert.ok(!names.includes(path.basename(lockPathOf(dest))), 'the lock is gone');
  assert.ok(
    names.some((n) => n.includes('.rld-lock.dead-')),
    'set aside: ' + names.join(' '),
  );
});
