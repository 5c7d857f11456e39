// commitTarget on real files with real check processes: unchanged output is not written,
// a failing or hanging check puts back the previous bytes, mode and owner (and removes files
// that did not exist), a failed write midway restores what was already written, and two
// commits of one target never interleave.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CommandSpec, FileSpec, TargetSpec } from '../../src/config/types.js';
import { commitTarget, contentHash, type RenderedFile } from '../../src/output/commit.js';
import { acquireLock } from '../../src/output/lock.js';
import { hasCode } from '../../src/errors.js';
import { Scrubber, silentLogger } from '../../src/logger.js';

const logger = silentLogger();
/** The runtime's scrubber these tests share (canaries are added to it). */
const scrubber = new Scrubber();
let root: string;
before(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'rld-commit-'));
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

function fileSpec(destination: string, extra: Partial<FileSpec> = {}): FileSpec {
  return {
    contents: '(inline)',
    destination,
    mode: 0o600,
    createDirs: true,
    origin: { yamlPath: 'targets[0].files[0]', line: 1 },
    ...extra,
  };
}

function targetSpec(files: FileSpec[], check?: CommandSpec): TargetSpec {
  return {
    name: 'web',
    files,
    check,
    wait: { minMs: 0, maxMs: 0 },
    origin: { yamlPath: 'targets[0]', line: 1 },
  };
}

function render(files: FileSpec[], contents: string[]): RenderedFile[] {
  return files.map((spec, i) => ({ spec, contents: contents[i] ?? '' }));
}

async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(
    () => true,
    () => false,
  );
}

/** No lock directory and no temp file is left in `dir`. */
async function assertClean(dir: string): Promise<void> {
  const junk = (await fsp.readdir(dir)).filter(
    (n) => n.endsWith('.rld-lock') || n.includes('.rld-tmp-'),
  );
  assert.deepEqual(junk, [], 'no lock or temp file left behind');
}

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

test('writes every file with its exact mode; identical output is not written again', async () => {
  const dir = await freshDir();
  const files = [
    fileSpec(path.join(dir, 'tls.crt'), { mode: 0o644 }),
    fileSpec(path.join(dir, 'tls.key')),
    fileSpec(path.join(dir, 'sub', 'tls.conf'), { mode: 0o644 }),
  ];
  let checks = 0;
  const runCheck = async () => {
    checks += 1;
    return {
      ok: true,
      exitCode: 0,
      signal: null,
      timedOut: false,
      durationMs: 0,
      stdoutTail: '',
      stderrTail: '',
    };
  };
  const target = targetSpec(files, { command: ['true'], timeoutMs: 1000 });
  const first = await commitTarget(target, render(files, ['CERT\n', 'KEY\n', 'CONF\n']), {
    logger,
    scrubber,
    runCheck,
  });
  assert.deepEqual(
    first.written,
    files.map((f) => f.destination),
  );
  assert.deepEqual(first.unchanged, []);
  assert.equal(first.check?.ok, true);
  assert.equal(checks, 1);
  for (const f of files) assert.equal((await fsp.stat(f.destination)).mode & 0o7777, f.mode);
  assert.equal(await fsp.readFile(files[1]!.destination, 'utf8'), 'KEY\n');

  const before = await Promise.all(files.map((f) => fsp.stat(f.destination)));
  const second = await commitTarget(target, render(files, ['CERT\n', 'KEY\n', 'CONF\n']), {
    logger,
    scrubber,
    runCheck,
  });
  assert.deepEqual(
    { written: second.written, unchanged: second.unchanged },
    { written: [], unchanged: files.map((f) => f.destination) },
  );
  assert.equal(checks, 1, 'no check when nothing changed');
  const afterStat = await Promise.all(files.map((f) => fsp.stat(f.destination)));
  for (const [i, st] of afterStat.entries()) {
    assert.equal(st.ino, before[i]!.ino, 'same inode: not rewritten');
    assert.equal(st.mtimeMs, before[i]!.mtimeMs, 'same mtime: not rewritten');
  }
  await assertClean(dir);
  await assertClean(path.join(dir, 'sub'));
});

