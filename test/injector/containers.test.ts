/**
 * The injected containers actually work. The integration guide's Step 1 Deployment, verbatim
 * (a test adds only the annotations it is about), goes through the mutation; the reloader
 * container is then taken from the patched object as the kubelet would run it — its args, its
 * env (a `configMapKeyRef` resolved from a ConfigMap given here, `fieldRef` to the pod IP, the
 * guide's in-cluster Infisical URL to the local server as the cluster's DNS would), its volume
 * mounts mapped into a temp dir, its ports mapped to free ports — and started as the built CLI
 * against the local Infisical-compatible server with Kubernetes auth on a token minted for the
 * guide's ServiceAccount in the guide's namespace:
 *
 *  - sidecar mode: the startupProbe's /readyz turns 200, `secrets.env` and `secrets.json` hold
 *    every secret of the path; a rotation in Infisical, delivered as a signed webhook, is
 *    rendered and the named process gets the named signal;
 *  - init mode: `run --once` renders the files and exits 0;
 *  - without the webhook Secret (mounted optional): renders, answers webhooks 401 and says why
 *    in /status, and verifies them once the Secret appears;
 *  - with `infisical.com/reloader-config`: the ConfigMap's reloader.yaml runs, its relative
 *    template resolves beside it, `${RELOADER_OUTPUT_PATH}` is the output path.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { signWebhook } from '../../src/events/signature.js';
import { assertNoSecrets, startCli, startInfisical, tempDir, waitFor } from '../helpers/harness.js';
import type { LocalInfisical } from '../../src/dev/local-infisical.js';
import { freePort, requireBinary } from '../e2e/process.js';
import { arr, obj, type Obj } from '../examples/k8s.js';
import { envEntries, guideDeployment, guideDoc, mutated, reloaderOf } from './fixtures.js';

/** The guide's names: its project, environment, path, namespace and ServiceAccount. */
const PROJECT = 'my-project';
const ENV = 'production';
const PATH = '/services/my-service';
const NAMESPACE = 'my-namespace';
const SERVICE_ACCOUNT = 'my-service-sa';
/** The guide's Infisical URL, inside the cluster. */
const GUIDE_API_URL = 'http://infisical.infisical.svc.cluster.local:8080/api';
const IDENTITY = 'ident-guide';
const WEBHOOK_SECRET = 'whsec-injector-test-0123456789';

function seed(secrets: Record<string, string>): string {
  return JSON.stringify({
    projects: [
      {
        id: PROJECT,
        name: PROJECT,
        environments: [{ slug: ENV, name: ENV, folders: { [PATH]: secrets } }],
      },
    ],
    identities: [
      {
        id: IDENTITY,
        name: 'my-service',
        kubernetes: { allowedNamespaces: NAMESPACE, allowedNames: SERVICE_ACCOUNT },
      },
    ],
  });
}

/** The guide's Deployment with `extra` annotations (none: verbatim), mutated: its reloader. */
function injectedGuide(extra: Obj): Obj {
  const deployment = guideDeployment();
  const meta = obj(deployment['metadata'], 'metadata');
  assert.equal(meta['namespace'], NAMESPACE);
  meta['annotations'] = { ...obj(meta['annotations'], 'annotations'), ...extra };
  const { result } = mutated(deployment);
  return reloaderOf(result);
}

interface Pod {
  /** mountPath → the folder standing in for it. */
  dirs: Record<string, string>;
  env: NodeJS.ProcessEnv;
  args: string[];
  adminPort: number;
  webhookPort: number;
  /** The same rewriting, for files the test puts into a mounted volume. */
  map(text: string): string;
}

/**
 * The container's process as the kubelet would start it, with every mount path, the two
 * listener ports (as its `ports` name them) and the cluster's host names replaced by local
 * stand-ins in every env value.
 */
