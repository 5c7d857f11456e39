#!/usr/bin/env node
// The only file that touches the real process: argv, signals, V8 flags and the exit code.
import { run } from './cli.js';
import { limitYoungGeneration } from './util/young-generation.js';

const code = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  onSignal: (signal, handler) => process.on(signal, handler),
  tuneForDaemon: limitYoungGeneration,
});
process.exit(code);