test('a changed mode alone, or a changed owner, is a change; only that file is written', async () => {
  const dir = await freshDir();
  const a = fileSpec(path.join(dir, 'a'));
  const b = fileSpec(path.join(dir, 'b'));
  await commitTarget(targetSpec([a, b]), render([a, b], ['A', 'B']), { logger, scrubber });
  const a2 = { ...a, mode: 0o640 };
  const r = await commitTarget(targetSpec([a2, b]), render([a2, b], ['A', 'B']), {
    logger,
    scrubber,
  });
  assert.deepEqual(r.written, [a.destination]);
  assert.deepEqual(r.unchanged, [b.destination]);
  assert.equal((await fsp.stat(a.destination)).mode & 0o7777, 0o640);

  if (process.geteuid?.() === 0) {
    const b2 = { ...b, uid: 65534, gid: 65534 };
    const r2 = await commitTarget(targetSpec([a2, b2]), render([a2, b2], ['A', 'B']), {
      logger,
      scrubber,
    });
    assert.deepEqual(r2.written, [b.destination]);
    const st = await fsp.stat(b.destination);
    assert.equal(st.uid, 65534);
    assert.equal(st.gid, 65534);
    const r3 = await commitTarget(targetSpec([a2, b2]), render([a2, b2], ['A', 'B']), {
      logger,
      scrubber,
    });
    assert.deepEqual(r3.written, []);
  }
});

test('the check runs against the new files in place and its outcome is returned', async () => {
  const dir = await freshDir();
  const a = fileSpec(path.join(dir, 'a.conf'));
  const b = fileSpec(path.join(dir, 'b.conf'));
  const check = {
    command: [
      'sh',
      '-c',
      'grep -qx v2 "$0" && grep -qx v2 "$1" && echo checked',
      a.destination,
      b.destination,
    ],
    timeoutMs: 5000,
  };
  const r = await commitTarget(targetSpec([a, b], check), render([a, b], ['v2\n', 'v2\n']), {
    logger,
    scrubber,
  });
  assert.equal(r.check?.ok, true, r.check?.stderrTail);
  assert.equal(r.check?.stdoutTail, 'checked\n');
  assert.deepEqual(r.written, [a.destination, b.destination]);
});

test('a check that globs the directory (nginx: include conf.d/*;) sees only the files, not the lock', async () => {
  const dir = await freshDir();
  const a = fileSpec(path.join(dir, 'site.conf'));
  const b = fileSpec(path.join(dir, 'other.conf'));
  // Like nginx -t with `include conf.d/*;`: every non-hidden entry must be a readable file.
  const check = {
    command: [
      'sh',
      '-c',
      'for f in "$0"/*; do [ -f "$f" ] || { echo "not a file: $f" >&2; exit 1; }; done; ls "$0"',
      dir,
    ],
    timeoutMs: 5000,
  };
  const r = await commitTarget(targetSpec([a, b], check), render([a, b], ['A\n', 'B\n']), {
    logger,
    scrubber,
  });
  assert.equal(r.check?.ok, true, r.check?.stderrTail);
  assert.deepEqual(r.check?.stdoutTail.split('\n').filter(Boolean).sort(), [
    'other.conf',
    'site.conf',
  ]);
});

test('a failing check restores old bytes, old mode and owner, removes new files, scrubs stderr', async (t) => {
  const dir = await freshDir();
  const a = fileSpec(path.join(dir, 'a.conf'));
  const b = fileSpec(path.join(dir, 'b.conf'), { mode: 0o644 });
  await fsp.writeFile(a.destination, 'old a\n');
  await fsp.chmod(a.destination, 0o640);
  const asRoot = process.geteuid?.() === 0;
  if (asRoot) await fsp.chown(a.destination, 65534, 65534);
  const canary = `canary-${Math.random().toString(36).slice(2)}-secret`;
  scrubber.add(canary);
  // Like `nginx -t` quoting the offending config line, which holds a secret.
  const check = {
    command: ['sh', '-c', 'echo "bad line: $(cat "$0")" >&2; exit 3', a.destination],
    timeoutMs: 5000,
  };
  await assert.rejects(
    commitTarget(targetSpec([a, b], check), render([a, b], [`password ${canary}\n`, 'new b\n']), {
      logger,
      scrubber,
    }),
    (err: unknown) => {
      assert.ok(hasCode(err, 'RLD_ERR_CHECK'), String(err));
      assert.match(
        err.message,
        /target "web": check sh failed \(exit 3\); the previous files were put back/,
      );
      assert.equal(err.details.target, 'web');
      assert.equal(err.details.exitCode, 3);
      assert.equal(err.details.timedOut, false);
      const stderr = String(err.details.stderrTail);
      assert.match(stderr, /bad line: password \[redacted\]/, 'the check saw the new file');
      assert.ok(!JSON.stringify(err.toJSON()).includes(canary), 'no secret in the error');
      assert.ok(!err.message.includes(canary));
      assert.deepEqual(err.details.restored, [a.destination, b.destination]);
      assert.deepEqual(err.details.restoreFailed, []);
      return true;
    },
  );
  assert.equal(await fsp.readFile(a.destination, 'utf8'), 'old a\n');
  const st = await fsp.stat(a.destination);
  assert.equal(st.mode & 0o7777, 0o640, 'old mode back');
  if (asRoot) assert.equal(st.uid, 65534, 'old owner back');
  assert.equal(await exists(b.destination), false, 'a file that did not exist is removed');
  await assertClean(dir);
  t.diagnostic(`check ran: ${asRoot ? 'as root, owner checked' : 'not root'}`);
});

