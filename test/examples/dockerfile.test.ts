/**
 * The Dockerfile, without a Docker engine: parse it, build the context the way `docker build`
 * would (respecting .dockerignore), then perform its steps in a temp dir — each stage gets its
 * own root folder standing for `/` — and run the result:
 *
 *  (1) COPY from the context copies what .dockerignore lets through, and every COPY source is
 *      in the context (a file left out of it fails the real build);
 *  (2) RUN in the build stage runs for real (`npm run build`, `npm prune --omit=dev`), except
 *      `npm ci`, which is replaced by a hard-linked copy of this checkout's node_modules (the
 *      same lockfile, without the network, in a second or two);
 *  (3) RUN in the runtime stage is interpreted command by command (`chmod`, `ln -s`, with
 *      absolute paths mapped into the stage's root; `apt-get` is checked for the packages it
 *      installs, not run); an unknown command fails the test instead of being skipped;
 *  (4) the image's ENTRYPOINT + CMD is run from that root: `--help`, `--version`, `validate` of
 *      the shipped examples against the shipped templates, every production dependency
 *      imported from the pruned node_modules, and the TLS check through its bin link.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmod,
  cp,
  lstat,
  mkdir,
  readFile,
  readlink,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { USAGE } from '../../src/cli.js';
import { repoRoot, tempDir } from '../helpers/harness.js';
import {
  contextFiles,
  dockerIgnore,
  linkTree,
  parseDockerfile,
  run,
  words,
  type Instruction,
  type Stage,
} from './docker-build.js';
import { makeCert, newKey } from './x509.js';

const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
const parsed = parseDockerfile(dockerfile);
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

test('the Dockerfile has the expected shape', () => {
  const [build, runtime, ...more] = parsed.stages;
  assert.ok(build && runtime && more.length === 0, 'two stages: build and runtime');
  assert.equal(build.name, 'build');
  assert.equal(build.from, 'node:24-bookworm-slim');
  assert.equal(runtime.from, 'node:24-bookworm-slim');
  const ops = (s: Stage, op: string): Instruction[] => s.steps.filter((i) => i.op === op);
  const runs = ops(build, 'RUN').map((i) => i.args);
  assert.ok(
    runs.some((r) => /^npm ci\b/.test(r)),
    'build: npm ci',
  );
  assert.ok(
    runs.some((r) => r === 'npm run build'),
    'build: npm run build',
  );
  assert.ok(
    runs.some((r) => /^npm prune --omit=dev\b/.test(r)),
    'build: npm prune --omit=dev',
  );

  const user = ops(runtime, 'USER').at(-1)?.args ?? '';
  assert.match(
    user,
    /^[1-9]\d*(:\d+)?$/,
    'runtime: a numeric non-root USER (runAsNonRoot can verify it)',
  );
  assert.deepEqual(
    ops(runtime, 'EXPOSE').map((i) => i.args),
    ['8080'],
  );
  const entrypoint = JSON.parse(ops(runtime, 'ENTRYPOINT').at(-1)?.args ?? 'null') as string[];
  assert.deepEqual(entrypoint, ['/usr/bin/tini', '-s', '--', 'infisical-reloader']);
  assert.deepEqual(JSON.parse(ops(runtime, 'CMD').at(-1)?.args ?? 'null'), ['run']);
  const apt =
    ops(runtime, 'RUN')
      .map((i) => i.args)
      .find((r) => r.includes('apt-get install')) ?? '';
  assert.match(apt, /apt-get install -y --no-install-recommends tini\b/);
  assert.match(apt, /rm -rf \/var\/lib\/apt\/lists\/\*/);
});

test('the build context follows .dockerignore and holds every COPY source', async () => {
  const ignored = dockerIgnore(await readFile(join(repoRoot, '.dockerignore'), 'utf8'));
  // The matcher itself: the last matching rule wins, parents count.
  assert.equal(ignored('node_modules/yaml/package.json'), true);
  assert.equal(ignored('src/config/load.ts'), false);
  assert.equal(ignored('scripts/run-tests.mjs'), true);
  assert.equal(ignored('scripts/check-tls-pair.mjs'), false);
  const files = await contextFiles(ignored);
  for (const banned of ['node_modules/', 'dist/', 'test/', 'examples/', '.ci/']) {
    assert.ok(!files.some((f) => f.startsWith(banned)), `${banned} must not be in the context`);
  }
  for (const stage of parsed.stages) {
    for (const step of stage.steps.filter((s) => s.op === 'COPY' && !s.args.startsWith('--from'))) {
      const sources = words(step.args).slice(0, -1);
      for (const src of sources) {
        const clean = src.replace(/\/$/, '');
        assert.ok(
          files.some((f) => f === clean || f.startsWith(`${clean}/`)),
          `Dockerfile line ${step.line}: COPY ${src} is not in the build context`,
        );
      }
    }
  }
});

