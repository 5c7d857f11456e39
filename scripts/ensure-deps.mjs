#!/usr/bin/env node
// `npm start`, `npm test` and `npm run bench` on a fresh clone: install the pinned
// dependencies first (`npm ci`, from package-lock.json) when they are not there yet, so the
// README's quick start is two commands and the benchmarks run on a fresh clone too. A no-op
// once node_modules holds the compiler.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (!existsSync('node_modules/.bin/tsc')) {
  console.error('infisical-reloader: installing dependencies (npm ci) …');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const res = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { stdio: 'inherit' });
  process.exit(res.status ?? 1);
}
