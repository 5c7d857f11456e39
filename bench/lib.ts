/**
 * Shared plumbing of the benchmarks (`npm run bench`): statistics, the machine description, the
 * result format every bench prints, signed webhook bodies, file-change detection, the reloader's
 * daemon started in-process, and the hand-written baseline pipeline.
 *
 * Fairness rules kept by every bench: the reloader and its baseline run in the same process (or
 * are spawned the same way), are driven by the same client, and a change is detected on disk by
 * the same `DirWatcher` (inotify via fs.watch, then a read that confirms the expected bytes).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Pool } from 'undici';
import { parseSpec } from '../src/config/load.js';
import type { ReloaderSpec } from '../src/config/types.js';
import { Daemon } from '../src/engine/daemon.js';
import { createLogger, Scrubber, type Logger } from '../src/logger.js';
import { writeDurably } from './durable.js';
import { listen } from '../src/server/app.js';
import { wireDaemon } from '../src/engine/serve.js';
import { Metrics } from '../src/server/metrics.js';
import { signWebhook } from '../src/events/signature.js';
import type { Seed } from '../src/dev/seed.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root, from dist/bench/ (built) or bench/ (tsx). */
export const repoRoot = here.includes('/dist/') ? resolve(here, '..', '..') : resolve(here, '..');
export const mainJs = join(repoRoot, 'dist', 'src', 'main.js');
export const distBench = join(repoRoot, 'dist', 'bench');

// ---------------------------------------------------------------------------------------------
// Statistics and results

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

export function median(samples: readonly number[]): number {
  return percentile(
    [...samples].sort((a, b) => a - b),
    50,
  );
}

/** One number of a bench, with the same-run baseline it is compared with. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  /** value / baseline.value */
  ratio?: number;
  /** The target, in words, and whether it was met. */
  target?: string;
  met?: boolean;
}

export interface BenchResult {
  id: number;
  title: string;
  figures: Figure[];
  notes: string[];
  durationMs: number;
}

export function figure(
  name: string,
  value: number,
  unit: string,
  extra: Omit<Figure, 'name' | 'value' | 'unit'> = {},
): Figure {
  const f: Figure = { name, value: round(value), unit, ...extra };
  if (f.baseline) {
    f.baseline = { ...f.baseline, value: round(f.baseline.value) };
    if (f.ratio === undefined && f.baseline.value > 0) f.ratio = round(value / f.baseline.value);
  }
  return f;
}

export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const k = 10 ** digits;
  return Math.round(x * k) / k;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memGiB: number;
  node: string;
  platform: string;
  date: string;
  loadavg1: number;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
    loadavg1: round(loadavg()[0] ?? 0, 2),
  };
}

/** The line a bench child prints on stdout; `run.ts` reads it back. */
export const RESULT_PREFIX = 'BENCH_RESULT ';

