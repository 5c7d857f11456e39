/**
 * Runs `serve` (both listeners and the daemon) in-process on a spec file, with its log lines
 * captured; stopped after the test, which also asserts a clean exit.
 */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { loadSpec } from '../../src/config/load.js';
import type { Daemon } from '../../src/engine/daemon.js';
import { serve } from '../../src/engine/serve.js';
import { createLogger, Scrubber } from '../../src/logger.js';
import { waitFor } from './harness.js';

export interface Served {
  daemon: Daemon;
  /** The webhook listener's base URL (no path). */
  url: string;
  /** The admin listener's base URL. */
  admin: string;
  /** Debug log lines, as written. */
  lines: string[];
  /** Stops the daemon (also done after the test); asserts exit code 0. */
  stop(): Promise<void>;
}

/** `serve` on `specFile`, waited on until ready. `what` names it in failures. */
export async function serveSpec(
  t: TestContext,
  specFile: string,
  what = 'daemon',
): Promise<Served> {
  const env = { PATH: process.env['PATH'] };
  const spec = await loadSpec(specFile, env);
  const lines: string[] = [];
  const scrubber = new Scrubber();
  const logger = createLogger({
    level: 'debug',
    scrubber,
    destination: { write: (line: string) => void lines.push(line) },
  });
  let stopNow!: () => void;
  const stopSignal = new Promise<void>((r) => (stopNow = r));
  type Listening = { url: string; admin: { url: string }; daemon: Daemon };
  let listening!: (i: Listening) => void;
  const up = new Promise<Listening>((r) => (listening = r));
  const exit = serve({ spec, logger, scrubber, env, stopSignal, onListening: (i) => listening(i) });
  const first = await Promise.race([up, exit]);
  if (typeof first === 'number') assert.fail(`${what} exited ${first}: ${lines.join('')}`);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    stopNow();
    assert.equal(await exit, 0, `${what} stops with 0`);
  };
  t.after(stop);
  await waitFor(() => first.daemon.ready, { what: `${what} ready` });
  return { daemon: first.daemon, url: first.url, admin: first.admin.url, lines, stop };
}
