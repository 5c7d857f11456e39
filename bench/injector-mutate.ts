/**
 * Bench 9: the injector's `POST /mutate` latency, p50/p99 over 1000 AdmissionReviews.
 *
 * An admission webhook sits on the path of every pod creation in the namespaces it selects,
 * so its answer time adds to each one. Injector: the real server (`buildInjectorServer`, TLS,
 * info logs to a null sink) answering the integration guide's Deployment, a full mutation
 * each time. Baseline: a bare node:https server in the same process that reads the body and
 * sends the same bytes back — TLS, HTTP and body transfer with no work at all. Both use the
 * same self-signed P-256 certificate (openssl) and are driven by the same kind of undici
 * client over one kept-alive connection, as the API server does; blocks of 100 reviews
 * alternate between the two so that other load hits both alike.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Client } from 'undici';
import { parse } from 'yaml';
import { DEFAULT_INJECTOR_CONFIG } from '../src/injector/config.js';
import { buildInjectorServer } from '../src/injector/server.js';
import { createLogger } from '../src/logger.js';
import { alternate, benchMain, figure, now, repoRoot, summarize, tempDir } from './lib.js';

const REVIEWS = Number(process.env['BENCH_REVIEWS'] ?? 1000);
const WARMUP = 200;
const BLOCK = 100;

/** The guide's Step 1 Deployment, verbatim, from the test fixture. */
function guideDeployment(): { kind?: string; metadata?: { namespace?: string } } | undefined {
  const text = readFileSync(join(repoRoot, 'test', 'injector', 'guide-deployment.yaml'), 'utf8');
  const docs = text
    .split(/^---$/m)
    .map((d) => parse(d) as { kind?: string; metadata?: { namespace?: string } });
  return docs.find((d) => d.kind === 'Deployment');
}

function review(object: ReturnType<typeof guideDeployment>, i: number): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `bench-${i}`,
      kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      resource: { group: 'apps', version: 'v1', resource: 'deployments' },
      namespace: object?.metadata?.namespace ?? 'default',
      operation: 'CREATE',
      object,
    },
  });
}

benchMain(async () => {
  const started = now();
  const tmp = await tempDir();
  const certFile = join(tmp.dir, 'tls.crt');
  const keyFile = join(tmp.dir, 'tls.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', keyFile, '-out', certFile,
  ], { stdio: 'ignore' }); // prettier-ignore
  const ca = readFileSync(certFile, 'utf8');
  const tls = { cert: ca, key: readFileSync(keyFile, 'utf8') };

  const injector = await buildInjectorServer({
    config: DEFAULT_INJECTOR_CONFIG,
    logger: createLogger({ level: 'info', destination: { write: () => true } }),
    tls: { certFile, keyFile },
  });
  const at = await injector.listen({ host: '127.0.0.1', port: 0 });
  const echo = createServer(tls, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const echoPort = (echo.address() as AddressInfo).port;

  const deployment = guideDeployment();
  const client = (port: number): Client =>
    new Client(`https://127.0.0.1:${port}`, { connect: { ca, servername: 'localhost' } });
  const sides = {
    injector: { client: client(at.port), samples: [] as number[], bytes: 0, patches: true },
    echo: { client: client(echoPort), samples: [] as number[], bytes: 0, patches: false },
  };
  let n = 0;
  async function one(side: { client: Client; bytes: number; patches: boolean }): Promise<number> {
    const body = review(deployment, (n += 1));
    const t0 = now();
    const res = await side.client.request({
      method: 'POST',
      path: '/mutate',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const text = await res.body.text();
    const elapsed = now() - t0;
    if (res.statusCode !== 200 || !text.includes(`"bench-${n}"`)) {
      throw new Error(`answered ${res.statusCode}: ${text.slice(0, 200)}`);
    }
    // The injector's answer must be a patch, not a refusal (which is cheaper to compute).
    if (side.patches && !(text.includes('"allowed":true') && text.includes('"JSONPatch"'))) {
      throw new Error(`not a patch: ${text.slice(0, 300)}`);
    }
    side.bytes = text.length;
    return elapsed;
  }

  if (!(await sides.injector.client.request({ method: 'GET', path: '/healthz' })).statusCode) {
    throw new Error('no /healthz');
  }
  await alternate(
    { run: () => one(sides.injector), samples: sides.injector.samples },
    { run: () => one(sides.echo), samples: sides.echo.samples },
    { warmup: WARMUP, count: REVIEWS, block: BLOCK, what: 'reviews' },
  );
  const d = summarize(sides.injector.samples);
  const b = summarize(sides.echo.samples);
  const requestBytes = review(deployment, 0).length;
  for (const side of Object.values(sides)) await side.client.close();
  await injector.close();
  await new Promise((r) => echo.close(r));
  await tmp.remove();

  const base = 'bare TLS echo server';
  return {
    id: 9,
    title: 'Injector: POST /mutate of the guide’s Deployment',
    durationMs: now() - started,
    figures: [
      figure('p50 latency', d.p50, 'ms', { baseline: { name: base, value: b.p50 } }),
      figure('p99 latency', d.p99, 'ms', { baseline: { name: base, value: b.p99 } }),
      figure('mean latency', d.mean, 'ms', { baseline: { name: base, value: b.mean } }),
      figure('max latency', d.max, 'ms', { baseline: { name: base, value: b.max } }),
    ],
    notes: [
      `${d.n} reviews each after ${WARMUP} warm-up reviews, one kept-alive TLS connection each`,
      `request ${requestBytes} bytes; answer ${sides.injector.bytes} bytes (injector) vs ${sides.echo.bytes} bytes (echo)`,
      'latency = request sent → whole answer read, same undici client type for both',
      `load average ${loadavg()[0]?.toFixed(2)} at the end (the webhook's own timeoutSeconds is 5 s)`,
    ],
  };
});