/** Print the figures for a human (stderr) and the JSON for run.ts (stdout). */
export function report(result: BenchResult): void {
  process.stderr.write(
    `\n== ${result.id}. ${result.title} (${(result.durationMs / 1000).toFixed(1)} s)\n`,
  );
  for (const f of result.figures) process.stderr.write(`  ${formatFigure(f)}\n`);
  for (const n of result.notes) process.stderr.write(`  note: ${n}\n`);
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

export function formatFigure(f: Figure): string {
  let s = `${f.name}: ${f.value} ${f.unit}`;
  if (f.baseline) s += `  | baseline ${f.baseline.name}: ${f.baseline.value} ${f.unit}`;
  if (f.ratio !== undefined) s += `  | ratio ${f.ratio}`;
  if (f.target) s += `  | target ${f.target}: ${f.met ? 'MET' : 'MISSED'}`;
  return s;
}

/** Log progress on stderr. */
export function log(message: string): void {
  process.stderr.write(`  .. ${message}\n`);
}

/** Run `main` as a bench process: report its result, exit 1 on an exception. */
export function benchMain(main: () => Promise<BenchResult>): void {
  const watchdog = setTimeout(() => {
    process.stderr.write('bench: timed out after 150 s\n');
    process.exit(1);
  }, 150_000);
  watchdog.unref();
  main().then(
    (result) => {
      report(result);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Temp dirs, time, signatures

export async function tempDir(
  prefix = 'rld-bench-',
  parent = tmpdir(),
): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(parent, prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export const now = (): number => performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const WEBHOOK_SECRET = 'bench-webhook-secret-5b1f0c77e2';

/**
 * A signed delivery: the exact body bytes and the x-infisical-signature header. The body carries
 * the signed `timestamp` (a value event is applied only with one).
 */
export function signed(body: object, secret = WEBHOOK_SECRET): { body: string; header: string } {
  const ts = Date.now();
  const text = JSON.stringify({ ...body, timestamp: ts });
  return { body: text, header: signWebhook(text, secret, ts) };
}

export function valueEvent(key: string, value: string, projectId = PROJECT): object {
  return {
    event: 'secret.updated',
    payload: { secretKey: key, secretValue: value, projectId, environment: ENV, secretPath: '/' },
  };
}

export function modifiedEvent(projectId = PROJECT): object {
  return {
    event: 'secrets.modified',
    project: { workspaceId: projectId, projectId, environment: ENV, secretPath: '/' },
  };
}

export const PROJECT = 'bench-project';
export const ENV = 'prod';
export const CLIENT_ID = 'bench-client-id';
export const CLIENT_SECRET = 'bench-client-secret-3c9d';

/**
 * The local server's seed: one folder holding `secrets`, one universal-auth identity. Built as an
 * object (not YAML): 10,000 keys through the YAML parser would only slow the bench down.
 */
export function seed(secrets: Record<string, string> | ReadonlyMap<string, string>): Seed {
  const folder = secrets instanceof Map ? Object.fromEntries(secrets) : { ...secrets };
  return {
    file: 'bench-seed',
    projects: [
      {
        id: PROJECT,
        name: 'Bench',
        slug: 'bench',
        environments: [
          { slug: ENV, name: 'Production', folders: [{ path: '/', secrets: folder, imports: [] }] },
        ],
      },
    ],
    identities: [
      {
        id: 'bench-identity',
        name: 'bench',
        universal: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, lockout: false },
      },
    ],
  };
}

/** Where the spec header differs between benches. */
export interface SpecHeaderOptions {
  projectId?: string;
  /** The webhook listener (default 127.0.0.1:0); the admin listener takes its host, port 0. */
  listen?: string;
  /** Extra lines of the `webhook` block (e.g. `peers`), indented by two spaces. */
  webhookExtra?: string;
  /** Extra lines of the `infisical` block (e.g. `eventSubscription`), indented by two spaces. */
  infisicalExtra?: string;
}

/** The spec header every bench uses (universal auth against `url`, one source, a signed webhook). */
export function specHeader(
  url: string,
  wait: string,
  payloadValues = 'apply',
  opts: SpecHeaderOptions = {},
): string {
  const listen = opts.listen ?? '127.0.0.1:0';
  const host = listen.slice(0, listen.lastIndexOf(':'));
  return `infisical:
  url: ${url}
  auth: { universal: { clientId: ${CLIENT_ID}, clientSecret: ${CLIENT_SECRET} } }
${opts.infisicalExtra ?? ''}sources:
  - { projectId: ${opts.projectId ?? PROJECT}, environment: ${ENV}, path: / }
webhook:
  listen: ${listen}
  secret: ${WEBHOOK_SECRET}
  payloadValues: ${payloadValues}
${opts.webhookExtra ?? ''}admin:
  listen: ${host}:0
defaults:
  wait: ${wait}
targets:
`;
}

/** One target `k` writing `{{secrets.K}}` and a newline to `out/k.txt`. */
export const TARGET_K = `  - name: k
    files:
      - contents: "{{secrets.K}}\\n"
        destination: out/k.txt
`;

/** One side of an A/B measurement: a run that returns one latency, and the samples. */
export interface Side {
  run(): Promise<number>;
  samples: number[];
}

/**
 * Warm both sides up (`warmup` runs each, interleaved), then take `count` samples per side in
 * alternating blocks of `block`, so that drift (other load) hits both equally.
 */
export async function alternate(
  a: Side,
  b: Side,
  opts: { warmup: number; count: number; block: number; what: string },
): Promise<void> {
  log(`warm-up: ${opts.warmup} ${opts.what} each`);
  for (let i = 0; i < opts.warmup; i += 1) {
    await a.run();
    await b.run();
  }
  log(`measuring: ${opts.count} ${opts.what} each, alternating blocks of ${opts.block}`);
  for (let block = 0; block * opts.block < opts.count; block += 1) {
    const order = block % 2 === 0 ? [a, b] : [b, a];
    for (const side of order) {
      for (let i = 0; i < opts.block && block * opts.block + i < opts.count; i += 1)
        side.samples.push(await side.run());
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Detection of a change on disk

interface Waiter {
  file: string;
  expected: string;
  resolve(atMs: number): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  done: boolean;
  last: string;
}

/**
 * Watches one directory (inotify). `expect(name, contents)` resolves with `performance.now()` of
 * the first moment the file was seen holding exactly `contents`: every event naming the file
 * triggers a read. Also records when each file name was last confirmed (`seen`), for benches
 * that count many files.
 */
export class DirWatcher {
  private readonly watcher: FSWatcher;
  private readonly waiters = new Map<string, Waiter>();
  /** name → listener called with the time of each event naming it */
  private readonly taps = new Map<string, (atMs: number) => void>();

  constructor(readonly dir: string) {
    this.watcher = watch(dir, (_type, name) => {
      if (name === null) return;
      const at = now();
      const tap = this.taps.get(name);
      if (tap) tap(at);
      const waiter = this.waiters.get(name);
      if (waiter) void this.check(waiter);
    });
  }

  /** Call `fn(atMs)` on every event naming `name` (a rename over it, mostly). */
  tap(name: string, fn: (atMs: number) => void): void {
    this.taps.set(name, fn);
  }

  expect(name: string, expected: string, timeoutMs = 5000): Promise<number> {
    return new Promise<number>((resolvePromise, reject) => {
      const waiter: Waiter = {
        file: join(this.dir, name),
        expected,
        resolve: resolvePromise,
        reject,
        done: false,
        last: '(not read)',
        timer: setTimeout(() => {
          waiter.done = true;
          this.waiters.delete(name);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${name}; last read ${JSON.stringify(waiter.last.slice(0, 60))}`,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.set(name, waiter);
    });
  }

  private async check(w: Waiter): Promise<void> {
    let text: string;
    try {
      text = await readFile(w.file, 'utf8');
    } catch {
      return;
    }
    if (w.done) return;
    w.last = text;
    if (text === w.expected) {
      const at = now();
      w.done = true;
      clearTimeout(w.timer);
      this.waiters.delete(basename(w.file));
      w.resolve(at);
    }
  }

  close(): void {
    this.watcher.close();
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP client

export interface Sender {
  send(path: string, delivery: { body: string; header: string }): Promise<number>;
  close(): Promise<void>;
}

/** An undici client (keep-alive) for `origin`; `connections > 1` gives a pool for bursts. */
export function sender(origin: string, connections = 1): Sender {
  const dispatcher = connections > 1 ? new Pool(origin, { connections }) : new Client(origin);
  return {
    async send(path, delivery) {
      const res = await dispatcher.request({
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json', 'x-infisical-signature': delivery.header },
        body: delivery.body,
      });
      await res.body.dump();
      return res.statusCode;
    },
    close: () => dispatcher.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// The reloader's daemon, in-process

export interface InProcessDaemon {
  spec: ReloaderSpec;
  daemon: Daemon;
  metrics: Metrics;
  origin: string;
  path: string;
  /** performance.now() of the last log line whose msg equals each key seen so far */
  marks: Map<string, number>;
  /** Every watched log line since the last `lines.length = 0`: when, and its fields. */
  lines: LoggedLine[];
  close(): Promise<void>;
}

/** One watched log line: performance.now() when it was written, and its parsed fields. */
export interface LoggedLine {
  msg: string;
  at: number;
  fields: Record<string, unknown>;
}

/**
 * A pino destination that drops the bytes (like /dev/null) but notes when some messages were
 * logged: the logger still does all its work (serialising, scrubbing), as in production. Only
 * the watched lines are parsed (into `lines`), after their time is taken.
 */
export function nullDestination(
  marks: Map<string, number>,
  watched: readonly string[],
  lines: LoggedLine[] = [],
): {
  write(line: string): boolean;
} {
  return {
    write(line: string) {
      for (const msg of watched) {
        if (line.includes(`"msg":"${msg}"`)) {
          const at = now();
          marks.set(msg, at);
          lines.push({ msg, at, fields: JSON.parse(line) as Record<string, unknown> });
        }
      }
      return true;
    },
  };
}

/**
 * Start the real daemon in this process, the way `serve.ts` does: spec from YAML text (parseSpec),
 * Metrics, Daemon, both listeners, daemon.start, listen on 127.0.0.1:0; resolves once every target
 * rendered (ready). Logs at info level into a null destination.
 */
export async function startDaemon(
  specYaml: string,
  specFile: string,
  opts: { watchedMessages?: string[]; logger?: Logger; readyTimeoutMs?: number } = {},
): Promise<InProcessDaemon> {
  const spec = parseSpec(specYaml, specFile, {});
  const marks = new Map<string, number>();
  const lines: LoggedLine[] = [];
  const scrubber = new Scrubber();
  const logger =
    opts.logger ??
    createLogger({
      level: 'info',
      scrubber,
      destination: nullDestination(marks, opts.watchedMessages ?? [], lines),
    });
  const { daemon, webhook, admin, metrics } = wireDaemon({ spec, logger, scrubber, env: {} });
  await daemon.start();
  await listen(admin, spec.admin.listen);
  const address = await listen(webhook, spec.webhook.listen);
  daemon.listeningAt({ host: address.host, port: address.port });
  const deadline = now() + (opts.readyTimeoutMs ?? 60_000);
  while (!daemon.ready) {
    await daemon.idle();
    if (daemon.ready) break;
    if (now() > deadline) throw new Error('the daemon did not become ready');
    await sleep(5);
  }
  return {
    spec,
    daemon,
    metrics,
    origin: address.url,
    path: spec.webhook.path,
    marks,
    lines,
    async close() {
      await webhook.close();
      await daemon.stop();
      await admin.close();
    },
  };
}

/** Per-target render counts from the daemon's metrics (every outcome). */
export async function renderCounts(metrics: Metrics): Promise<Map<string, number>> {
  const metric = metrics.registry.getSingleMetric('reloader_renders_total');
  const counts = new Map<string, number>();
  if (!metric) return counts;
  const data = await metric.get();
  for (const v of data.values) {
    const target = String(v.labels['target']);
    counts.set(target, (counts.get(target) ?? 0) + v.value);
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// The hand-written baseline pipeline

export { writeDurably } from './durable.js';

/** What the baseline does with one verified, parsed event: the files to write (in parallel). */
export type BaselineHandler = (
  event: Record<string, unknown>,
) => Promise<Array<{ dest: string; contents: string }>> | Array<{ dest: string; contents: string }>;

export interface Baseline {
  origin: string;
  path: string;
  close(): Promise<void>;
}

/**
 * The minimal hand-written pipeline: a raw `node:http` server, HMAC-SHA256 verification of the
 * raw body (constant-time compare), JSON.parse, an immediate 200, then `handler` decides the
 * files and each is written with `writeDurably`. Writes of one file never overlap: a change that
 * arrives during a write is written right after it (latest wins), like the daemon's one pass at
 * a time.
 */
export async function startBaseline(
  handler: BaselineHandler,
  secret = WEBHOOK_SECRET,
): Promise<Baseline> {
  const writing = new Map<string, { running: Promise<void>; next?: string }>();
  const write = (dest: string, contents: string): void => {
    const slot = writing.get(dest);
    if (slot) {
      slot.next = contents;
      return;
    }
    const entry: { running: Promise<void>; next?: string } = { running: Promise.resolve() };
    const loop = async (data: string): Promise<void> => {
      for (let d: string | undefined = data; d !== undefined;) {
        await writeDurably(dest, d);
        d = entry.next;
        entry.next = undefined;
      }
      writing.delete(dest); // same synchronous step as the last `next` check: nothing is lost
    };
    entry.running = loop(contents).catch((err: unknown) => {
      writing.delete(dest);
      process.stderr.write(`baseline write failed: ${String(err)}\n`);
    });
    writing.set(dest, entry);
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const header = req.headers['x-infisical-signature'];
      const m = typeof header === 'string' ? /^t=(\d+);([0-9a-f]{64})$/.exec(header) : null;
      const expected = createHmac('sha256', secret).update(raw).digest();
      const given = m ? Buffer.from(m[2] as string, 'hex') : Buffer.alloc(0);
      if (!m || given.length !== 32 || !timingSafeEqual(given, expected)) {
        res.writeHead(401).end('{"error":"invalid signature"}');
        return;
      }
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      } catch {
        res.writeHead(400).end('{"error":"invalid json"}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"accepted"}');
      void Promise.resolve(handler(event)).then(
        (files) => {
          for (const f of files) write(f.dest, f.contents);
        },
        (err: unknown) => process.stderr.write(`baseline handler failed: ${String(err)}\n`),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    path: '/hook',
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Random printable value of `length` characters (unique per call with overwhelming odds). */
export function randomValue(length = 24): string {
  let s = '';
  while (s.length < length) s += Math.random().toString(36).slice(2);
  return s.slice(0, length);
}