async function podFor(
  root: string,
  container: Obj,
  resolve: {
    configMaps: Record<string, Record<string, string>>;
    podIp: string;
    /** Cluster URL → the local one, as the cluster's DNS would resolve it. */
    urls: Record<string, string>;
  },
): Promise<Pod> {
  const dirs: Record<string, string> = {};
  for (const m of arr(container['volumeMounts'])) {
    const path = String(m['mountPath']);
    dirs[path] = join(root, 'mnt', path);
    await mkdir(dirs[path], { recursive: true });
  }
  const adminPort = await freePort();
  const webhookPort = await freePort();
  const declared = Object.fromEntries(
    arr(container['ports']).map((p) => [String(p['name']), Number(p['containerPort'])]),
  );
  const w = declared['rld-webhook'];
  const a = declared['rld-admin'];
  // One pass, longest path first, so a stand-in is never itself rewritten.
  const byLength = Object.keys(dirs).sort((x, y) => y.length - x.length);
  const paths = new RegExp(
    byLength.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'),
    'g',
  );
  const map = (text: string): string => {
    let out = text;
    for (const [from, to] of Object.entries(resolve.urls)) out = out.replaceAll(from, to);
    if (w !== undefined) out = out.replaceAll(`0.0.0.0:${w}`, `127.0.0.1:${webhookPort}`);
    if (a !== undefined) out = out.replaceAll(`0.0.0.0:${a}`, `127.0.0.1:${adminPort}`);
    return out.replace(paths, (p) => dirs[p]!);
  };
  const env: NodeJS.ProcessEnv = {};
  for (const e of arr(container['env'])) {
    const name = String(e['name']);
    if (typeof e['value'] === 'string') {
      env[name] = map(e['value']);
      continue;
    }
    const from = obj(e['valueFrom'], `${name}.valueFrom`);
    if (from['configMapKeyRef'] !== undefined) {
      const ref = obj(from['configMapKeyRef'], 'configMapKeyRef');
      const value = resolve.configMaps[String(ref['name'])]?.[String(ref['key'])];
      assert.ok(value !== undefined, `${name}: no ConfigMap value for ${JSON.stringify(ref)}`);
      env[name] = value;
    } else if (from['fieldRef'] !== undefined) {
      assert.equal(obj(from['fieldRef'], 'fieldRef')['fieldPath'], 'status.podIP');
      env[name] = resolve.podIp;
    } else {
      assert.fail(`${name}: a valueFrom this test cannot resolve`);
    }
  }
  assert.equal(container['command'], undefined, 'the image’s entrypoint runs infisical-reloader');
  const args = (container['args'] as string[]) ?? [];
  return { dirs, env, args, adminPort, webhookPort, map };
}

/**
 * The guide's Deployment against a fresh local Infisical holding `secrets` at the guide's
 * path, mutated with `annotations` (none: as the guide wrote it), its reloader container laid
 * out as a process, and the projected token the kubelet would write for the guide's
 * ServiceAccount.
 */
async function injectedPod(
  t: TestContext,
  secrets: Record<string, string>,
  annotations: Obj,
): Promise<{ root: string; local: LocalInfisical; reloader: Obj; pod: Pod; saToken: string }> {
  const root = await tempDir(t, 'rld-injected-');
  const local = await startInfisical(t, seed(secrets), { webhookDelayMs: 20 });
  const reloader = injectedGuide(annotations);
  const pod = await podFor(root, reloader, {
    configMaps: { 'my-service-infisical-config': { 'identity-id': IDENTITY } },
    podIp: '127.0.0.1',
    urls: { [GUIDE_API_URL]: local.url },
  });
  assert.equal(pod.env['INFISICAL_API_URL'], local.url, 'the guide’s URL, resolved');
  const sa = guideDoc('ServiceAccount');
  assert.equal(obj(sa['metadata'], 'sa')['name'], SERVICE_ACCOUNT);
  const saToken = local.mintServiceAccountToken({ namespace: NAMESPACE, name: SERVICE_ACCOUNT });
  const tokenDir = pod.dirs['/var/run/secrets/kubernetes.io/serviceaccount']!;
  await writeFile(join(tokenDir, 'token'), saToken, { mode: 0o600 });
  return { root, local, reloader, pod, saToken };
}

/**
 * A stand-in app: a script whose process name is `name`, counting the SIGHUPs it gets. The
 * count goes to a descriptor opened once, so a signal handled late (the shell runs its trap
 * after the current `sleep`) never creates the file again while the temp dir is removed.
 */
