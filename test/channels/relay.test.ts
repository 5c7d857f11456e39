/**
 * Peer relay with three replicas on 127.0.0.2, 127.0.0.3 and 127.0.0.4 (one webhook port, as
 * three pods behind a headless Service), the peers given as addresses, against the local
 * Infisical-compatible server: one signed delivery to one replica → every replica's file is
 * updated and each reloads once; a stopped replica misses the relay and catches up at its start;
 * a relayed request without a valid signature is refused; nothing is relayed twice.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import type { Daemon } from '../../src/engine/daemon.js';
import { signWebhook } from '../../src/events/signature.js';
import { startInfisical, tempDir, waitFor } from '../helpers/harness.js';
import { portFreeOnAll } from '../helpers/ports.js';
import { serveSpec } from '../helpers/serve.js';

const SECRET = 'whsec-relay-test-7c1d';
const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'] as const;
const SEED = `
projects:
  - id: proj-r
    name: Relay
    environments:
      - slug: prod
        name: Production
        folders:
          /: { DB_PASSWORD: pw-1-aaaa }
identities:
  - id: ident-r
    name: reloader
    universal: { clientId: cid-r, clientSecret: csecret-relay-1, lockout: false }
`;

interface Replica {
  host: string;
  dir: string;
  admin: string;
  daemon: Daemon;
  lines: string[];
  stop(): Promise<void>;
}

async function startReplica(
  t: TestContext,
  host: string,
  port: number,
  infisicalUrl: string,
  dir: string,
): Promise<Replica> {
  const specFile = join(dir, 'reloader.yaml');
  await writeFile(
    specFile,
    `infisical:
  url: ${infisicalUrl}
  auth: { universal: { clientId: cid-r, clientSecret: csecret-relay-1 } }
sources:
  - { projectId: proj-r, environment: prod, path: /, includeImports: false, expandReferences: false }
webhook:
  listen: ${host}:${port}
  secret: ${SECRET}
  maxAge: 10s
  peers:
    addresses: [${HOSTS.join(', ')}]
    timeout: 1s
admin:
  listen: ${host}:0
defaults:
  wait: { min: 20ms, max: 200ms }
targets:
  - name: db
    files:
      - contents: "password={{secrets.DB_PASSWORD}}\\n"
        destination: out/db.conf
    reload:
      command: [sh, -c, 'echo reload >> reloads.log']
`,
  );
  const served = await serveSpec(t, specFile, `replica ${host}`);
  return {
    host,
    dir,
    admin: served.admin,
    daemon: served.daemon,
    lines: served.lines,
    stop: served.stop,
  };
}

async function deliver(host: string, port: number, body: string, headers: Record<string, string>) {
  const res = await request(`http://${host}:${port}/infisical/webhook`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
  });
  return { status: res.statusCode, body: await res.body.text() };
}

function modified(ts: number): string {
  return JSON.stringify({
    event: 'secrets.modified',
    project: {
      workspaceId: 'proj-r',
      projectId: 'proj-r',
      projectName: 'Relay',
      environment: 'prod',
      secretPath: '/',
    },
    timestamp: ts,
  });
}

async function metric(r: Replica, series: string): Promise<number> {
  const res = await request(`${r.admin}/metrics`);
  const text = await res.body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

const fileOf = (r: Replica) => readFile(join(r.dir, 'out', 'db.conf'), 'utf8').catch(() => '');
const reloadsOf = async (r: Replica) =>
  (await readFile(join(r.dir, 'reloads.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean)
    .length;

test('three replicas: one signed delivery reaches all three (one reload each); a stopped replica catches up at start; a forged relay is refused; nothing is relayed twice', async (t) => {
  const local = await startInfisical(t, SEED, { webhookDelayMs: 10 });
  const port = await portFreeOnAll(HOSTS);
  const dirs = await Promise.all(HOSTS.map(() => tempDir(t, 'rld-relay-')));
  const replicas = await Promise.all(
    HOSTS.map((h, i) => startReplica(t, h, port, local.url, dirs[i] as string)),
  );
  for (const r of replicas) {
    assert.equal(await fileOf(r), 'password=pw-1-aaaa\n');
    assert.equal(await reloadsOf(r), 1, `${r.host}: the first render reloads once`);
  }

  // (1) Infisical's one delivery lands on replica .2 (a Service picks one pod).
  local.setSecret({
    projectId: 'proj-r',
    environment: 'prod',
    path: '/',
    key: 'DB_PASSWORD',
    value: 'pw-2-bbbb',
  });
  const body = modified(Date.now());
  const ts = JSON.parse(body).timestamp as number;
  const answer = await deliver(HOSTS[0], port, body, {
    'x-infisical-signature': signWebhook(body, SECRET, ts),
  });
  assert.equal(answer.status, 200, answer.body);
  for (const r of replicas) {
    await waitFor(async () => (await fileOf(r)) === 'password=pw-2-bbbb\n', {
      what: `${r.host} to take the change`,
    });
  }
  for (const r of replicas) await r.daemon.idle();
  for (const r of replicas)
    assert.equal(await reloadsOf(r), 2, `${r.host}: one reload for the change`);
  const [a, b, c] = replicas as [Replica, Replica, Replica];
  await waitFor(
    async () => (await metric(a, 'reloader_peer_relay_total{outcome="delivered"}')) === 2,
    {
      what: 'replica .2 to count two delivered relays',
    },
  );
  for (const r of [b, c]) {
    assert.equal(
      await metric(r, 'reloader_peer_relay_total{outcome="delivered"}'),
      0,
      `${r.host} relays nothing`,
    );
    assert.equal(
      await metric(r, 'reloader_webhook_events_total{type="modified",outcome="accepted"}'),
      1,
      `${r.host} got the delivery once`,
    );
  }
  assert.ok(
    b.lines.some((l) => l.includes('"relayedBy"')),
    'the relayed delivery is logged with the relaying replica',
  );

  // (2) A relayed request without a valid signature: 401, no effect, not relayed.
  const forged = modified(Date.now());
  const refused = await deliver(HOSTS[1], port, forged, {
    'x-infisical-signature': signWebhook(forged, 'not-the-secret', JSON.parse(forged).timestamp),
    'x-infisical-reloader-relay': 'replica-a',
  });
  assert.equal(refused.status, 401);
  const noSig = await deliver(HOSTS[1], port, forged, {
    'x-infisical-reloader-relay': 'replica-a',
  });
  assert.equal(noSig.status, 401);
  assert.equal(await metric(b, 'reloader_peer_relay_total{outcome="delivered"}'), 0);

  // (3) Replica .4 is down: the other two still take the next change; .4 is current after it starts.
  await c.stop();
  local.setSecret({
    projectId: 'proj-r',
    environment: 'prod',
    path: '/',
    key: 'DB_PASSWORD',
    value: 'pw-3-cccc',
  });
  const body3 = modified(Date.now());
  const res3 = await deliver(HOSTS[1], port, body3, {
    'x-infisical-signature': signWebhook(body3, SECRET, JSON.parse(body3).timestamp),
  });
  assert.equal(res3.status, 200);
  for (const r of [a, b]) {
    await waitFor(async () => (await fileOf(r)) === 'password=pw-3-cccc\n', {
      what: `${r.host} to take the change while .4 is down`,
    });
  }
  assert.equal(await fileOf(c), 'password=pw-2-bbbb\n', 'the stopped replica missed it');
  await waitFor(
    async () => (await metric(b, 'reloader_peer_relay_total{outcome="retried"}')) >= 1,
    {
      what: 'the relay to the stopped replica to be retried',
    },
  );
  const restarted = await startReplica(t, HOSTS[2], port, local.url, c.dir);
  assert.equal(await fileOf(restarted), 'password=pw-3-cccc\n', 'current after its start');
});
