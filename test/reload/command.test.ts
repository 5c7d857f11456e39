// runCommand with real processes: exit codes, output tails, no shell, ENOENT, and timeouts
// that kill the whole process group (checked in /proc).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCommand } from '../../src/reload/command.js';

/** Live (non-zombie) processes whose command line contains `marker`. */
function liveWithMarker(marker: string): number[] {
  const found: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ');
      if (!cmdline.includes(marker)) continue;
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') found.push(Number(e));
    } catch {
      // gone
    }
  }
  return found;
}

async function waitFor(cond: () => boolean, timeoutMs: number, seen: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms; ${seen()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A unique sleep duration, so that /proc can tell our sleep from anyone else's. */
function marker(): string {
  return `30.${Math.floor(Math.random() * 1e9)}`;
}

test('exit 0 is ok, with stdout and stderr tails', async () => {
  const r = await runCommand(['sh', '-c', 'echo out; echo err >&2'], { timeoutMs: 5000 });
  assert.equal(r.ok, true);
  assert.equal(r.exitCode, 0);
  assert.equal(r.signal, null);
  assert.equal(r.timedOut, false);
  assert.equal(r.stdoutTail, 'out\n');
  assert.equal(r.stderrTail, 'err\n');
  assert.ok(r.durationMs >= 0);
});

test('a non-zero exit is not ok and keeps the exit code', async () => {
  const r = await runCommand(['sh', '-c', 'echo "emerg: bad" >&2; exit 3'], { timeoutMs: 5000 });
  assert.equal(r.ok, false);
  assert.equal(r.exitCode, 3);
  assert.equal(r.timedOut, false);
  assert.equal(r.stderrTail, 'emerg: bad\n');
});

test('a missing binary is ok:false with "command not found"', async () => {
  const r = await runCommand(['rld-no-such-binary-xyz', '-t'], { timeoutMs: 5000 });
  assert.equal(r.ok, false);
  assert.equal(r.exitCode, null);
  assert.equal(r.stderrTail, 'command not found: rld-no-such-binary-xyz');
  const empty = await runCommand([], { timeoutMs: 5000 });
  assert.equal(empty.ok, false);
  assert.match(empty.stderrTail, /empty command/);
});

test('arguments reach the program verbatim: no shell expansion', async () => {
  const arg = '$HOME; echo pwned `id` $(id) *';
  const r = await runCommand(['printf', '%s', arg], { timeoutMs: 5000 });
  assert.equal(r.stdoutTail, arg);
});

test('env and cwd are passed', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'rld-cmd-'));
  try {
    const r = await runCommand(['sh', '-c', 'echo "$RLD_X $(pwd)"'], {
      timeoutMs: 5000,
      env: { PATH: process.env.PATH, RLD_X: 'value-x' },
      cwd: dir,
    });
    assert.equal(r.stdoutTail, `value-x ${await fsp.realpath(dir)}\n`);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('tails keep only the last 2 KiB, in whole lines (a cut line could hold half a secret)', async () => {
  const r = await runCommand(
    [
      process.execPath,
      '-e',
      'for (let i = 0; i < 1000; i++) process.stdout.write(`line-${i}\\n`); process.stdout.write("THE-END")',
    ],
    { timeoutMs: 5000 },
  );
  assert.equal(r.ok, true);
  assert.ok(Buffer.byteLength(r.stdoutTail) <= 2048);
  assert.ok(Buffer.byteLength(r.stdoutTail) > 1900, 'close to the limit');
  assert.match(r.stdoutTail, /^line-\d+\n/, 'starts at a line boundary');
  assert.ok(r.stdoutTail.endsWith('line-999\nTHE-END'));
  const oneLine = await runCommand(
    [process.execPath, '-e', 'process.stdout.write("a".repeat(10000) + "THE-END")'],
    { timeoutMs: 5000 },
  );
  assert.equal(oneLine.stdoutTail, '', 'a single cut line is dropped whole');
});

test('a timeout kills the whole process group, grandchildren included', async () => {
  const m = marker();
  const running = runCommand(['sh', '-c', `sleep ${m}; echo x`], { timeoutMs: 1000 });
  // The grandchild `sleep` exists while the command runs...
  await waitFor(
    () => liveWithMarker(`sleep ${m}`).length > 0,
    900,
    () => 'no sleep process seen',
  );
  const r = await running;
  assert.equal(r.ok, false);
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, 'SIGTERM');
  assert.equal(r.stdoutTail, '', 'the echo after sleep never ran');
  assert.ok(r.durationMs < 2500, `took ${r.durationMs} ms (TERM should suffice)`);
  // ...and no longer once runCommand has resolved.
  assert.deepEqual(liveWithMarker(`sleep ${m}`), [], 'the grandchild was killed');
});

test('a group that ignores SIGTERM gets SIGKILL after the grace', async () => {
  const m = marker();
  const r = await runCommand(['sh', '-c', `trap "" TERM; sleep ${m}; echo x`], {
    timeoutMs: 300,
    killGraceMs: 300,
  });
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, 'SIGKILL');
  assert.ok(r.durationMs >= 550 && r.durationMs < 2500, `took ${r.durationMs} ms`);
  assert.deepEqual(liveWithMarker(`sleep ${m}`), []);
});

test('a background grandchild holding stdout open does not hold up a finished command', async (t) => {
  const m = marker();
  t.after(() => {
    for (const pid of liveWithMarker(`sleep ${m}`)) process.kill(pid, 'SIGKILL');
  });
  const r = await runCommand(['sh', '-c', `sleep ${m} & echo started`], { timeoutMs: 5000 });
  assert.equal(r.ok, true);
  assert.equal(r.stdoutTail, 'started\n');
  assert.ok(r.durationMs < 2000, `took ${r.durationMs} ms`);
  // A command that exits normally keeps what it started (e.g. a daemon): not killed.
  assert.equal(liveWithMarker(`sleep ${m}`).length, 1);
});
