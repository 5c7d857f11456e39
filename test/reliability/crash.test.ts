/**
 * Crash safety (a crash leaves every destination fully old or fully new): a child process commits a three-file target (180 B,
 * 64 KiB and 1 MiB files) in a loop, alternating versions A and B, and is SIGKILLed at a random
 * moment of its commits — 200 times in `npm test`, 1000 under SOAK. After every kill each
 * destination must be byte for byte a complete A or a complete B (per destination: the set as
 * a whole may mix A and B), and the start-up clean-up must leave no temp file.
 *
 * The same kill loop runs over an `atomic: set` target: there every kill must leave the whole
 * set A or the whole set B (0 mixed sets), and the set's clean-up (`removeSetLeftovers`, what
 * the next commit does under the lock) must leave exactly one data directory, the live one.
 *
 * About the next start: the daemon and `--once` call `removeCrashLeftovers(destinations)`,
 * which removes each destination's temp files of any age while holding its lock (a live writer
 * always holds the lock while its temp file exists). The kill loop calls `removeStaleTempFiles`
 * with `olderThanMs: 0` after each kill (the test knows the writer is dead) and removes the dead
 * child's lock directories (a real restart breaks them once they are 10 s stale; one cycle below
 * takes that path for real, with a 2 s stale time). A separate test drives the daemon's own
 * start-up path.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { removeStaleTempFiles, TEMP_INFIX } from '../../src/output/atomic-write.js';
import { commitTarget } from '../../src/output/commit.js';
import { DATA_LINK, removeSetLeftovers } from '../../src/output/set-swap.js';
import { Scrubber, silentLogger } from '../../src/logger.js';
import { runOnce } from '../../src/engine/once.js';
import { parseSpec } from '../../src/config/load.js';
import { tempDir, waitFor } from '../helpers/harness.js';
import { crashTarget, FILE_NAMES, versionText } from './fixtures/crash-data.js';
import { addCanaries, recordingLogger, scale, secrecyReport, sleep } from './support.js';

const CHILD = fileURLToPath(new URL('./fixtures/commit-loop.js', import.meta.url));
/** Children started ahead of time, so that Node's start-up is not paid inside a kill cycle. */
const WARM = 2;
/** Independent kill loops run side by side, each on its own directory (2 cores). */
const PIPELINES = 2;
/** A kill lands uniformly in [0, KILL_WINDOW_MS) after the child's first commit began. */
const KILL_WINDOW_MS = 60;

interface Child {
  proc: ChildProcessByStdio<Writable, Readable, Readable>;
  out: () => string;
  exited: Promise<void>;
}

