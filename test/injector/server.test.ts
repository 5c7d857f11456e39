/**
 * The injector's server over real TLS on 127.0.0.1, its certificate signed by a throwaway CA
 * and verified by the client: POST /mutate answers the guide's Deployment with the request's
 * uid and a JSON Patch that applies; GET /healthz; a malformed review is a 400 and a body over
 * the limit a 413; a certificate rotated the kubelet way (new `..data`) is served to the next
 * connection without a restart, and a mismatched pair keeps the one in use. Then the built CLI
 * as a process: `injector` serves and stops on SIGTERM with exit 0, and refuses to start
 * without its certificate (exit 2).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger } from '../../src/logger.js';
import { DEFAULT_INJECTOR_CONFIG } from '../../src/injector/config.js';
import { buildInjectorServer } from '../../src/injector/server.js';
import { runCli, startCli, tempDir, waitFor } from '../helpers/harness.js';
import { requireBinary } from '../e2e/process.js';
import { obj } from '../examples/k8s.js';
import { applied, guideDeployment, patchOf, reloaderOf, reviewOf } from './fixtures.js';
import { issue, makeCa, writeSecretVolume } from './tls.js';

interface Answer {
  status: number;
  body: string;
}

/** One HTTPS request verified against `ca` (a fresh connection each time). */
function httpsRequest(
  url: string,
  ca: string,
  opts: { method?: string; body?: string | Buffer } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? 'GET',
        ca,
        agent: false,
        headers: opts.body ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The CN of the certificate a fresh, verified handshake is served. */
function servedCn(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.end();
      resolve(String(cn));
    });
    socket.on('error', reject);
  });
}

test('the injector over real TLS: /mutate, /healthz, 400, 413, a rotated certificate without a restart', async (t) => {
  if (requireBinary(t, 'openssl') === undefined) return;
  const dir = await tempDir(t, 'rld-injector-');
  const ca = await makeCa(dir);
  const first = await issue(dir, ca, 'injector-one');
  const second = await issue(dir, ca, 'injector-two');
  const other = await issue(dir, ca, 'injector-other');
  const tlsDir = join(dir, 'tls');
  await mkdir(tlsDir);
  await writeSecretVolume(tlsDir, { 'tls.crt': first.cert, 'tls.key': first.key });

  const lines: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (l: string) => void lines.push(l) },
  });
  const server = await buildInjectorServer({
    config: { ...DEFAULT_INJECTOR_CONFIG, bodyLimit: 65536 },
    logger,
    tls: { certFile: join(tlsDir, 'tls.crt'), keyFile: join(tlsDir, 'tls.key') },
  });
  t.after(() => server.close());
  const at = await server.listen({ host: '127.0.0.1', port: 0 });
  const url = `https://localhost:${at.port}`;

  const health = await httpsRequest(`${url}/healthz`, ca.cert);
  assert.equal(health.status, 200);

  const deployment = guideDeployment();
  const review = reviewOf(deployment);
  const answer = await httpsRequest(`${url}/mutate`, ca.cert, {
    method: 'POST',
    body: JSON.stringify(review),
  });
  assert.equal(answer.status, 200, answer.body);
  const out = JSON.parse(answer.body) as Record<string, unknown>;
  assert.equal(out['apiVersion'], 'admission.k8s.io/v1');
  assert.equal(out['kind'], 'AdmissionReview');
  const response = obj(out['response'], 'response');
  assert.equal(response['uid'], obj(review['request'], 'request')['uid']);
  assert.equal(response['allowed'], true);
  assert.equal(response['patchType'], 'JSONPatch');
  reloaderOf(applied(deployment, patchOf(out)));

  const malformed = await httpsRequest(`${url}/mutate`, ca.cert, { method: 'POST', body: '{"a":' });
  assert.equal(malformed.status, 400);
  assert.match(malformed.body, /malformed AdmissionReview/);
  const noUid = await httpsRequest(`${url}/mutate`, ca.cert, {
    method: 'POST',
    body: JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {},
    }),
  });
  assert.equal(noUid.status, 400);
  assert.match(noUid.body, /uid/);
  const large = await httpsRequest(`${url}/mutate`, ca.cert, {
    method: 'POST',
    body: JSON.stringify({ pad: 'x'.repeat(70_000) }),
  });
  assert.equal(large.status, 413);

  // Rotation: a new ..data folder; the next connection gets the new certificate.
  assert.equal(await servedCn(at.port, ca.cert), 'injector-one');
  await writeSecretVolume(tlsDir, { 'tls.crt': second.cert, 'tls.key': second.key });
  await waitFor(async () => (await servedCn(at.port, ca.cert)) === 'injector-two', {
    what: 'the rotated certificate to be served',
    timeoutMs: 5000,
  });
  // A pair that does not match keeps the one in use, and says so.
  await writeSecretVolume(tlsDir, { 'tls.crt': other.cert, 'tls.key': second.key });
  await waitFor(() => lines.some((l) => l.includes('TLS pair not loaded')), {
    what: 'the mismatched pair to be refused',
    timeoutMs: 5000,
  });
  assert.equal(await servedCn(at.port, ca.cert), 'injector-two');
  const still = await httpsRequest(`${url}/healthz`, ca.cert);
  assert.equal(still.status, 200);
  for (const l of lines) assert.ok(!l.includes('PRIVATE KEY'), 'no key material in the logs');
});

test('the built CLI: `injector` serves until SIGTERM (exit 0) and refuses to start without its pair (exit 2)', async (t) => {
  if (requireBinary(t, 'openssl') === undefined) return;
  const dir = await tempDir(t, 'rld-injector-cli-');
  const ca = await makeCa(dir);
  await issue(dir, ca, 'cli');
  const missing = await runCli(['injector']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /RLD_ERR_USAGE: injector needs --tls-cert FILE and --tls-key FILE/);
  const mismatched = await runCli([
    'injector',
    '--tls-cert',
    join(dir, 'cli.crt'),
    '--tls-key',
    ca.keyFile,
  ]);
  assert.equal(mismatched.code, 2);
  assert.match(mismatched.stderr, /do not load/);

  const proc = startCli(t, [
    'injector',
    '--listen',
    '127.0.0.1:0',
    '--tls-cert',
    join(dir, 'cli.crt'),
    '--tls-key',
    join(dir, 'cli.key'),
  ]);
  const url = await waitFor(
    () => /"url":"(https:\/\/[^"]+)"/.exec(proc.output().stderr + proc.output().stdout)?.[1],
    {
      what: 'the injector to listen',
      timeoutMs: 10_000,
    },
  );
  const port = new URL(url).port;
  const health = await httpsRequest(`https://localhost:${port}/healthz`, ca.cert);
  assert.equal(health.status, 200);
  proc.child.kill('SIGTERM');
  const exit = await proc.exited;
  assert.equal(exit.code, 0, proc.output().stderr);
});