async function startApp(
  t: TestContext,
  dir: string,
  name: string,
): Promise<{ hups: () => Promise<number>; stop: () => Promise<void> }> {
  const file = join(dir, name);
  const log = join(dir, `${name}.hups`);
  await writeFile(log, '');
  await writeFile(
    file,
    `#!/bin/sh\nexec 3>>"${log}"\ntrap 'echo hup >&3' HUP\nwhile :; do sleep 0.05; done\n`,
  );
  await chmod(file, 0o755);
  const child = spawn(file, [], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  t.after(stop);
  await waitFor(async () => (await readFile(`/proc/${child.pid}/comm`, 'utf8')).trim() === name, {
    what: `the app's process name to be ${name}`,
  });
  const hups = async (): Promise<number> =>
    (await readFile(log, 'utf8')).split('\n').filter((l) => l === 'hup').length;
  return { hups, stop };
}

test('the injected sidecar, run as its container would be: renders, takes a rotation by webhook, signals the app', async (t) => {
  if (requireBinary(t, 'sh') === undefined) return;
  const appName = `rldapp${process.pid % 100000}`;
  const { root, local, reloader, pod, saToken } = await injectedPod(
    t,
    { DATABASE_URL: 'postgres://u:pw-one-8f2c@db/app', API_KEY: 'key-one-77aa' },
    { 'infisical.com/reload-process': appName, 'infisical.com/reload-signal': 'HUP' },
  );
  // What the kubelet puts in the Secret volume.
  const secretDir = pod.dirs['/var/run/infisical-reloader/webhook']!;
  await writeFile(join(secretDir, 'webhook-secret'), `${WEBHOOK_SECRET}\n`, { mode: 0o600 });
  const app = await startApp(t, root, appName);
  const hups = app.hups;

  // The guide's app has 8080: the reloader's webhook listens elsewhere; the probe asks admin.
  const ports = Object.fromEntries(
    arr(reloader['ports']).map((p) => [String(p['name']), p['containerPort']]),
  );
  assert.notEqual(ports['rld-webhook'], 8080);
  assert.equal(
    envEntries(reloader)['RELOADER_WEBHOOK_LISTEN']?.['value'],
    `0.0.0.0:${ports['rld-webhook']}`,
  );
  const proc = startCli(t, pod.args, { env: pod.env });
  const probe = obj(obj(reloader['startupProbe'], 'startupProbe')['httpGet'], 'httpGet');
  assert.equal(probe['port'], ports['rld-admin']);
  const readyz = `http://127.0.0.1:${pod.adminPort}${String(probe['path'])}`;
  await waitFor(async () => (await fetch(readyz)).status === 200, {
    what: `the startupProbe ${String(probe['path'])} to pass (stderr: ${proc.output().stderr.slice(-400)})`,
    timeoutMs: 20_000,
  });

  const files = pod.dirs['/infisical']!;
  const envFile = await readFile(join(files, 'secrets.env'), 'utf8');
  assert.equal(envFile, 'API_KEY="key-one-77aa"\nDATABASE_URL="postgres://u:pw-one-8f2c@db/app"\n');
  assert.deepEqual(JSON.parse(await readFile(join(files, 'secrets.json'), 'utf8')), {
    API_KEY: 'key-one-77aa',
    DATABASE_URL: 'postgres://u:pw-one-8f2c@db/app',
  });
  const before = await hups();

  local.addWebhook({
    projectId: PROJECT,
    environment: ENV,
    secretPath: PATH,
    url: `http://127.0.0.1:${pod.webhookPort}/infisical/webhook`,
    secretKey: WEBHOOK_SECRET,
  });
  local.setSecret({
    projectId: PROJECT,
    environment: ENV,
    path: PATH,
    key: 'API_KEY',
    value: 'key-two-99bb',
  });
  await waitFor(
    async () => (await readFile(join(files, 'secrets.env'), 'utf8')).includes('key-two-99bb'),
    {
      what: `the rotated value in secrets.env (stderr: ${proc.output().stderr.slice(-1500)})`,
      timeoutMs: 10_000,
    },
  );
  assert.match(await readFile(join(files, 'secrets.json'), 'utf8'), /key-two-99bb/);
  await waitFor(async () => (await hups()) > before, {
    what: `a SIGHUP to ${appName} after the rotation (stderr: ${proc.output().stderr.slice(-400)})`,
    timeoutMs: 10_000,
  });
  const { stdout, stderr } = proc.output();
  assertNoSecrets(
    [stdout, stderr],
    ['pw-one-8f2c', 'key-one-77aa', 'key-two-99bb', WEBHOOK_SECRET, saToken],
  );
  proc.child.kill('SIGTERM');
  assert.equal((await proc.exited).code, 0);
  await app.stop();
});

test('the injected init container, run as its container would be: run --once renders and exits 0', async (t) => {
  const { pod } = await injectedPod(
    t,
    { ONLY: 'only-value-1234' },
    { 'infisical.com/mode': 'init' },
  );
  assert.deepEqual(pod.args, ['run', '--once']);
  const proc = startCli(t, pod.args, { env: pod.env });
  const exit = await proc.exited;
  assert.equal(exit.code, 0, proc.output().stderr);
  const files = pod.dirs['/infisical']!;
  assert.equal(await readFile(join(files, 'secrets.env'), 'utf8'), 'ONLY="only-value-1234"\n');
  assert.deepEqual(JSON.parse(await readFile(join(files, 'secrets.json'), 'utf8')), {
    ONLY: 'only-value-1234',
  });
});

test('the injected sidecar without its webhook Secret: renders, refuses webhooks (401) and says why in /status, until the Secret appears', async (t) => {
  const { pod } = await injectedPod(t, { K: 'k-value-3141' }, {});
  const proc = startCli(t, pod.args, { env: pod.env });
  const admin = `http://127.0.0.1:${pod.adminPort}`;
  await waitFor(async () => (await fetch(`${admin}/readyz`)).status === 200, {
    what: `/readyz (stderr: ${proc.output().stderr.slice(-400)})`,
    timeoutMs: 20_000,
  });
  assert.equal(
    await readFile(join(pod.dirs['/infisical']!, 'secrets.env'), 'utf8'),
    'K="k-value-3141"\n',
  );
  const webhookOf = async (): Promise<Obj> => {
    const status = (await (await fetch(`${admin}/status`)).json()) as Obj;
    return obj(obj(status['channels'], 'channels')['webhook'], 'webhook');
  };
  const webhook = await webhookOf();
  assert.equal(webhook['verifies'], false);
  assert.match(String(webhook['problem']), /webhook-secret/);

  const deliver = async (): Promise<number> => {
    const body = JSON.stringify({
      event: 'secrets.modified',
      project: {
        workspaceId: PROJECT,
        projectId: PROJECT,
        environment: ENV,
        secretPath: PATH,
      },
      timestamp: Date.now(),
    });
    const res = await fetch(`http://127.0.0.1:${pod.webhookPort}/infisical/webhook`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-infisical-signature': signWebhook(body, WEBHOOK_SECRET, Date.now()),
      },
      body,
    });
    return res.status;
  };
  assert.equal(await deliver(), 401);
  // The optional Secret is created: the kubelet fills the volume; the reloader picks it up.
  await writeFile(
    join(pod.dirs['/var/run/infisical-reloader/webhook']!, 'webhook-secret'),
    `${WEBHOOK_SECRET}\n`,
  );
  await waitFor(async () => (await webhookOf())['verifies'] === true, {
    what: 'the webhook to verify once the Secret appears',
    timeoutMs: 5000,
  });
  assert.equal(await deliver(), 200);
});