function startChild(dir: string, set: boolean): Child {
  const start = Math.random() < 0.5 ? 'A' : 'B';
  const proc = spawn(process.execPath, [CHILD, dir, start, ...(set ? ['set'] : [])], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdin.on('error', () => undefined); // EPIPE when a child died early: seen via exit
  const exited = new Promise<void>((r) => proc.on('close', () => r()));
  return { proc, out: () => out + (err ? ` stderr: ${err}` : ''), exited };
}

async function kill(c: Child): Promise<void> {
  if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  await c.exited;
}

/** Which complete version each destination holds; fails naming the first torn byte. */
async function versionsOnDisk(dir: string, a: Buffer[], b: Buffer[]): Promise<string> {
  let which = '';
  for (const [i, name] of FILE_NAMES.entries()) {
    const bytes = await fsp.readFile(join(dir, name));
    if (bytes.equals(a[i] as Buffer)) which += 'A';
    else if (bytes.equals(b[i] as Buffer)) which += 'B';
    else {
      const ref = bytes.length <= (a[i] as Buffer).length ? (a[i] as Buffer) : (b[i] as Buffer);
      let at = 0;
      while (at < bytes.length && bytes[at] === ref[at]) at++;
      assert.fail(
        `${name} is torn: ${bytes.length} bytes, neither A (${a[i]?.length}) nor B (${b[i]?.length}); first difference at byte ${at}`,
      );
    }
  }
  return which;
}

/**
 * What a kill left in `dir`: temp files, lock directories and — for a set — data directories
 * that `..data` does not name and a `..data_tmp` link (counted as temps), plus temp files
 * inside the live data directory.
 */
async function leftovers(dir: string): Promise<{ temps: string[]; locks: string[] }> {
  const names = await fsp.readdir(dir);
  const live = await fsp.readlink(join(dir, DATA_LINK)).catch(() => undefined);
  const inLive = live === undefined ? [] : await fsp.readdir(join(dir, live));
  return {
    temps: [
      ...names.filter(
        (n) => n.includes(TEMP_INFIX) || n === '..data_tmp' || (/^\.\.\d/.test(n) && n !== live),
      ),
      ...inLive.filter((n) => n.includes(TEMP_INFIX)).map((n) => `${live}/${n}`),
    ],
    locks: names.filter((n) => n.endsWith('.rld-lock')),
  };
}

interface Stats {
  survived: number;
  midWrite: number;
  mixedSets: number;
  commits: number;
  staleLockMs: number | undefined;
  seen: Set<string>;
}

/**
 * One kill pipeline on its own directory: `cycles` times start a warm child, let it commit,
 * SIGKILL it at a random moment, check every destination, then do what the next start does.
 * With `realRestart`, the first restart waits out the dead child's locks as a real one would.
 */
async function pipeline(
  t: TestContext,
  dir: string,
  cycles: number,
  stats: Stats,
  realRestart: boolean,
  set = false,
): Promise<void> {
  const target = crashTarget(dir, set);
  const a = target.files.map((_f, i) => Buffer.from(versionText(i, 'A')));
  const b = target.files.map((_f, i) => Buffer.from(versionText(i, 'B')));
  const dests = target.files.map((f) => f.destination);
  const versionB = target.files.map((spec, i) => ({ spec, contents: versionText(i, 'B') }));
  await commitTarget(
    target,
    target.files.map((spec, i) => ({ spec, contents: versionText(i, 'A') })),
    { logger: silentLogger(), scrubber: new Scrubber() },
  );
  const warm: Child[] = [];
  t.after(() => Promise.all(warm.map(kill)));
  for (let k = 0; k < cycles; k++) {
    while (warm.length < WARM) warm.push(startChild(dir, set));
    const child = warm.shift() as Child;
    await waitFor(() => child.out().includes('ready') || child.proc.exitCode !== null, {
      what: `child ${k} to load`,
      timeoutMs: 30_000,
    });
    child.proc.stdin.write('go\n');
    await waitFor(() => child.out().includes('committing') || child.proc.exitCode !== null, {
      what: `child ${k} to start committing`,
      timeoutMs: 10_000,
    });
    if (realRestart && k === 0) {
      // Kill while it holds its locks, so that the restart below has some to break.
      await waitFor(async () => (await leftovers(dir)).locks.length > 0, {
        what: 'the child to hold its locks',
      });
    } else {
      await sleep(Math.random() * KILL_WINDOW_MS);
    }
    await kill(child);
    assert.ok(!child.out().includes('failed'), `child ${k} did not fail: ${child.out()}`);
    stats.commits += (child.out().match(/\./g) ?? []).length;

    const which = await versionsOnDisk(dir, a, b);
    stats.seen.add(which);
    if (which !== 'AAA' && which !== 'BBB') stats.mixedSets++;
    const before = await leftovers(dir);
    if (before.temps.length > 0) stats.midWrite++;

    if (realRestart && k === 0) {
      // The first cycle restarts the real way: the dead holder's locks are broken once stale
      // (2 s here instead of the default 10 s), and the commit then goes through.
      assert.ok(before.locks.length > 0, 'the killed child left its locks behind');
      const t0 = performance.now();
      await commitTarget(target, versionB, {
        logger: silentLogger(),
        scrubber: new Scrubber(),
        lock: { staleMs: 2000, waitMs: 10_000 },
      });
      stats.staleLockMs = Math.round(performance.now() - t0);
      assert.equal(await versionsOnDisk(dir, a, b), 'BBB');
    } else {
      // The test knows the holder is dead: remove its locks now rather than wait 10 s.
      for (const lock of before.locks) await fsp.rm(join(dir, lock), { recursive: true });
    }
    if (set) {
      // what the next commit does under the lock (the test knows the writer is dead)
      await removeSetLeftovers(dir, await fsp.readlink(join(dir, DATA_LINK)));
    } else {
      const removed = await removeStaleTempFiles(dests, { olderThanMs: 0 });
      assert.equal(removed, before.temps.length, 'every temp file left by the kill is removed');
    }
    const after = await leftovers(dir);
    assert.deepEqual(after.temps, [], `no temp file after the clean-up (kill ${k})`);
    stats.survived++;
  }
}

/** `kills` SIGKILLs over PIPELINES kill loops side by side; the stats and a summary line. */
async function killLoops(
  t: TestContext,
  set: boolean,
): Promise<{ kills: number; stats: Stats; dirs: string[]; summary: string }> {
  const kills = scale(200, 1000);
  const stats: Stats = {
    survived: 0,
    midWrite: 0,
    mixedSets: 0,
    commits: 0,
    staleLockMs: undefined,
    seen: new Set(),
  };
  const started = performance.now();
  const dirs = await Promise.all(
    Array.from({ length: PIPELINES }, () => tempDir(t, set ? 'rld-crash-set-' : 'rld-crash-')),
  );
  await Promise.all(
    dirs.map((dir, p) =>
      pipeline(
        t,
        dir,
        Math.floor(kills / PIPELINES) + (p < kills % PIPELINES ? 1 : 0),
        stats,
        p === 0,
        set,
      ),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const summary =
    `${stats.survived}/${kills} SIGKILLs survived in ${seconds.toFixed(1)} s (${PIPELINES} pipelines); ` +
    `${stats.commits} commits completed between kills; ${stats.midWrite} kills left a temp file${set ? ' or data dir' : ''} (killed mid-write); ` +
    `${stats.mixedSets} left a mixed A/B set; sets seen: ${[...stats.seen].sort().join(' ')}; ` +
    `real restart over the dead child's stale locks: ${stats.staleLockMs} ms`;
  return { kills, stats, dirs, summary };
}

test('SIGKILL at random moments of multi-file commits: every destination is a whole A or B; the next start leaves no temp file', async (t) => {
  const { kills, stats, summary } = await killLoops(t, false);
  t.diagnostic(`crash: ${summary}`);
  assert.equal(stats.survived, kills);
  assert.ok(stats.midWrite > 0, 'some kills landed in the middle of a write (the test can fail)');
  assert.ok(stats.seen.size >= 2, 'both versions were observed on disk');
});

test('atomic: set under SIGKILL at random moments: every kill leaves a whole A set or a whole B set (0 torn files, 0 mixed sets); the clean-up leaves one data dir', async (t) => {
  const { kills, stats, dirs, summary } = await killLoops(t, true);
  t.diagnostic(`crash (atomic: set): ${summary}`);
  assert.equal(stats.survived, kills);
  assert.equal(stats.mixedSets, 0, 'a set is never mixed');
  assert.ok(stats.midWrite > 0, 'some kills landed in the middle of a write (the test can fail)');
  assert.deepEqual([...stats.seen].sort(), ['AAA', 'BBB'], 'both versions were observed');
  for (const dir of dirs) {
    const names = await fsp.readdir(dir);
    const dataDirs = names.filter((n) => /^\.\.\d/.test(n));
    assert.deepEqual(
      dataDirs,
      [await fsp.readlink(join(dir, DATA_LINK))],
      'one data dir: the live one',
    );
  }
});

test("the daemon's own start-up path (--once here) removes the temp files a crash left, whatever their age", async (t) => {
  const dir = await tempDir(t, 'rld-crash-start-');
  const out = join(dir, 'out');
  await fsp.mkdir(out);
  const old = join(out, `.app.conf${TEMP_INFIX}0123456789ab`);
  const young = join(out, `.app.conf${TEMP_INFIX}ba9876543210`);
  const unrelated = join(out, `.other.conf${TEMP_INFIX}000000000000`);
  for (const f of [old, young, unrelated]) await fsp.writeFile(f, 'half a file');
  const aged = new Date(Date.now() - 60_000);
  await fsp.utimes(old, aged, aged);
  await fsp.utimes(unrelated, aged, aged);
  // Infisical is unreachable: the clean-up (step 2 of --once) happens before any fetch.
  const spec = parseSpec(
    `infisical:
  url: http://127.0.0.1:9/api
  auth: { token: { tokenFile: token } }
  timeout: 200ms
sources:
  - { projectId: p, environment: dev, path: / }
targets:
  - name: app
    files:
      - contents: "x={{secrets.X}}\\n"
        destination: out/app.conf
`,
    join(dir, 'reloader.yaml'),
    {},
  );
  const token = 'canary-crash-static-token-6b1e';
  addCanaries(token);
  await fsp.writeFile(join(dir, 'token'), token);
  const { logger, lines, scrubber } = recordingLogger();
  const result = await runOnce({ spec, logger, scrubber, env: {} });
  assert.ok(lines.some((l) => l.includes('removed temp files left by an earlier crash')));
  assert.equal(result.exitCode, 1, 'no Infisical: --once fails, after cleaning up');
  const names = await fsp.readdir(out);
  assert.ok(!names.includes(old.split('/').pop() as string), 'the aged temp file is removed');
  assert.ok(
    !names.includes(young.split('/').pop() as string),
    'a fresh temp file is removed too: the lock proves no live writer holds it',
  );
  assert.ok(
    names.includes(unrelated.split('/').pop() as string),
    'a temp file of another destination is not ours to remove',
  );
  t.diagnostic('start-up clean-up under the lock: old and fresh temp files removed, others kept');
});

test('secrecy: the static token appears in no log line of this file', (t) => {
  secrecyReport(t, 'crash');
});
