import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { USAGE, parseCli, run } from '../src/cli.js';
import { quickstartCopy, repoRoot, runCli } from './helpers/harness.js';

function io(env: NodeJS.ProcessEnv = {}) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { io: { stdout, stderr, env }, out: () => out, err: () => err };
}

test('parseCli: defaults, subcommands and flags', () => {
  assert.deepEqual(parseCli([]), {
    command: 'run',
    config: undefined,
    once: false,
    logLevel: 'info',
    target: undefined,
    secrets: undefined,
    port: undefined,
    help: false,
    version: false,
  });
  const p = parseCli(['render', '--config', 'r.yaml', '--target', 'db', '--secrets', 's.yaml']);
  assert.equal(p.command, 'render');
  assert.equal(p.config, 'r.yaml');
  assert.equal(p.target, 'db');
  assert.equal(parseCli(['run', '--once']).once, true);
  assert.equal(parseCli(['dev', '--port', '4000']).port, 4000);
});

test('parseCli: usage errors have RLD_ERR_USAGE', () => {
  for (const argv of [
    ['--nope'],
    ['launch'],
    ['run', 'extra'],
    ['--log-level', 'loud'],
    ['dev', '--port', '70000'],
    ['validate', '--once'],
  ]) {
    assert.throws(() => parseCli(argv), { code: 'RLD_ERR_USAGE' }, argv.join(' '));
  }
});

test('run: --help and --version print and exit 0; a usage error exits 2 with the usage', async () => {
  const h = io();
  assert.equal(await run(['--help'], h.io), 0);
  assert.equal(h.out(), USAGE);
  const v = io();
  assert.equal(await run(['--version'], v.io), 0);
  const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {
    version: string;
  };
  assert.equal(v.out().trim(), pkg.version);
  const u = io();
  assert.equal(await run(['--bogus'], u.io), 2);
  assert.match(u.err(), /^error: RLD_ERR_USAGE: .*bogus/);
  assert.match(u.err(), /\nusage: infisical-reloader \[run\] .*\(--help for all\)\n$/);
  assert.equal(u.err().trim().split('\n').length, 2, 'the error and one line of help');
});

test('validate and render refuse the flags that do not apply to them, with their usage line', async () => {
  const cases: [string[], RegExp, RegExp][] = [
    [
      ['validate', '--target', 'db'],
      /--target does not apply to validate/,
      /usage: infisical-reloader validate \[--config FILE\]/,
    ],
    [
      ['validate', '--secrets', 's.yaml', '--port', '1'],
      /--secrets, --port do not apply to validate/,
      /validate/,
    ],
    [['validate', '--log-level', 'debug'], /--log-level does not apply to validate/, /validate/],
    [['render', '--once'], /--once does not apply to render/, /usage: infisical-reloader render /],
    [['render', '--port', '4000'], /--port does not apply to render/, /render/],
    [['run', '--target', 'db'], /--target does not apply to run/, /\[run\]/],
    [['validate', '--nope'], /Unknown option '--nope'/, /usage: infisical-reloader validate/],
  ];
  for (const [argv, message, usage] of cases) {
    const u = io();
    assert.equal(await run(argv, u.io), 2, argv.join(' '));
    assert.match(u.err(), /^error: RLD_ERR_USAGE: /, argv.join(' '));
    assert.match(u.err(), message, u.err());
    assert.match(u.err(), usage, u.err());
    assert.equal(u.err().trim().split('\n').length, 2, u.err());
  }
  assert.equal(parseCli(['render', '--target', 'db', '--secrets', 's.yaml']).target, 'db');
  assert.equal(
    parseCli(['dev', '--secrets', 's.yaml', '--port', '0', '--log-level', 'warn']).port,
    0,
  );
});

test('validate: the quickstart spec is valid; a missing spec exits 2 naming the file', async (t) => {
  const ok = await runCli(['validate', '--config', join(await quickstartCopy(t), 'reloader.yaml')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /valid \(1 target, 2 files\)/);
  const missing = await runCli(['validate'], {
    env: { RELOADER_CONFIG: '/nonexistent/reloader.yaml' },
  });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /RLD_ERR_SPEC: \/nonexistent\/reloader\.yaml/);
});

test('render: prints every file of the quickstart from its secrets file, writes nothing', async (t) => {
  const spec = join(await quickstartCopy(t), 'reloader.yaml');
  const res = await runCli(['render', '--config', spec]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /==> app: .*out\/app\.env \(mode 0600\)/);
  assert.match(res.stdout, /DATABASE_URL=postgres:\/\/app:change-me-1@127\.0\.0\.1:5432\/app/);
  assert.match(res.stdout, /"port": 5432/);
  assert.equal(existsSync(join(dirname(spec), 'out')), false, 'render writes nothing');
  const one = await runCli(['render', '--config', spec, '--target', 'nope']);
  assert.equal(one.code, 2);
  assert.match(one.stderr, /no target named "nope"/);
});

test("the README's quick loop: the CLI runs from source under tsx, --version included", () => {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', '--version'], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  assert.equal(res.status, 0, res.stderr);
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    version: string;
  };
  assert.equal(res.stdout.trim(), pkg.version);
});
