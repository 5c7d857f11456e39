/**
 * Hostile specs and templates (issue 6 §5): each must end in a clear error — a SpecError or
 * RLD_ERR_TEMPLATE naming the file and saying what is wrong — in bounded time and memory,
 * never a hang, a stack trace or an out-of-memory crash.
 *
 * Spec inputs: a "billion laughs" alias bomb, a 10 MB document, a document just under the size
 * cap packed with tiny nodes, a map with 22,000 keys, 10,000 levels of nesting (flow and block),
 * invalid UTF-8. Template inputs: partials (a template that includes itself), deeply nested
 * blocks, invalid UTF-8. The CLI's `validate` (exit 2) is run on a few of them end to end.
 *
 * Two cases found real bugs, since fixed: a template nested 10,000 blocks deep kept Handlebars'
 * parser busy for minutes (now refused before parsing: MAX_BLOCK_DEPTH, MAX_TEMPLATE_BYTES), and
 * invalid UTF-8 in a template file was decoded leniently into U+FFFD (now RLD_ERR_TEMPLATE).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadSpec, MAX_SPEC_BYTES, parseSpec } from '../../src/config/load.js';
import { compileTargets } from '../../src/engine/targets.js';
import { hasCode } from '../../src/errors.js';
import { compileTemplate } from '../../src/template/engine.js';
import { repoRoot, runCli, tempDir } from '../helpers/harness.js';
import { addCanaries, record, secrecyReport } from './support.js';

const ENV_CANARY = 'canary-hostile-env-value-3f9a1c';
addCanaries(ENV_CANARY);

/** A minimal valid spec; `extra` is appended at top level. */
const VALID = `infisical:
  url: http://127.0.0.1:9/api
  auth: { token: { tokenFile: token } }
sources:
  - { projectId: p, environment: dev, path: / }
targets:
  - name: app
    files:
      - contents: "x={{secrets.X}}\\n"
        destination: out/app.conf
`;

/** Nine levels of nine aliases: 9^9 ≈ 387 million nodes once expanded. */
function aliasBomb(): string {
  let s = VALID + 'x-lol0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  for (let i = 1; i < 9; i++)
    s += `x-lol${i}: &a${i} [${Array(9)
      .fill(`*a${i - 1}`)
      .join(',')}]\n`;
  return s;
}

interface Outcome {
  ms: number;
  peakGrowthMb: number;
  error: unknown;
}

/** Run `fn`, expecting it to throw; time it and measure the growth of this process's peak RSS. */
async function measure(fn: () => unknown): Promise<Outcome> {
  const peakBefore = process.resourceUsage().maxRSS;
  const t0 = performance.now();
  let error: unknown;
  try {
    await fn();
  } catch (err) {
    error = err;
  }
  const ms = Math.round(performance.now() - t0);
  const peakGrowthMb = Math.round((process.resourceUsage().maxRSS - peakBefore) / 1024);
  return { ms, peakGrowthMb, error };
}

const figures: string[] = [];

/** Assert a clear error of `code` matching `message`, within `maxMs` and `maxMb` of peak growth. */
function expectClear(
  name: string,
  o: Outcome,
  code: string,
  message: RegExp,
  limits: { maxMs: number; maxMb: number },
): void {
  assert.ok(o.error !== undefined, `${name}: an error, not a success`);
  assert.ok(
    hasCode(o.error, code as Parameters<typeof hasCode>[1]),
    `${name}: ${code}, got ${String(o.error)}`,
  );
  const text = (o.error as Error).message;
  record(text);
  assert.match(text, message, name);
  assert.doesNotMatch(text, /\n\s+at /, `${name}: no stack trace in the message`);
  figures.push(`${name}: ${o.ms} ms, +${o.peakGrowthMb} MB peak`);
  assert.ok(o.ms < limits.maxMs, `${name}: ${o.ms} ms < ${limits.maxMs} ms`);
  assert.ok(
    o.peakGrowthMb < limits.maxMb,
    `${name}: peak RSS +${o.peakGrowthMb} MB < ${limits.maxMb} MB`,
  );
}

test('a YAML alias bomb ("billion laughs") is a SpecError in under 2 s', async () => {
  const o = await measure(() => parseSpec(aliasBomb(), '/tmp/bomb.yaml', {}));
  expectClear('alias bomb', o, 'RLD_ERR_SPEC', /aliases expand to more than \d+ nodes/, {
    maxMs: 2000,
    maxMb: 200,
  });
});

