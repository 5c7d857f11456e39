// fs-calls: the quiet rule (synchronous calls while no fsync is in flight, the thread pool
// while one is) and that both ways give the same results and the same errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { constants, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as io from '../../src/output/fs-calls.js';

let root: string;
before(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'rld-fscalls-'));
});
after(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

/** create → write → fstat → read back → rename → unlink, through `io`, in `dir`. */
async function roundTrip(dir: string, name: string): Promise<string> {
  const file = path.join(dir, name);
  const fd = await io.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  await io.writeAll(fd, `bytes of ${name}`);
  await io.fchmod(fd, 0o640);
  const st = await io.fstat(fd);
  await io.close(fd);
  assert.equal(st.mode & 0o7777, 0o640);
  await io.rename(file, `${file}.moved`);
  const rfd = await io.open(`${file}.moved`, constants.O_RDONLY);
  const text = (await io.readAll(rfd)).toString('utf8');
  await io.close(rfd);
  await io.unlink(`${file}.moved`);
  return text;
}

test('quiet while no fsync runs; not quiet during one; quiet again after, even if it failed', async () => {
  const file = path.join(root, 'synced');
  await fsp.writeFile(file, 'x');
  const fd = await io.open(file, constants.O_RDWR);
  assert.equal(io.quiet(), true);
  const syncing = io.fsync(fd);
  assert.equal(io.quiet(), false, 'an fsync is in flight');
  // A call made now takes the thread pool and still works.
  const during = roundTrip(root, 'during');
  await syncing;
  assert.equal(await during, 'bytes of during');
  assert.equal(io.quiet(), true);
  await io.close(fd);
  await assert.rejects(io.fsync(fd), (err: NodeJS.ErrnoException) => err.code === 'EBADF');
  assert.equal(io.quiet(), true, 'a failed fsync is no longer counted');
});

test('synchronous and thread-pool calls give the same results and the same error codes', async () => {
  assert.equal(await roundTrip(root, 'quiet'), 'bytes of quiet');
  const missing = path.join(root, 'no', 'such', 'file');
  await assert.rejects(io.stat(missing), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
  const file = path.join(root, 'busy');
  await fsp.writeFile(file, 'x');
  const fd = await io.open(file, constants.O_RDWR);
  const syncing = io.fsync(fd);
  await assert.rejects(io.stat(missing), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
  await syncing;
  await io.close(fd);
});

test('lockFs answers through its callback both ways (proper-lockfile’s fs option)', async () => {
  const dir = path.join(root, 'lockdir');
  const call = (fn: (cb: (err: NodeJS.ErrnoException | null) => void) => void) =>
    new Promise<NodeJS.ErrnoException | null>((resolve) => fn((err) => resolve(err)));
  assert.equal(await call((cb) => io.lockFs.mkdir(dir, cb)), null);
  const again = await call((cb) => io.lockFs.mkdir(dir, cb));
  assert.equal(again?.code, 'EEXIST');
  const file = path.join(root, 'lock-busy');
  await fsp.writeFile(file, 'x');
  const fd = await io.open(file, constants.O_RDWR);
  const syncing = io.fsync(fd);
  const busy = await call((cb) => io.lockFs.mkdir(dir, cb));
  assert.equal(busy?.code, 'EEXIST', 'the thread-pool path reports the same code');
  assert.equal(await call((cb) => io.lockFs.rmdir(dir, cb)), null);
  await syncing;
  await io.close(fd);
  assert.equal(
    await fsp.stat(dir).then(
      () => 'there',
      () => 'gone',
    ),
    'gone',
  );
});
