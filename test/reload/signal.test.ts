// Finding and signalling real processes: by pid, by pid file, by process name (comm, truncated
// to 15 characters), the master-not-worker rule, and the error cases.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { promises as fsp, existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  findPid,
  locateProcess,
  normalizeSignal,
  parsePidFile,
  sendSignal,
} from '../../src/reload/signal.js';
import { hasCode } from '../../src/errors.js';

let root: string;
const children: ChildProcess[] = [];
const extraPids: number[] = [];
before(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'rld-sig-'));
});
after(async () => {
  // Grandchildren first, while their parent is alive to reap them (an orphan would be left
  // to pid 1, which may not reap: a zombie).
  for (const pid of extraPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await waitFor(
    () => extraPids.every((pid) => !existsSync(`/proc/${pid}`)),
    5000,
    () => `still there: ${extraPids.filter((pid) => existsSync(`/proc/${pid}`)).join(',')}`,
  ).catch(() => undefined);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await fsp.rm(root, { recursive: true, force: true });
});

/** A name nobody else on this machine uses, at most `len` characters. */
function uniqueName(prefix: string): string {
  return `${prefix}${Math.random().toString(36).slice(2, 10)}`;
}

async function waitFor(cond: () => boolean, timeoutMs: number, seen: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms; ${seen()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A node process that appends `hup <pid>` to `hupFile` on SIGHUP. Started through `exe`
 * (a symlink to node with another name gives it that comm; the script sets it again, see there). With `withChild`, it starts one
 * child of the same kind and name when it reads a line on stdin, and prints `child <pid>`.
 */
const TRAP_SCRIPT = `
  const fs = require('fs');
  const cp = require('child_process');
  const [hupFile, exe] = process.argv.slice(1);
  // Node 24 names its main thread "MainThread", which is what /proc/<pid>/comm shows; put
  // back the name of the executable, as any other program has it
  fs.writeFileSync('/proc/self/comm', require('path').basename(exe).slice(0, 15));
  process.on('SIGHUP', () => fs.appendFileSync(hupFile, 'hup ' + process.pid + '\\n'));
  setInterval(() => {}, 1000);
  process.stdin.on('data', () => {
    const c = cp.spawn(exe, ['-e', process.argv[process.argv.length - 1], hupFile, exe, 'x'], { stdio: ['pipe', 'pipe', 'inherit'] });
    c.stdout.once('data', () => process.stdout.write('child ' + c.pid + '\\n'));
  });
  process.stdin.on('end', () => {});
  process.stdout.write('ready\\n');
`;

async function startTrap(
  hupFile: string,
  exe = process.execPath,
): Promise<{ child: ChildProcess; output: () => string }> {
  // The script is passed last too, so the process can start a copy of itself.
  const child = spawn(exe, ['-e', TRAP_SCRIPT, hupFile, exe, TRAP_SCRIPT], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => (out += d));
  await waitFor(
    () => out.includes('ready\n'),
    5000,
    () => `output ${JSON.stringify(out)}`,
  );
  return { child, output: () => out };
}

function hups(file: string): string[] {
  // the file can exist and still be empty: created by appendFileSync, not yet written
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

/** A pid that is certainly not running: a process that has already exited. */
async function deadPid(): Promise<number> {
  const c = spawn('true');
  await once(c, 'exit');
  assert.ok(c.pid);
  return c.pid;
}

test('by pid: found while alive, and HUP is delivered', async () => {
  const hupFile = path.join(root, 'pid.hup');
  const { child } = await startTrap(hupFile);
  assert.ok(child.pid);
  assert.equal(await findPid({ pid: child.pid }), child.pid);
  sendSignal(child.pid, 'HUP');
  await waitFor(
    () => hups(hupFile).length === 1,
    5000,
    () => `hups: ${hups(hupFile).join(',')}`,
  );
  assert.deepEqual(hups(hupFile), [`hup ${child.pid}`]);
});

test('by pid file: parsed and checked alive; missing, garbage and dead pids are misses', async () => {
  const hupFile = path.join(root, 'pidfile.hup');
  const { child } = await startTrap(hupFile);
  assert.ok(child.pid);
  const pidFile = path.join(root, 'app.pid');
  writeFileSync(pidFile, `${child.pid}\n`);
  assert.equal(await findPid({ pidFile }), child.pid);
  sendSignal(child.pid, 'SIGHUP');
  await waitFor(
    () => hups(hupFile).length === 1,
    5000,
    () => `hups: ${hups(hupFile).join(',')}`,
  );

  const missing = await locateProcess({ pidFile: path.join(root, 'nope.pid') });
  assert.equal(missing.pid, undefined);
  assert.match(missing.reason ?? '', /nope\.pid does not exist/);

  writeFileSync(pidFile, 'not a pid\n');
  assert.match((await locateProcess({ pidFile })).reason ?? '', /does not hold a pid/);

  const dead = await deadPid();
  writeFileSync(pidFile, `${dead}\n`);
  const gone = await locateProcess({ pidFile });
  assert.equal(gone.pid, undefined);
  assert.match(gone.reason ?? '', new RegExp(`pid ${dead} .*no such process`));
  assert.equal(await findPid({ pid: dead }), undefined);
});

test('parsePidFile takes the first line, digits only', () => {
  assert.equal(parsePidFile('123\n'), 123);
  assert.equal(parsePidFile('  77  \nextra'), 77);
  assert.equal(parsePidFile(''), undefined);
  assert.equal(parsePidFile('-1'), undefined);
  assert.equal(parsePidFile('0'), undefined);
  assert.equal(parsePidFile('12abc'), undefined);
});

test('by process name: a copy of sleep is found by its comm; of two unrelated, the lowest pid', async () => {
  const name = uniqueName('rldt'); // 12 characters
  const exe = path.join(root, name);
  await fsp.copyFile('/bin/sleep', exe);
  await fsp.chmod(exe, 0o755);
  assert.equal((await locateProcess({ processName: name })).pid, undefined);
  const first = spawn(exe, ['30']);
  const second = spawn(exe, ['30']);
  children.push(first, second);
  assert.ok(first.pid && second.pid);
  await waitFor(
    () =>
      existsSync(`/proc/${second.pid}/comm`) &&
      readFileSync(`/proc/${second.pid}/comm`, 'utf8') === `${name}\n`,
    5000,
    () => 'second process never showed its comm',
  );
  assert.equal(await findPid({ processName: name }), Math.min(first.pid, second.pid));
  // Delivery: sleep does not handle HUP, so it dies of it.
  const lowest = Math.min(first.pid, second.pid);
  const target = lowest === first.pid ? first : second;
  const exited = once(target, 'exit');
  sendSignal(lowest, 'HUP');
  const [, signal] = (await exited) as [number | null, string | null];
  assert.equal(signal, 'SIGHUP');
});

test('by process name: a name longer than 15 characters matches the truncated comm', async () => {
  const name = `${uniqueName('rldlong')}-server-process`;
  assert.ok(name.length > 15);
  const exe = path.join(root, name);
  await fsp.copyFile('/bin/sleep', exe);
  await fsp.chmod(exe, 0o755);
  const p = spawn(exe, ['30']);
  children.push(p);
  assert.ok(p.pid);
  await waitFor(
    () => existsSync(`/proc/${p.pid}/comm`),
    5000,
    () => 'no comm',
  );
  await waitFor(
    () => readFileSync(`/proc/${p.pid}/comm`, 'utf8') === `${name.slice(0, 15)}\n`,
    5000,
    () => `comm is ${readFileSync(`/proc/${p.pid}/comm`, 'utf8')}`,
  );
  assert.equal(await findPid({ processName: name }), p.pid);
});

test('by process name: the master is chosen, not its same-named child', async () => {
  const name = uniqueName('rldm');
  const exe = path.join(root, name);
  await fsp.symlink(process.execPath, exe);
  const hupFile = path.join(root, 'master.hup');
  const master = await startTrap(hupFile, exe);
  assert.ok(master.child.pid);
  master.child.stdin?.write('spawn\n');
  await waitFor(
    () => /child (\d+)/.test(master.output()),
    5000,
    () => master.output(),
  );
  const childPid = Number(/child (\d+)/.exec(master.output())?.[1]);
  extraPids.push(childPid);
  assert.equal(readFileSync(`/proc/${childPid}/comm`, 'utf8'), `${name}\n`);

  assert.equal(await findPid({ processName: name }), master.child.pid);
  sendSignal(master.child.pid, 'HUP');
  await waitFor(
    () => hups(hupFile).length === 1,
    5000,
    () => `hups: ${hups(hupFile).join(',')}`,
  );
  assert.deepEqual(hups(hupFile), [`hup ${master.child.pid}`]);
});

test('by process name: the master wins even when a worker has a lower pid (pid wrap-around)', async (t) => {
  // Without wrap-around the lowest pid is always the master, so force a low pid for the
  // worker through /proc/sys/kernel/ns_last_pid (root only; racy, hence the retries).
  const name = uniqueName('rldw');
  const exe = path.join(root, name);
  await fsp.symlink(process.execPath, exe);
  const master = await startTrap(path.join(root, 'wrap.hup'), exe);
  const masterPid = master.child.pid;
  assert.ok(masterPid);
  let workerPid: number | undefined;
  for (let attempt = 0; attempt < 8 && workerPid === undefined; attempt++) {
    let want = masterPid - 500 - attempt * 37;
    while (want > 300 && existsSync(`/proc/${want}`)) want -= 1;
    try {
      writeFileSync('/proc/sys/kernel/ns_last_pid', String(want - 1));
    } catch (err) {
      return t.skip(`cannot set ns_last_pid: ${(err as Error).message}`);
    }
    const before = master.output().length;
    master.child.stdin?.write('spawn\n');
    await waitFor(
      () => /child (\d+)/.test(master.output().slice(before)),
      5000,
      () => master.output(),
    );
    const pid = Number(/child (\d+)/.exec(master.output().slice(before))?.[1]);
    extraPids.push(pid);
    if (pid < masterPid) workerPid = pid;
  }
  if (workerPid === undefined) return t.skip('could not get a worker pid below the master pid');
  assert.ok(workerPid < masterPid);
  assert.equal(await findPid({ processName: name }), masterPid);
});

test('our own process is never chosen', async () => {
  const comm = readFileSync('/proc/self/comm', 'utf8').trim();
  assert.notEqual(await findPid({ processName: comm }), process.pid);
  assert.equal(await findPid({ pid: process.pid }), undefined);
});

test('sendSignal errors: ESRCH, unknown signal, refusing our own pid', async () => {
  const dead = await deadPid();
  assert.throws(
    () => sendSignal(dead, 'HUP'),
    (err: unknown) => hasCode(err, 'RLD_ERR_RELOAD') && err.details.osCode === 'ESRCH',
  );
  assert.throws(
    () => sendSignal(dead, 'NOTASIGNAL'),
    (err: unknown) => hasCode(err, 'RLD_ERR_RELOAD'),
  );
  assert.throws(() => sendSignal(process.pid, 'HUP'), /refusing/);
  assert.equal(normalizeSignal('hup'), 'SIGHUP');
  assert.equal(normalizeSignal('SIGUSR2'), 'SIGUSR2');
});

test('by process name: a process whose comm differs (renamed thread, exec -a) is found by its argv[0]', async () => {
  // `exec -a NAME sleep`: comm is "sleep", argv[0] is /opt/app/NAME, as for a Node 24 app
  // whose main thread renames itself "MainThread".
  const name = uniqueName('rld-argv0-long-name-');
  const p = spawn('bash', ['-c', `exec -a /opt/app/${name} sleep 30`]);
  children.push(p);
  assert.ok(p.pid);
  await waitFor(
    () => {
      try {
        return readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').startsWith(`/opt/app/${name}\0`);
      } catch {
        return false;
      }
    },
    5000,
    () => 'argv[0] not set yet',
  );
  assert.equal(readFileSync(`/proc/${p.pid}/comm`, 'utf8'), 'sleep\n', 'comm is not the name');
  assert.equal(await findPid({ processName: name }), p.pid);
  assert.equal((await locateProcess({ processName: `${name}-other` })).pid, undefined);
});