test('the injected sidecar with infisical.com/reloader-config: runs the ConfigMap’s reloader.yaml, its templates beside it, with the injected variables', async (t) => {
  const { pod } = await injectedPod(
    t,
    { DB_PASSWORD: 'db-pass-2718' },
    { 'infisical.com/reloader-config': 'my-reloader', 'infisical.com/output-path': '/etc/app' },
  );
  assert.equal(pod.env['RELOADER_CONFIG_YAML'], undefined);
  // The ConfigMap's keys, as the kubelet writes them into the volume. The listen addresses are
  // the injected variables (the ports the probes ask); the token path is written out so that
  // the stand-in folder can replace it.
  const configDir = pod.dirs['/etc/infisical-reloader']!;
  await writeFile(
    join(configDir, 'reloader.yaml'),
    pod.map(`infisical:
  auth: { kubernetes: { tokenPath: /var/run/secrets/kubernetes.io/serviceaccount/token } }
webhook:
  listen: \${RELOADER_WEBHOOK_LISTEN}
  secretFile: \${RELOADER_WEBHOOK_SECRET_FILE}
admin:
  listen: \${RELOADER_ADMIN_LISTEN}
targets:
  - name: app
    files:
      - template: app.conf.hbs
        destination: \${RELOADER_OUTPUT_PATH}/app.conf
`),
  );
  await writeFile(join(configDir, 'app.conf.hbs'), 'password = {{secret "DB_PASSWORD"}}\n');
  const proc = startCli(t, pod.args, { env: pod.env });
  await waitFor(
    async () => (await fetch(`http://127.0.0.1:${pod.adminPort}/readyz`)).status === 200,
    {
      what: `/readyz (stderr: ${proc.output().stderr.slice(-400)})`,
      timeoutMs: 20_000,
    },
  );
  assert.equal(
    await readFile(join(pod.dirs['/etc/app']!, 'app.conf'), 'utf8'),
    'password = db-pass-2718\n',
  );
  proc.child.kill('SIGTERM');
  assert.equal((await proc.exited).code, 0);
});
