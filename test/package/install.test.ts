/**
 * The package as a user installs it: `npm pack` of the built tree, `npm install <tarball>` into a
 * fresh project (the npm registry for the dependencies), then the CLI through `npx`, `validate` on
 * a shipped example, `import { SecretSubscriber }` from plain ESM, and the types from TypeScript.
 * The tarball ships the built code, the schema, the templates and the examples, and nothing that
 * git ignores (no rendered `examples/*\/out`) and no source map.
 *
 * `npm test` builds first, so the pack runs with `--ignore-scripts` (the `prepack` build is
 * checked as a script; building twice would add half a minute).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot, tempDir, userEnv } from '../helpers/harness.js';

const run = promisify(execFile);

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function sh(cmd: string, args: string[], cwd: string, timeoutMs = 180_000): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(cmd, args, {
      cwd,
      timeout: timeoutMs,
      maxBuffer: 32 * 1024 * 1024,
      env: userEnv({ npm_config_update_notifier: 'false', npm_config_fund: 'false' }),
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === 'number' ? e.code : 1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    };
  }
}

function ok(r: Ran, what: string): Ran {
  assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
  return r;
}

test('the packed tarball installs in a fresh project without warnings, runs its CLI and imports', async (t) => {
  const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {
    version: string;
    scripts: Record<string, string>;
  };
  assert.match(pkg.scripts['prepack'] ?? '', /npm run build/, 'prepack builds the package');
  assert.ok(existsSync(join(repoRoot, 'dist', 'src', 'index.js')), 'built before the test');

  const out = await tempDir(t, 'rld-pack-');
  const packed = ok(
    await sh('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out], repoRoot),
    'npm pack',
  );
  const [info] = JSON.parse(packed.stdout) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  assert.ok(info);
  const files = info.files.map((f) => f.path);
  for (const wanted of [
    'dist/src/main.js',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/library/subscriber.d.ts',
    'dist/src/config/schema-validator.cjs',
    'schema/reloader.schema.json',
    'templates/nginx/tls-server.conf.hbs',
    'examples/quickstart/reloader.yaml',
    'examples/node-app/app.mjs',
    'examples/node-app/subscriber.yaml',
  ]) {
    assert.ok(files.includes(wanted), `${wanted} is in the tarball`);
  }
  const rendered = files.filter((f) => /^examples\/[^/]+\/out\//.test(f) || f.endsWith('.map'));
  assert.deepEqual(rendered, [], 'no rendered outputs, no source maps');
  // nothing git ignores (rendered files, local state) is shipped; exit 1 means "none ignored"
  const shipped = files.filter((f) => !f.startsWith('dist/src/'));
  const ignored = await sh('git', ['check-ignore', '--no-index', '--', ...shipped], repoRoot);
  if (ignored.code === 128) {
    console.log(
      `# not a git checkout (${ignored.stderr.trim()}): the ignored-files check is skipped`,
    );
  } else {
    assert.equal(ignored.stdout.trim(), '', 'no file that git ignores is shipped');
    assert.equal(ignored.code, 1, ignored.stderr);
  }

  const app = await tempDir(t, 'rld-install-');
  await writeFile(
    join(app, 'package.json'),
    JSON.stringify({ name: 'fresh-app', version: '1.0.0', private: true, type: 'module' }),
  );
  const install = ok(
    await sh(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', join(out, info.filename)],
      app,
    ),
    'npm install <tarball>',
  );
  assert.doesNotMatch(install.stderr, /EBADENGINE|deprecated|ERESOLVE/, install.stderr);
  ok(await sh('npm', ['ls', '--all'], app), 'npm ls (no missing, invalid or extraneous package)');

  const version = ok(
    await sh('npx', ['--no-install', 'infisical-reloader', '--version'], app),
    'npx --version',
  );
  assert.equal(version.stdout.trim(), pkg.version);
  const example = join(
    'node_modules',
    'infisical-reloader',
    'examples',
    'quickstart',
    'reloader.yaml',
  );
  const valid = ok(
    await sh('npx', ['--no-install', 'infisical-reloader', 'validate', '--config', example], app),
    'validate on the shipped quickstart',
  );
  assert.match(valid.stdout + valid.stderr, /valid \(1 target/);

  await writeFile(
    join(app, 'check.mjs'),
    `import { SecretSubscriber, ReloaderError } from 'infisical-reloader';
const s = new SecretSubscriber({ env: {}, logLevel: 'silent' });
const failed = await s.start().then(() => 'started', (e) => e instanceof ReloaderError && e.code);
console.log(typeof SecretSubscriber, s.get('X') === undefined, failed);
`,
  );
  const imported = ok(
    await sh(process.execPath, ['check.mjs'], app),
    'import { SecretSubscriber }',
  );
  assert.equal(imported.stdout.trim(), 'function true RLD_ERR_SPEC');

  // the types resolve through `exports` under NodeNext resolution
  await writeFile(
    join(app, 'check.ts'),
    `import { SecretSubscriber, type SubscriberOptions } from 'infisical-reloader';
const options: SubscriberOptions = { webhook: false, sources: [{ projectId: 'p' }] };
const s = new SecretSubscriber(options);
s.subscribe('DATABASE_URL', (key: string, value: string | undefined) => void [key, value]);
const v: string | undefined = s.get('DATABASE_URL');
// @ts-expect-error get takes a key name
s.get(1);
export { v };
`,
  );
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  ok(
    await sh(
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--skipLibCheck',
        'check.ts',
      ],
      app,
    ),
    'tsc on a file importing the package',
  );
});