test('a 10 MB spec is refused before parsing; a dense spec just under the cap stays bounded', async () => {
  const huge = VALID + '# ' + 'x'.repeat(10 * 1024 * 1024) + '\n';
  const o = await measure(() => parseSpec(huge, '/tmp/huge.yaml', {}));
  expectClear('10 MB spec', o, 'RLD_ERR_SPEC', /too large \(\d+ bytes; at most 262144\)/, {
    maxMs: 2000,
    maxMb: 200,
  });
  // The worst case the cap still lets through: ~100,000 one-character list items.
  const dense = 'x-dense:\n' + '- a\n'.repeat(Math.floor((MAX_SPEC_BYTES - 20) / 4));
  assert.ok(Buffer.byteLength(dense) <= MAX_SPEC_BYTES);
  const d = await measure(() => parseSpec(dense, '/tmp/dense.yaml', {}));
  expectClear('256 KiB of tiny nodes', d, 'RLD_ERR_SPEC', /unknown key "x-dense"/, {
    maxMs: 10_000,
    maxMb: 1024,
  });
});

test('a map with 22,000 keys, and a duplicate key, are handled in linear time', async () => {
  const keys = Array.from({ length: 22_000 }, (_, i) => `k${i}: 1`);
  const wide = `${VALID}x-wide: {${keys.join(', ')}}\n`;
  const o = await measure(() => parseSpec(wide, '/tmp/wide.yaml', {}));
  expectClear('22,000-key map', o, 'RLD_ERR_SPEC', /unknown key "x-wide"/, {
    maxMs: 5000,
    maxMb: 512,
  });
  const dup = `${VALID}x-dup: {${keys.slice(0, 20_000).join(', ')}, k7: 2}\n`;
  const p = await measure(() => parseSpec(dup, '/tmp/dup.yaml', {}));
  expectClear('duplicate key among 20,000', p, 'RLD_ERR_SPEC', /keys must be unique \("k7"/, {
    maxMs: 5000,
    maxMb: 512,
  });
});

test('10,000 levels of nesting (flow sequences, flow maps, block maps) are a SpecError, not a crash', async () => {
  const n = 10_000;
  const docs: Record<string, string> = {
    'flow sequences': `${VALID}x-deep: ${'['.repeat(n)}${']'.repeat(n)}\n`,
    'flow maps': `${VALID}x-deep: ${'{a: '.repeat(n)}1${'}'.repeat(n)}\n`,
    // Block style: one space more per level (10,000 levels ≈ 50 MB would hit the size cap
    // first, so 700 levels, about where the YAML parser's stack ends).
    'block maps': `${VALID}x-deep:\n${Array.from({ length: 700 }, (_, i) => `${' '.repeat(i + 1)}a${i}:`).join('\n')} 1\n`,
  };
  for (const [name, text] of Object.entries(docs)) {
    const o = await measure(() => parseSpec(text, '/tmp/deep.yaml', {}));
    expectClear(
      `nested ${name}`,
      o,
      'RLD_ERR_SPEC',
      /deep\.yaml:\d+: .*(YAML syntax error|unknown key)/,
      {
        maxMs: 2000,
        maxMb: 300,
      },
    );
  }
});

test('invalid UTF-8 in the spec is a SpecError naming the line; the CLI exits 2', async (t) => {
  const dir = await tempDir(t, 'rld-hostile-');
  const file = join(dir, 'reloader.yaml');
  const lines = VALID.split('\n');
  lines[7] = `${lines[7]} # caf\xe9`; // a Latin-1 byte in a comment on line 8
  await writeFile(file, Buffer.from(lines.join('\n'), 'latin1'));
  const o = await measure(() => loadSpec(file, {}));
  expectClear(
    'invalid UTF-8 spec',
    o,
    'RLD_ERR_SPEC',
    /reloader\.yaml:8: \(root\): the spec file is not valid UTF-8/,
    {
      maxMs: 1000,
      maxMb: 100,
    },
  );
  const cli = await runCli(['validate', '--config', file], { env: { SOME: ENV_CANARY } });
  record(cli.stdout, cli.stderr);
  assert.equal(cli.code, 2, cli.stderr);
  assert.match(cli.stderr, /not valid UTF-8/);
  const bomb = join(dir, 'bomb.yaml');
  await writeFile(bomb, aliasBomb());
  const t0 = performance.now();
  const cli2 = await runCli(['validate', '--config', bomb], { timeoutMs: 10_000 });
  record(cli2.stdout, cli2.stderr);
  assert.equal(cli2.code, 2, cli2.stderr);
  assert.match(cli2.stderr, /aliases expand/);
  figures.push(`validate on the alias bomb: exit 2 in ${Math.round(performance.now() - t0)} ms`);
});

test('a bad value fed from the environment is reported by its YAML path, never its value', async (t) => {
  const text = VALID.replace(
    'infisical:\n',
    'infisical:\n  renewAt: ${RENEW_AT}\n  timeout: ${TIMEOUT}\n',
  );
  const o = await measure(() =>
    parseSpec(text, '/tmp/env.yaml', { RENEW_AT: '0.5', TIMEOUT: ENV_CANARY }),
  );
  expectClear('env-fed bad duration', o, 'RLD_ERR_SPEC', /infisical\.timeout/, {
    maxMs: 1000,
    maxMb: 100,
  });
  const dir = await tempDir(t, 'rld-hostile-env-');
  const file = join(dir, 'reloader.yaml');
  await writeFile(file, text);
  const cli = await runCli(['validate', '--config', file], {
    env: { RENEW_AT: ENV_CANARY, TIMEOUT: '1s' },
  });
  record(cli.stdout, cli.stderr);
  assert.equal(cli.code, 2, cli.stderr);
  assert.match(cli.stderr, /infisical\.renewAt/);
});

test('a template that includes itself through a partial is refused at compile time', async (t) => {
  const o = await measure(() => compileTemplate('self.hbs', 'a {{> self.hbs}} b\n'));
  expectClear(
    'self-including partial',
    o,
    'RLD_ERR_TEMPLATE',
    /self\.hbs" line 1: partials \(\{\{> name\}\}\) are not supported/,
    {
      maxMs: 1000,
      maxMb: 100,
    },
  );
  const block = await measure(() =>
    compileTemplate('block.hbs', '{{#> layout}}{{> block.hbs}}{{/layout}}'),
  );
  expectClear('partial block', block, 'RLD_ERR_TEMPLATE', /partials/, { maxMs: 1000, maxMb: 100 });
  // The same through a spec and the CLI: exit 2 before any network call.
  const dir = await tempDir(t, 'rld-hostile-tpl-');
  await mkdir(join(dir, 'tpl'));
  await writeFile(join(dir, 'tpl', 'loop.hbs'), 'x={{secrets.X}}\n{{> tpl/loop.hbs}}\n');
  await writeFile(join(dir, 'token'), 'static-token');
  const spec = join(dir, 'reloader.yaml');
  await writeFile(
    spec,
    VALID.replace('- contents: "x={{secrets.X}}\\n"', '- template: tpl/loop.hbs'),
  );
  const cli = await runCli(['validate', '--config', spec]);
  record(cli.stdout, cli.stderr);
  assert.equal(cli.code, 2, cli.stderr);
  assert.match(cli.stderr, /loop\.hbs.*partials/);
});

test('deeply nested template blocks: 200 levels compile and render at once', () => {
  const depth = 200;
  const src = '{{#if secrets.A}}'.repeat(depth) + '{{secrets.A}}' + '{{/if}}'.repeat(depth);
  const t0 = performance.now();
  const tpl = compileTemplate('deep.hbs', src);
  const out = tpl.render({
    secrets: new Map([['A', 'v']]),
    env: {},
    target: { name: 't' },
  } as unknown as Parameters<typeof tpl.render>[0]);
  const ms = Math.round(performance.now() - t0);
  assert.equal(out.output, 'v');
  figures.push(`template nested ${depth} deep: compiled and rendered in ${ms} ms`);
  assert.ok(ms < 2000);
});

test(
  'a template nested 10,000 blocks deep is a clear RLD_ERR_TEMPLATE within 3 s',
  {},
  async () => {
    const code = `
      const { compileTemplate } = await import(${JSON.stringify(join(repoRoot, 'dist/src/template/engine.js'))});
      try { compileTemplate('deep.hbs', '{{#if a}}'.repeat(10000) + 'x' + '{{/if}}'.repeat(10000)); console.log('compiled'); }
      catch (e) { console.log(e.code, e.message.slice(0, 200)); }`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const finished = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(false);
      }, 3000);
      child.on('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    assert.ok(finished, 'compileTemplate finished within 3 s');
    assert.match(out, /RLD_ERR_TEMPLATE/);
  },
);

test(
  'invalid UTF-8 in a template file is a clear RLD_ERR_TEMPLATE naming the file',
  {},
  async (t) => {
    const dir = await tempDir(t, 'rld-hostile-utf8-');
    await mkdir(join(dir, 'tpl'));
    await writeFile(join(dir, 'tpl', 'bad.hbs'), Buffer.from([0x78, 0x3d, 0xff, 0xfe, 0x0a]));
    const spec = parseSpec(
      VALID.replace('- contents: "x={{secrets.X}}\\n"', '- template: tpl/bad.hbs'),
      join(dir, 'reloader.yaml'),
      {},
    );
    const o = await measure(() => compileTargets(spec));
    assert.ok(hasCode(o.error, 'RLD_ERR_TEMPLATE'), `got ${String(o.error)}`);
    assert.match((o.error as Error).message, /bad\.hbs.*UTF-8/);
  },
);

test('figures, and no canary in any error or output of this file', (t) => {
  for (const f of figures) t.diagnostic(f);
  secrecyReport(t, 'hostile-input');
});
