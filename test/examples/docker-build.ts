/**
 * Helpers for test/examples/dockerfile.test.ts: a Dockerfile parser, .dockerignore matching,
 * the build context, a process runner and the `npm ci` stand-in. Just enough of Docker's rules
 * for this repository's Dockerfile; anything they do not know makes the test fail loudly.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, posix } from 'node:path';
import picomatch from 'picomatch';
import { repoRoot } from '../helpers/harness.js';

export interface Instruction {
  op: string;
  args: string;
  line: number;
}
export interface Stage {
  from: string;
  name?: string;
  steps: Instruction[];
}

/** Dockerfile → global ARGs + stages (comments dropped, `\` continuations joined). */
export function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const start = i;
    let logical = lines[i] ?? '';
    if (/^\s*(#|$)/.test(logical)) continue;
    while (/\\\s*$/.test(logical) && i + 1 < lines.length) {
      i += 1;
      const next = lines[i] ?? '';
      if (/^\s*#/.test(next)) continue;
      logical = logical.replace(/\\\s*$/, ' ') + next.trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(logical);
    assert.ok(m, `Dockerfile line ${start + 1}: cannot parse "${logical}"`);
    const op = m[1]!.toUpperCase();
    const rest = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      assert.ok(f, `Dockerfile line ${start + 1}: FROM ${rest}`);
      const from = f[1]!.replace(/\$\{(\w+)\}/g, (_, n: string) => args[n] ?? '');
      stages.push({ from, name: f[2], steps: [] });
    } else if (op === 'ARG' && stages.length === 0) {
      const [k, v = ''] = rest.split('=', 2);
      args[k!] = v;
    } else {
      const stage = stages.at(-1);
      assert.ok(stage, `Dockerfile line ${start + 1}: ${op} before FROM`);
      stage.steps.push({ op, args: rest, line: start + 1 });
    }
  }
  return { args, stages };
}

/**
 * .dockerignore semantics (moby/patternmatcher): patterns are relative to the context root;
 * a path is excluded when the LAST pattern matching the path or one of its parent folders is
 * not a `!` exception.
 */
export function dockerIgnore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, '');
      return { negate, match: picomatch(pattern, { dot: true }) };
    });
  return (path: string) => {
    const parts = path.split('/');
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) if (candidates.some((c) => rule.match(c))) excluded = !rule.negate;
    return excluded;
  };
}

/** Every file of the context, relative, posix, sorted (.git never walked). */
export async function contextFiles(ignored: (p: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(repoRoot, rel), { withFileTypes: true })) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      if (p === '.git') continue;
      if (e.isDirectory()) await walk(p);
      else if (!ignored(p)) out.push(p);
    }
  };
  await walk('');
  return out.sort();
}

/** Split a shell-form command on whitespace (the Dockerfile uses no quoting in RUN). */
export const words = (s: string): string[] => s.trim().split(/\s+/).filter(Boolean);

/** Run argv (no shell) to completion, killed after `timeoutMs`; never rejects on exit codes. */
export function run(
  argv: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Stand-in for `npm ci`: this checkout's node_modules, hard-linked (a copy in a fraction of the
 * time; `npm prune` only unlinks, which leaves the originals alone). The one file npm rewrites
 * in place, the hidden lockfile, is copied instead so the checkout's own stays untouched.
 */
export async function linkTree(from: string, to: string): Promise<void> {
  const linked = await run(['cp', '-al', from, to]);
  if (linked.code !== 0) {
    // Another filesystem (EXDEV): copy instead.
    await rm(to, { recursive: true, force: true });
    const copied = await run(['cp', '-a', from, to], { timeoutMs: 60_000 });
    assert.equal(copied.code, 0, `cp -a: ${copied.stderr}`);
  }
  const hidden = join(to, '.package-lock.json');
  if (existsSync(hidden)) {
    await rm(hidden);
    await cp(join(from, '.package-lock.json'), hidden);
  }
}