test('a check that hangs past its timeout is killed and the old files are restored', async () => {
  const dir = await freshDir();
  const a = fileSpec(path.join(dir, 'a.conf'));
  await fsp.writeFile(a.destination, 'old\n');
  await fsp.chmod(a.destination, 0o600);
  const check = { command: ['sleep', '30'], timeoutMs: 200 };
  const started = Date.now();
  await assert.rejects(
    commitTarget(targetSpec([a], check), render([a], ['new\n']), { logger, scrubber }),
    (err: unknown) => {
      assert.ok(hasCode(err, 'RLD_ERR_CHECK'));
      assert.equal(err.details.timedOut, true);
      assert.match(err.message, /timed out after 200 ms/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
  assert.equal(await fsp.readFile(a.destination, 'utf8'), 'old\n');
  await assertClean(dir);
});

test('a check runner that throws counts as a failed check (restored, RLD_ERR_CHECK)', async () => {
  const dir = await freshDir();
  const a = fileSpec(path.join(dir, 'a.conf'));
  await fsp.writeFile(a.destination, 'old\n');
  await fsp.chmod(a.destination, 0o600);
  const runCheck = async (): Promise<never> => {
    throw new Error('runner exploded');
  };
  await assert.rejects(
    commitTarget(targetSpec([a], { command: ['x'], timeoutMs: 100 }), render([a], ['new\n']), {
      logger,
      scrubber,
      runCheck,
    }),
    (err: unknown) =>
      hasCode(err, 'RLD_ERR_CHECK') && /runner exploded/.test(String(err.details.stderrTail)),
  );
  assert.equal(await fsp.readFile(a.destination, 'utf8'), 'old\n');
});

test('a write failing midway restores the files already written and writes no further', async (t) => {
  const dir = await freshDir();
  const a = fileSpec(path.join(dir, 'a.conf'));
  const b = fileSpec(path.join(dir, 'b.conf'));
  const c = fileSpec(path.join(dir, 'c.conf'));
  const d = fileSpec(path.join(dir, 'd.conf'));
  await fsp.writeFile(a.destination, 'old a\n');
  await fsp.chmod(a.destination, 0o600);
  await fsp.writeFile(c.destination, 'old c\n');
  // An immutable file cannot be renamed over, even by root: the third write fails (EPERM)
  // after the lock, the read and the first two writes succeeded.
  const immutable = spawnSync('chattr', ['+i', c.destination], { encoding: 'utf8' });
  if (immutable.status !== 0)
    return t.skip(`chattr +i not available: ${immutable.stderr || immutable.error}`);
  t.after(() => {
    spawnSync('chattr', ['-i', c.destination]);
  });
  let checked = false;
  const runCheck = async () => {
    checked = true;
    return {
      ok: true,
      exitCode: 0,
      signal: null,
      timedOut: false,
      durationMs: 0,
      stdoutTail: '',
      stderrTail: '',
    };
  };
  const files = [a, b, c, d];
  await assert.rejects(
    commitTarget(
      targetSpec(files, { command: ['true'], timeoutMs: 1000 }),
      render(files, ['A', 'B', 'C', 'D']),
      {
        logger,
        scrubber,
        runCheck,
      },
    ),
    (err: unknown) => {
      assert.ok(hasCode(err, 'RLD_ERR_WRITE'), String(err));
      assert.match(err.message, /c\.conf/);
      assert.match(err.message, /EPERM/);
      assert.match(err.message, /previous files were put back/);
      assert.equal(err.details.destination, c.destination);
      assert.deepEqual(err.details.restored, [a.destination, b.destination]);
      return true;
    },
  );
  assert.equal(checked, false, 'no check after a failed write');
  assert.equal(await fsp.readFile(a.destination, 'utf8'), 'old a\n');
  assert.equal(await exists(b.destination), false);
  assert.equal(await fsp.readFile(c.destination, 'utf8'), 'old c\n');
  assert.equal(await exists(d.destination), false);
  await assertClean(dir);
});

test('a parent that is a file, or missing with createDirs false, fails before anything is written', async () => {
  const dir = await freshDir();
  const a = fileSpec(path.join(dir, 'a.conf'));
  await fsp.writeFile(path.join(dir, 'plain'), 'x');
  const underFile = fileSpec(path.join(dir, 'plain', 'b.conf'));
  await assert.rejects(
    commitTarget(targetSpec([a, underFile]), render([a, underFile], ['A', 'B']), {
      logger,
      scrubber,
    }),
    (err: unknown) => hasCode(err, 'RLD_ERR_WRITE') && /ENOTDIR|EEXIST/.test(err.message),
  );
  const noParent = fileSpec(path.join(dir, 'missing', 'c.conf'), { createDirs: false });
  await assert.rejects(
    commitTarget(targetSpec([a, noParent]), render([a, noParent], ['A', 'C']), {
      logger,
      scrubber,
    }),
    (err: unknown) => hasCode(err, 'RLD_ERR_WRITE') && /createDirs/.test(err.message),
  );
  assert.equal(await exists(a.destination), false);
  assert.equal(await exists(path.join(dir, 'missing')), false);
  await assertClean(dir);
});

test('a commit waits while another holder has the lock of one of its destinations', async () => {
  const dir = await freshDir();
  const a = fileSpec(path.join(dir, 'a.conf'));
  const b = fileSpec(path.join(dir, 'b.conf'));
  const release = await acquireLock(b.destination);
  const commit = commitTarget(targetSpec([a, b]), render([a, b], ['A', 'B']), { logger, scrubber });
  assert.ok(await stillPending(commit, 250), 'the commit must wait for the lock');
  assert.equal(await exists(a.destination), false, 'nothing written while waiting');
  await release();
  const r = await commit;
  assert.deepEqual(r.written, [a.destination, b.destination]);
  await assertClean(dir);
});

test('two commits of the same target in parallel never interleave (check included)', async () => {
  const dir = await freshDir();
  const a = fileSpec(path.join(dir, 'a.conf'));
  const log = path.join(dir, 'check.log');
  const check = {
    command: [
      'sh',
      '-c',
      'echo "start $(cat "$1")" >> "$0"; sleep 0.3; echo "end $(cat "$1")" >> "$0"',
      log,
      a.destination,
    ],
    timeoutMs: 5000,
  };
  const target = targetSpec([a], check);
  const [r1, r2] = await Promise.all([
    commitTarget(target, render([a], ['one']), { logger, scrubber }),
    commitTarget(target, render([a], ['two']), { logger, scrubber }),
  ]);
  assert.equal(r1.written.length + r2.written.length, 2);
  const lines = (await fsp.readFile(log, 'utf8')).trim().split('\n');
  assert.equal(lines.length, 4, lines.join(' / '));
  // Each check saw its own file from start to end: start X, end X, start Y, end Y.
  assert.equal(lines[0]?.replace('start', 'end'), lines[1], lines.join(' / '));
  assert.equal(lines[2]?.replace('start', 'end'), lines[3], lines.join(' / '));
  assert.notEqual(lines[0], lines[2]);
  await assertClean(dir);
});

test('one destination twice in a target is refused', async () => {
  const dir = await freshDir();
  const a = fileSpec(path.join(dir, 'a.conf'));
  await assert.rejects(
    commitTarget(targetSpec([a, a]), render([a, a], ['1', '2']), { logger, scrubber }),
    (err: unknown) => hasCode(err, 'RLD_ERR_INTERNAL'),
  );
});

test('contentHash is the first 12 hex digits of sha256', () => {
  assert.equal(contentHash(''), 'e3b0c44298fc');
  assert.equal(contentHash('abc'), contentHash(Buffer.from('abc')));
  assert.match(contentHash('x'), /^[0-9a-f]{12}$/);
  assert.notEqual(contentHash('a'), contentHash('b'));
});
