#!/usr/bin/env node
// `npm start`'s build step: runs `npm run build` only when an input of the build is newer than
// the last build, so a second `npm start` starts at once. The last build is the newer of
// dist/.build-stamp (written here after a build) and dist/.tsbuildinfo (written by every
// incremental `tsc -p .`, also one typed by hand). Inputs: src/, test/, bench/, schema/,
// tsconfig.json, package.json and package-lock.json.
//
//   node scripts/build-if-stale.mjs           build when stale
//   node scripts/build-if-stale.mjs --check   only say; exit 0 when up to date, 1 when stale
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const INPUTS = [
  'src',
  'test',
  'bench',
  'schema',
  'tsconfig.json',
  'package.json',
  'package-lock.json',
];
const STAMPS = ['dist/.build-stamp', 'dist/.tsbuildinfo', 'dist/src/main.js'];

const mtime = (path) => {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
};

/** The newest input and its time. */
function newestInput() {
  let newest = { path: '', ms: 0 };
  const visit = (path) => {
    const st = statSync(path, { throwIfNoEntry: false });
    if (st === undefined) return;
    if (st.isDirectory()) {
      for (const name of readdirSync(path)) visit(join(path, name));
    } else if (st.mtimeMs > newest.ms) {
      newest = { path, ms: st.mtimeMs };
    }
  };
  INPUTS.forEach(visit);
  return newest;
}

const built =
  mtime(STAMPS[2]) === undefined ? undefined : Math.max(...STAMPS.map((s) => mtime(s) ?? 0));
const input = newestInput();
const fresh = built !== undefined && input.ms <= built;
if (process.argv.includes('--check')) {
  console.error(fresh ? 'build: up to date' : `build: stale (${input.path || 'no build yet'})`);
  process.exit(fresh ? 0 : 1);
}
if (fresh) {
  console.error('build: up to date, not rebuilding');
  process.exit(0);
}
console.error(
  `build: ${built === undefined ? 'no build yet' : `${input.path} changed`}; building …`,
);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const res = spawnSync(npm, ['run', 'build', '--silent'], { stdio: 'inherit' });
if (res.status !== 0) process.exit(res.status ?? 1);
writeFileSync('dist/.build-stamp', `${new Date().toISOString()}\n`);
