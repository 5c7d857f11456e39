#!/usr/bin/env node
// Runs the compiled test suite (dist/test/**/*.test.js) with node's test runner and fails when
// no test ran: Node 20 exits 0 on "# tests 0", which would let a broken build pass silently.
// Prints the spec reporter on stdout, keeps the TAP stream in test-results.tap, and ends with
// the plain line "tests: N passed, N failed, N skipped".
//
// A folder argument is expanded here to the *.test.js files under it: Node 20 runs the tests of
// a folder given to --test, Node 22 and later take every argument as a file or a glob.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';

const testFiles = (path) =>
  statSync(path).isDirectory()
    ? readdirSync(path, { recursive: true })
        .map(String)
        .filter((f) => f.endsWith('.test.js'))
        .sort()
        .map((f) => join(path, f))
    : [path];
const extra = process.argv.slice(2);
const files = (extra.length > 0 ? extra : ['dist/test/']).flatMap(testFiles);
// A test that hangs fails after 10 minutes; a file whose process never exits (a leaked handle
// after its tests passed) is caught by the watchdog below, which fails the run instead of
// letting CI wait for its own time limit. A soak (SOAK=1) runs for as long as it was asked to.
const soak = process.env.SOAK === '1';
const TEST_TIMEOUT_MS = soak ? undefined : 600_000;
const RUN_LIMIT_MS = Number(process.env.TEST_RUN_LIMIT_MS ?? (soak ? 120 : 20) * 60_000);
const args = [
  '--test',
  ...(TEST_TIMEOUT_MS === undefined ? [] : [`--test-timeout=${TEST_TIMEOUT_MS}`]),
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=tap',
  '--test-reporter-destination=test-results.tap',
  ...files,
];
const child = spawn(process.execPath, args, { stdio: 'inherit' });
const watchdog = setTimeout(() => {
  console.error(
    `run-tests: the run passed ${RUN_LIMIT_MS / 60_000} minutes (a test file that does not exit?); killing it`,
  );
  child.kill('SIGTERM'); // the runner ends its test processes on SIGTERM
  setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
}, RUN_LIMIT_MS);
child.on('exit', (code, signal) => {
  clearTimeout(watchdog);
  let tap = '';
  try {
    tap = readFileSync('test-results.tap', 'utf8');
  } catch {
    console.error('run-tests: no TAP output was written');
    process.exit(1);
  }
  const count = (name) => Number((tap.match(new RegExp(`^# ${name} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
  const tests = count('tests');
  const pass = count('pass');
  const fail = count('fail') + count('cancelled');
  const skipped = count('skipped') + count('todo');
  console.log(`tests: ${pass} passed, ${fail} failed, ${skipped} skipped`);
  if (tests === 0) {
    console.error('run-tests: 0 tests ran; failing on purpose');
    process.exit(1);
  }
  if (signal) process.exit(1);
  process.exit(code ?? 1);
});
