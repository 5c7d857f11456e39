// Atomic write on real files: exact modes under any umask, ownership, parents, failure
// cleanup, the bind-mount EBUSY case, stale temp files, and a concurrent reader that must never
// see a partial file.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { once } from 'node:events';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  readCurrent,
  removeStaleTempFiles,
  tempPrefix,
  writeFileAtomic,
} from '../../src/output/atomic-write.js';
import { hasCode } from '../../src/errors.js';

let root: string;
before(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'rld-aw-'));
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

/** Run `fn` with the process umask set to `mask`, restoring it afterwards. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(old);
  }
}

async function leftovers(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => n.includes('.rld-tmp-'));
}

describe('writeFileAtomic', () => {
  for (const mask of [0o077, 0o000, 0o022]) {
    for (const mode of [0o600, 0o644, 0o640, 0o755]) {
      test(`mode ${mode.toString(8)} is exact under umask ${mask.toString(8).padStart(3, '0')}`, async () => {
        const dir = await freshDir();
        const dest = path.join(dir, 'out.conf');
        await withUmask(mask, () => writeFileAtomic(dest, 'x\n', { mode, createDirs: false }));
        const st = await fsp.stat(dest);
        assert.equal(st.mode & 0o7777, mode, `got ${(st.mode & 0o7777).toString(8)}`);
        // Overwriting an existing file with a different mode gives exactly the new mode too.
        const other = mode === 0o600 ? 0o644 : 0o600;
        await withUmask(mask, () =>
          writeFileAtomic(dest, 'y\n', { mode: other, createDirs: false }),
        );
        assert.equal((await fsp.stat(dest)).mode & 0o7777, other);
      });
    }
  }

  test('writes the exact bytes of a string and of a Buffer, replacing the inode', async () => {
    const dir = await freshDir();
    const dest = path.join(dir, 'f');
    await writeFileAtomic(dest, 'héllo\n', { mode: 0o600, createDirs: false });
    assert.equal(await fsp.readFile(dest, 'utf8'), 'héllo\n');
    const ino1 = (await fsp.stat(dest)).ino;
    const bin = Buffer.from([0, 255, 10, 13, 128, 0]);
    await writeFileAtomic(dest, bin, { mode: 0o600, createDirs: false });
    assert.deepEqual(await fsp.readFile(dest), bin);
    assert.notEqual((await fsp.stat(dest)).ino, ino1, 'a rename gives a new inode');
    assert.deepEqual(await leftovers(dir), []);
  });

  test('chowns to the given uid/gid (running as root)', async (t) => {
    if (process.geteuid?.() !== 0) return t.skip('needs root');
    const dir = await freshDir();
    const dest = path.join(dir, 'owned');
    await writeFileAtomic(dest, 'a', { mode: 0o640, uid: 65534, gid: 65534, createDirs: false });
    let st = await fsp.stat(dest);
    assert.equal(st.uid, 65534);
    assert.equal(st.gid, 65534);
    assert.equal(st.mode & 0o7777, 0o640);
    // uid only: the group stays the process's.
    await writeFileAtomic(dest, 'b', { mode: 0o600, uid: 65534, createDirs: false });
    st = await fsp.stat(dest);
    assert.equal(st.uid, 65534);
    assert.equal(st.gid, process.getegid?.());
  });

  test('createDirs: false fails with RLD_ERR_WRITE when the parent is missing', async () => {
    const dir = await freshDir();
    const dest = path.join(dir, 'missing', 'f.conf');
    await assert.rejects(
      writeFileAtomic(dest, 'a', { mode: 0o600, createDirs: false }),
      (err: unknown) => {
        assert.ok(hasCode(err, 'RLD_ERR_WRITE'), String(err));
        assert.match(err.message, /missing\/f\.conf/);
        assert.match(err.message, /ENOENT/);
        assert.match(err.message, /createDirs/);
        assert.equal(err.details.osCode, 'ENOENT');
        return true;
      },
    );
    assert.deepEqual(await fsp.readdir(dir), [], 'nothing was created');
  });

  test('createDirs: true creates missing parents with mode exactly 0755 even under umask 077', async () => {
    const dir = await freshDir();
    const dest = path.join(dir, 'a', 'b', 'c', 'f.conf');
    await withUmask(0o077, () => writeFileAtomic(dest, 'a', { mode: 0o600, createDirs: true }));
    for (const d of ['a', 'a/b', 'a/b/c']) {
      const st = await fsp.stat(path.join(dir, d));
      assert.equal(st.mode & 0o7777, 0o755, `${d}: ${(st.mode & 0o7777).toString(8)}`);
    }
    assert.equal(await fsp.readFile(dest, 'utf8'), 'a');
  });

  test('a failing rename removes the temp file and names the destination and the code', async () => {
    const dir = await freshDir();
    const dest = path.join(dir, 'is-a-dir');
    await fsp.mkdir(dest);
    await fsp.writeFile(path.join(dest, 'inside'), 'keep');
    await assert.rejects(
      writeFileAtomic(dest, 'a', { mode: 0o600, createDirs: false }),
      (err: unknown) => {
        assert.ok(hasCode(err, 'RLD_ERR_WRITE'));
        assert.match(err.message, /is-a-dir/);
        assert.match(err.message, /rename/);
        assert.match(err.message, /EISDIR|ENOTEMPTY|EEXIST/);
        return true;
      },
    );
    assert.deepEqual(await leftovers(dir), []);
    assert.equal(await fsp.readFile(path.join(dest, 'inside'), 'utf8'), 'keep');
  });

  test('a bind-mounted single file gives EBUSY, explained, with no in-place fallback', async (t) => {
    const dir = await freshDir();
    const src = path.join(dir, 'source');
    const dest = path.join(dir, 'mounted.conf');
    await fsp.writeFile(src, 'mounted original\n');
    await fsp.writeFile(dest, '');
    const mount = spawnSync('mount', ['--bind', src, dest], { encoding: 'utf8' });
    if (mount.status !== 0) return t.skip(`cannot bind-mount here: ${mount.stderr || mount.error}`);
    t.after(() => {
      spawnSync('umount', [dest]);
    });
    await assert.rejects(
      writeFileAtomic(dest, 'new contents\n', { mode: 0o600, createDirs: false }),
      (err: unknown) => {
        assert.ok(hasCode(err, 'RLD_ERR_WRITE'));
        assert.match(err.message, /EBUSY/);
        assert.match(err.message, /bind-mounted/);
        assert.match(err.message, /mounted\.conf/);
        return true;
      },
    );
    assert.equal(await fsp.readFile(dest, 'utf8'), 'mounted original\n', 'not written in place');
    assert.deepEqual(await leftovers(dir), []);
  });

  test('a reader never sees a partial or missing file while 200 large versions are written', async (t) => {
    const dir = await freshDir();
    const dest = path.join(dir, 'big.conf');
    const stopFile = path.join(dir, 'stop');
    const size = 512 * 1024;
    const letter = (i: number): number => 97 + (i % 26);
    await writeFileAtomic(dest, Buffer.alloc(size, letter(0)), { mode: 0o644, createDirs: false });
    // The reader reads in a tight synchronous loop in its own process; a read is good only if
    // it is exactly `size` bytes of one letter (one whole version).
    const reader = `
      const fs = require('fs');
      const [dest, stop, size] = [process.argv[1], process.argv[2], Number(process.argv[3])];
      const expected = new Map();
      for (let c = 97; c < 123; c++) expected.set(c, Buffer.alloc(size, c));
      let reads = 0, bad = 0, missing = 0, firstBad = '';
      process.stdout.write('ready\\n');
      while (!fs.existsSync(stop)) {
        let buf;
        try { buf = fs.readFileSync(dest); } catch (e) { missing++; firstBad ||= e.code; continue; }
        reads++;
        const want = expected.get(buf[0]);
        if (!want || !want.equals(buf)) { bad++; firstBad ||= 'len=' + buf.length + ' first=' + buf[0]; }
      }
      process.stdout.write(JSON.stringify({ reads, bad, missing, firstBad }) + '\\n');
    `;
    const child = spawn(process.execPath, ['-e', reader, dest, stopFile, String(size)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    await waitFor(
      () => out.includes('ready\n'),
      5000,
      () => `reader output: ${JSON.stringify(out)}`,
    );
    for (let i = 1; i <= 200; i++) {
      await writeFileAtomic(dest, Buffer.alloc(size, letter(i)), {
        mode: 0o644,
        createDirs: false,
      });
    }
    await fsp.writeFile(stopFile, '');
    const [code] = (await withTimeout(
      once(child, 'exit'),
      10_000,
      () => `reader did not stop; saw ${out}`,
    )) as [number | null];
    assert.equal(code, 0);
    const report = JSON.parse(out.split('\n')[1] ?? '{}') as {
      reads: number;
      bad: number;
      missing: number;
      firstBad: string;
    };
    assert.equal(report.bad, 0, `partial reads: ${report.firstBad}`);
    assert.equal(report.missing, 0, `missing file: ${report.firstBad}`);
    assert.ok(report.reads >= 20, `the reader ran concurrently (reads: ${report.reads})`);
    const final = await fsp.readFile(dest);
    assert.ok(final.equals(Buffer.alloc(size, letter(200))));
    assert.deepEqual(await leftovers(dir), []);
  });
});

describe('readCurrent', () => {
  test('undefined for a missing file; contents, mode and owner otherwise', async () => {
    const dir = await freshDir();
    const dest = path.join(dir, 'cur');
    assert.equal(await readCurrent(dest), undefined);
    await fsp.writeFile(dest, 'abc');
    await fsp.chmod(dest, 0o640);
    const cur = await readCurrent(dest);
    assert.ok(cur);
    assert.equal(cur.contents.toString(), 'abc');
    assert.equal(cur.mode, 0o640);
    assert.equal(cur.uid, process.geteuid?.());
    assert.equal(cur.gid, process.getegid?.());
  });

  test('a directory at the destination is RLD_ERR_WRITE', async () => {
    const dir = await freshDir();
    await assert.rejects(readCurrent(dir), (err: unknown) => hasCode(err, 'RLD_ERR_WRITE'));
  });
});

describe('removeStaleTempFiles', () => {
  test('removes old temp files of the given destinations only, keeps fresh ones', async () => {
    const dir = await freshDir();
    const dest = path.join(dir, 'app.conf');
    const other = path.join(dir, 'other.conf');
    const old = new Date(Date.now() - 60_000);
    const stale = [
      `${tempPrefix(dest)}aaaa`,
      `${tempPrefix(dest)}bbbb`,
      `${tempPrefix(other)}cccc`,
    ];
    for (const n of stale) {
      await fsp.writeFile(path.join(dir, n), 'partial');
      await fsp.utimes(path.join(dir, n), old, old);
    }
    const fresh = `${tempPrefix(dest)}fresh1`;
    const keep = ['app.conf', '.unrelated.rld-tmp-dddd', 'app.conf.bak', fresh];
    for (const n of keep) await fsp.writeFile(path.join(dir, n), 'x');
    const missingDir = path.join(dir, 'nope', 'x.conf');

    assert.equal(await removeStaleTempFiles([dest, other, missingDir]), 3);
    assert.deepEqual((await fsp.readdir(dir)).sort(), [...keep].sort());
    // A fresh temp may belong to a live writer; with olderThanMs 0 it goes too.
    assert.equal(await removeStaleTempFiles([dest], { olderThanMs: 0 }), 1);
    assert.ok(!(await fsp.readdir(dir)).includes(fresh));
  });
});

async function waitFor(cond: () => boolean, timeoutMs: number, seen: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms; ${seen()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, seen: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms; ${seen()}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