test('performing the Dockerfile gives an image that runs', { timeout: 120_000 }, async (t) => {
  const tmp = await tempDir(t, 'rld-docker-');
  const ignored = dockerIgnore(await readFile(join(repoRoot, '.dockerignore'), 'utf8'));
  const context = await contextFiles(ignored);
  const roots = new Map<string, string>(); // stage name or index → its "/" on disk
  const started = Date.now();

  /** COPY [--from=X] SRC... DEST, Docker rules: a folder's contents go into DEST. */
  async function copy(step: Instruction, root: string, workdir: string): Promise<void> {
    const parts = words(step.args);
    const from = parts[0]?.startsWith('--from=')
      ? parts.shift()!.slice('--from='.length)
      : undefined;
    const dest = parts.pop()!;
    const destAbs = join(root, posix.resolve(workdir, dest));
    for (const src of parts) {
      const clean = src.replace(/\/$/, '');
      let srcAbs: string;
      let members: string[];
      if (from !== undefined) {
        const fromRoot = roots.get(from);
        assert.ok(fromRoot, `line ${step.line}: no stage ${from}`);
        srcAbs = join(fromRoot, clean);
        members = [''];
      } else {
        srcAbs = join(repoRoot, clean);
        // Only what the context holds: .dockerignore applies inside folders too.
        members = context
          .filter((f) => f === clean || f.startsWith(`${clean}/`))
          .map((f) => f.slice(clean.length));
        assert.ok(members.length > 0, `line ${step.line}: ${src} is not in the context`);
      }
      const isDir = (await stat(srcAbs)).isDirectory();
      const target = isDir || dest.endsWith('/') ? destAbs : destAbs;
      for (const m of members) {
        const out = isDir
          ? join(target, m)
          : dest.endsWith('/')
            ? join(target, posix.basename(clean))
            : target;
        await mkdir(dirname(out), { recursive: true });
        await cp(srcAbs + m, out, { recursive: true, verbatimSymlinks: true });
      }
    }
  }

  for (const [index, stage] of parsed.stages.entries()) {
    const root = join(tmp, `stage-${index}`);
    await mkdir(root, { recursive: true });
    roots.set(stage.name ?? String(index), root);
    roots.set(String(index), root);
    const final = index === parsed.stages.length - 1;
    let workdir = '/';
    for (const step of stage.steps) {
      switch (step.op) {
        case 'WORKDIR':
          workdir = posix.resolve(workdir, step.args);
          await mkdir(join(root, workdir), { recursive: true });
          break;
        case 'COPY':
          await copy(step, root, workdir);
          break;
        case 'RUN':
          if (!final) {
            // (2) the build stage runs for real, in its workdir.
            const cwd = join(root, workdir);
            if (/^npm ci\b/.test(step.args)) {
              assert.ok(
                existsSync(join(cwd, 'package-lock.json')),
                'npm ci needs package-lock.json',
              );
              await linkTree(join(repoRoot, 'node_modules'), join(cwd, 'node_modules'));
              break;
            }
            const r = await run(['sh', '-c', step.args], {
              cwd,
              env: { npm_config_offline: 'true', npm_config_update_notifier: 'false' },
              timeoutMs: 90_000,
            });
            assert.equal(
              r.code,
              0,
              `line ${step.line}: RUN ${step.args}\n${r.stdout}\n${r.stderr}`,
            );
            break;
          }
          // (3) the runtime stage, interpreted.
          for (const command of step.args.split('&&').map(words)) {
            const [cmd, ...rest] = command;
            const inRoot = (p: string): string => join(root, posix.resolve(workdir, p));
            if (cmd === 'apt-get') continue; // packages checked in the shape test
            if (cmd === 'rm' && rest.join(' ') === '-rf /var/lib/apt/lists/*') continue;
            if (cmd === 'chmod') {
              const [mode, ...files] = rest;
              for (const f of files) await chmod(inRoot(f), Number.parseInt(mode!, 8));
            } else if (cmd === 'ln' && rest[0] === '-s' && rest.length === 3) {
              await mkdir(dirname(inRoot(rest[2]!)), { recursive: true });
              await symlink(inRoot(rest[1]!), inRoot(rest[2]!));
            } else {
              assert.fail(
                `line ${step.line}: the test cannot perform "${command.join(' ')}"; teach it`,
              );
            }
          }
          break;
        case 'ENV':
        case 'USER':
        case 'EXPOSE':
        case 'ENTRYPOINT':
        case 'CMD':
          break;
        default:
          assert.fail(`line ${step.line}: the test does not know ${step.op}`);
      }
    }
  }

  const image = roots.get(String(parsed.stages.length - 1))!;
  const app = join(image, 'opt', 'infisical-reloader');
  // The layout: production dependencies only, the compiled CLI, schema, templates, the check.
  for (const p of [
    'package.json',
    'dist/src/main.js',
    'schema/reloader.schema.json',
    'templates/nginx/tls.crt.hbs',
  ]) {
    assert.ok(existsSync(join(app, p)), `image: /opt/infisical-reloader/${p}`);
  }
  for (const dep of Object.keys(pkg.dependencies)) {
    assert.ok(
      existsSync(join(app, 'node_modules', dep, 'package.json')),
      `image: dependency ${dep}`,
    );
  }
  for (const dev of Object.keys(pkg.devDependencies)) {
    assert.ok(
      !existsSync(join(app, 'node_modules', dev)),
      `image: dev dependency ${dev} was not pruned`,
    );
  }
  assert.ok(!existsSync(join(app, 'dist', 'test')), 'image: no compiled tests');
  assert.ok(!existsSync(join(app, 'src')), 'image: no TypeScript sources');

  // (4) ENTRYPOINT + CMD, through tini's argv: the command after `--`, found on the image's PATH.
  const runtime = parsed.stages.at(-1)!;
  const entrypoint = JSON.parse(
    runtime.steps.filter((s) => s.op === 'ENTRYPOINT').at(-1)!.args,
  ) as string[];
  const command = entrypoint.slice(entrypoint.indexOf('--') + 1);
  const bin = join(image, 'usr', 'local', 'bin', command[0]!);
  assert.ok((await lstat(bin)).isSymbolicLink(), `${command[0]} is a link on the image's PATH`);
  assert.equal(await readlink(bin), join(app, 'dist', 'src', 'main.js'));
  const exec = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    run([bin, ...command.slice(1), ...args], {
      cwd: image,
      env: { NODE_ENV: 'production', ...env },
    });

  // Independent runs, in parallel to keep the test short.
  const key = newKey();
  await writeFile(join(tmp, 'tls.crt'), makeCert({ subject: 'image.test', key }));
  await writeFile(join(tmp, 'tls.key'), key.pem);
  const nginxSpec = await readFile(
    join(repoRoot, 'examples', 'nginx-sidecar', 'reloader.yaml'),
    'utf8',
  );
  const checkBin = /command: \[(infisical-reloader-check-tls),/.exec(nginxSpec)?.[1];
  assert.ok(checkBin, 'the nginx example checks with infisical-reloader-check-tls');
  const examples = ['nginx-sidecar', 'pgbouncer-sidecar', 'init-container'];
  const imports = Object.keys(pkg.dependencies)
    .map((d) => `await import(${JSON.stringify(d)});`)
    .join('');
  const [help, version, loaded, checked, ...validated] = await Promise.all([
    exec(['--help']),
    exec(['--version']),
    // Every production dependency imports from the pruned tree (nothing the daemon needs is gone).
    run([process.execPath, '--input-type=module', '-e', imports], { cwd: app }),
    // The nginx example's check command is a link the image provides, and it runs.
    run([join(image, 'usr', 'local', 'bin', checkBin), join(tmp, 'tls.crt'), join(tmp, 'tls.key')]),
    // The examples validate against the image's templates (handlebars, yaml and ajv load from
    // the pruned node_modules; the schema is found at /opt/infisical-reloader/schema).
    ...examples.map((example) =>
      exec(['validate', '--config', join(repoRoot, 'examples', example, 'reloader.yaml')], {
        RELOADER_TEMPLATES: join(app, 'templates'),
        INFISICAL_IDENTITY_ID: 'id',
        INFISICAL_PROJECT_ID: 'project',
      }),
    ),
  ]);
  assert.equal(help.code, 0, help.stderr);
  assert.equal(help.stdout, USAGE);
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout, `${pkg.version}\n`);
  assert.equal(loaded.code, 0, loaded.stderr);
  assert.equal(checked.code, 0, checked.stderr);
  assert.match(checked.stdout, /^ok: CN=image\.test; key matches/);
  validated.forEach((r, i) => assert.equal(r.code, 0, `${examples[i]}: ${r.stderr}`));

  t.diagnostic(`built and ran in ${Date.now() - started} ms (${relative(repoRoot, tmp) || tmp})`);
});
