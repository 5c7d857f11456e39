#!/usr/bin/env node
// The only file that touches the real process: argv, signals and the exit code.
import { run } from './cli.js';

const code = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  onSignal: (signal, handler) => process.on(signal, handler),
});
process.exit(code);
