/**
 * The Kubernetes examples, checked without a cluster:
 *
 *  (1) every YAML document under examples/<name>/k8s/ is validated against the Kubernetes
 *      OpenAPI schema of its kind (kubernetes-models 4.5.1: types, required fields, enums);
 *  (2) the same documents are type-checked against the models' TypeScript interfaces, which
 *      catches what the JSON schemas let through: an unknown or misspelt field
 *      (`readOnlyRootFileSystem`), which `kubectl apply` rejects (strict field validation);
 *  (3) the project's own invariants hold: the reloader's files land on an in-memory emptyDir
 *      shared with the app, probes on /healthz and /readyz :8080, a native sidecar with
 *      shareProcessNamespace and the app's uid (so a signal is allowed), non-root and
 *      read-only everywhere, the auth-delegator binding names the pod's service account, the
 *      ConfigMap holds reloader.yaml byte for byte, the webhook Service reaches port 8080;
 *  (4) every examples/<name>/reloader.yaml passes `infisical-reloader validate` (the built CLI).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, join, posix, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadSpec, requireWebhookSecret } from '../../src/config/load.js';
import type { ReloaderSpec } from '../../src/config/types.js';
import { repoRoot, runCli } from '../helpers/harness.js';
import {
  arr,
  effective,
  envOf,
  httpProbe,
  isObj,
  modelPath,
  mountFor,
  nameOf,
  obj,
  podOf,
  readDocs,
  reloaderOf,
  typeCheck,
  volumeOf,
  where,
  type Doc,
  type Obj,
} from './k8s.js';

const examplesDir = join(repoRoot, 'examples');
/** Examples with a reloader as a native sidecar next to a server it signals. */
const SIDECARS = ['nginx-sidecar', 'pgbouncer-sidecar'];
const INIT = ['init-container'];

function k8sFiles(example: string): string[] {
  const dir = join(examplesDir, example, 'k8s');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => join(dir, f));
}

const examples = readdirSync(examplesDir).filter((e) => existsSync(join(examplesDir, e, 'k8s')));
const docsByExample = new Map(examples.map((e) => [e, k8sFiles(e).flatMap(readDocs)]));
const allDocs = [...docsByExample.values()].flat();

test('the examples this test expects are there', () => {
  assert.deepEqual([...examples].sort(), [...INIT, ...SIDECARS].sort());
  for (const e of examples) assert.ok(docsByExample.get(e)!.length >= 4, `${e}: too few documents`);
});

test('(1) every document validates against the Kubernetes OpenAPI schema of its kind', async () => {
  for (const doc of allDocs) {
    const { module, kind } = modelPath(doc);
    const mod = (await import(module).catch((err: Error) => {
      assert.fail(`${where(doc)}: no model ${module} (${err.message})`);
    })) as Record<string, new (data: unknown) => { validate(): void }>;
    const Model = mod[kind];
    assert.ok(Model, `${where(doc)}: ${module} exports no ${kind}`);
    try {
      new Model(doc.value).validate();
    } catch (err) {
      assert.fail(
        `${where(doc)} (${kind} ${String(obj(doc.value['metadata'], 'metadata')['name'])}): ${(err as Error).message}`,
      );
    }
  }
});

test('(1) the schema check rejects a broken document (the validator is live)', async () => {
  const { Deployment } = await import('kubernetes-models/apps/v1/Deployment');
  const broken = {
    metadata: { name: 'x' },
    spec: {
      selector: { matchLabels: { a: 'b' } },
      template: { spec: { containers: [{ name: 'c', ports: [{ containerPort: 'http' }] }] } },
    },
  };
  assert.throws(() => new Deployment(broken as never).validate(), /containerPort must be integer/);
});

test('(2) no document has a field its kind does not define (and a misspelt one is caught)', () => {
  // One program for both: a copy of the nginx Deployment with one field misspelt must be the
  // only problem found, which proves the check is live without paying for a second program.
  const deployment = docsByExample
    .get('nginx-sidecar')!
    .find((d) => d.value['kind'] === 'Deployment')!;
  const copy = structuredClone(deployment.value);
  const pod = obj(obj(obj(copy['spec'], 'spec')['template'], 'template')['spec'], 'pod');
  const sc = obj(obj(arr(pod['containers'])[0], 'container')['securityContext'], 'securityContext');
  sc['readOnlyRootFileSystem'] = sc['readOnlyRootFilesystem'];
  delete sc['readOnlyRootFilesystem'];
  const mutated: Doc = { file: join(repoRoot, 'mutated-copy.yaml'), index: 0, value: copy };
  const problems = typeCheck([...allDocs, mutated]);
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(
    problems[0]!,
    /^mutated-copy\.yaml#0: .*readOnlyRootFileSystem.*does not exist in type 'ISecurityContext'/,
  );
});

// ---- (3) invariants ----

const workloads = (example: string): Doc[] =>
  docsByExample
    .get(example)!
    .filter((d) =>
      ['Deployment', 'Job', 'StatefulSet', 'DaemonSet'].includes(String(d.value['kind'])),
    );

/** examples/<example>/kustomization.yaml, parsed. */
const kustomizationOf = (example: string): Obj =>
  obj(
    parseAllDocuments(readFileSync(join(examplesDir, example, 'kustomization.yaml'), 'utf8')).map(
      (d) => d.toJS(),
    )[0],
    'kustomization',
  );

const byKind = (example: string, kind: string): Doc[] =>
  docsByExample.get(example)!.filter((d) => d.value['kind'] === kind);

/** The reloader's spec as the pod would load it (its env, the shipped templates). */
async function specFor(example: string, reloader: Obj): Promise<ReloaderSpec> {
  const env = { ...envOf(reloader), RELOADER_TEMPLATES: join(repoRoot, 'templates') };
  return loadSpec(join(examplesDir, example, 'reloader.yaml'), env);
}

for (const example of examples) {
  test(`(3) ${example}: pods are non-root, read-only, capability-free and bounded`, () => {
    assert.ok(workloads(example).length > 0, 'no workload');
    for (const doc of workloads(example)) {
      const pod = podOf(doc);
      const psc = obj(pod.spec['securityContext'], `${where(doc)}: pod securityContext`);
      assert.equal(psc['runAsNonRoot'], true, `${where(doc)}: runAsNonRoot`);
      assert.deepEqual(psc['seccompProfile'], { type: 'RuntimeDefault' }, `${where(doc)}: seccomp`);
      for (const c of [...pod.init, ...pod.main]) {
        const what = `${where(doc)} container ${String(c['name'])}`;
        const uid = effective(pod, c, 'runAsUser');
        assert.ok(typeof uid === 'number' && uid > 0, `${what}: numeric non-root runAsUser`);
        const sc = obj(c['securityContext'], `${what}: securityContext`);
        assert.equal(sc['allowPrivilegeEscalation'], false, `${what}: allowPrivilegeEscalation`);
        assert.equal(sc['readOnlyRootFilesystem'], true, `${what}: readOnlyRootFilesystem`);
        const caps = obj(sc['capabilities'], `${what}: capabilities`);
        assert.deepEqual(caps['drop'], ['ALL'], `${what}: drop ALL`);
        assert.equal(caps['add'], undefined, `${what}: adds no capability`);
        const res = obj(c['resources'], `${what}: resources`);
        const req = obj(res['requests'], `${what}: requests`);
        assert.ok(req['cpu'] && req['memory'], `${what}: cpu and memory requests`);
        assert.ok(obj(res['limits'], `${what}: limits`)['memory'], `${what}: memory limit`);
        for (const m of arr(c['volumeMounts'])) volumeOf(pod, String(m['name']));
      }
      // The service-account token reaches the reloader only, through a projected volume.
      assert.equal(pod.spec['automountServiceAccountToken'], false, `${where(doc)}: no automount`);
    }
  });

  test(`(3) ${example}: the reloader's files, config, token and secret are where reloader.yaml says`, async () => {
    for (const doc of workloads(example)) {
      const pod = podOf(doc);
      const reloader = reloaderOf(pod);
      const what = `${where(doc)} reloader`;
      const env = envOf(reloader);
      for (const v of [
        'INFISICAL_API_URL',
        'INFISICAL_IDENTITY_ID',
        'INFISICAL_PROJECT_ID',
        'INFISICAL_ENVIRONMENT',
      ]) {
        assert.ok(env[v], `${what}: env ${v}`);
      }
      // V8's heap limit, well under the container's memory limit.
      const heap = /--max-old-space-size=(\d+)/.exec(env['NODE_OPTIONS'] ?? '');
      assert.ok(heap, `${what}: NODE_OPTIONS --max-old-space-size`);
      const limit = String(
        obj(obj(reloader['resources'], 'resources')['limits'], 'limits')['memory'],
      );
      const limitMi = Number(/^(\d+)Mi$/.exec(limit)?.[1] ?? NaN);
      assert.ok(Number(heap[1]) * 2 <= limitMi, `${what}: heap ${heap[1]} MiB vs limit ${limit}`);

      // --config points into a ConfigMap that holds reloader.yaml byte for byte.
      const args = (reloader['args'] as string[] | undefined) ?? [];
      assert.equal(reloader['command'], undefined, `${what}: keeps the image's entrypoint (tini)`);
      const configPath = args[args.indexOf('--config') + 1];
      assert.ok(args.includes('--config') && configPath, `${what}: --config FILE`);
      const configMount = mountFor(reloader, configPath);
      assert.ok(configMount, `${what}: nothing mounted at ${configPath}`);
      const cmName = obj(
        volumeOf(pod, String(configMount['name']))['configMap'],
        `${what}: config volume is a ConfigMap`,
      )['name'];
      const cm = byKind(example, 'ConfigMap').find((d) => nameOf(d) === cmName);
      assert.ok(cm, `${what}: ConfigMap ${String(cmName)} is not in the example`);
      const key = posix.relative(String(configMount['mountPath']), configPath);
      const fileText = readFileSync(join(examplesDir, example, 'reloader.yaml'), 'utf8');
      assert.equal(
        obj(cm.value['data'], 'data')[key],
        fileText,
        `${where(cm)}: data["${key}"] differs from examples/${example}/reloader.yaml; regenerate with ` +
          `sed 's/^/    /; s/^    $//' examples/${example}/reloader.yaml`,
      );

      const spec = await specFor(example, reloader);
      // Every destination is on a writable in-memory emptyDir.
      for (const target of spec.targets) {
        for (const f of target.files) {
          const m = mountFor(reloader, dirname(f.destination));
          assert.ok(m, `${what}: nothing mounted for ${f.destination}`);
          assert.notEqual(m['readOnly'], true, `${what}: ${f.destination} is on a read-only mount`);
          const v = volumeOf(pod, String(m['name']));
          assert.equal(
            obj(v['emptyDir'], `${what}: ${String(v['name'])} is an emptyDir`)['medium'],
            'Memory',
            `${what}: ${String(v['name'])} medium Memory`,
          );
        }
      }
      // Kubernetes auth, from a projected service-account token with the API server's audience.
      assert.equal(spec.infisical.auth.kind, 'kubernetes');
      if (spec.infisical.auth.kind === 'kubernetes') {
        const tokenPath = spec.infisical.auth.tokenPath;
        const m = mountFor(reloader, tokenPath);
        assert.ok(m, `${what}: nothing mounted at ${tokenPath}`);
        const projected = obj(
          volumeOf(pod, String(m['name']))['projected'],
          `${what}: token volume is projected`,
        );
        const source = arr(projected['sources'])
          .map((s) => s['serviceAccountToken'])
          .find(isObj);
        assert.ok(source, `${what}: projected serviceAccountToken`);
        assert.equal(source['path'], posix.relative(String(m['mountPath']), tokenPath));
        assert.equal(
          source['audience'],
          undefined,
          'client-JWT mode needs the API server audience',
        );
      }
      // The auth-delegator binding names this pod's service account, which the example defines.
      const sa = pod.spec['serviceAccountName'];
      assert.ok(
        byKind(example, 'ServiceAccount').some((d) => nameOf(d) === sa),
        `${what}: ServiceAccount ${String(sa)}`,
      );
      const bindings = byKind(example, 'ClusterRoleBinding').filter((b) =>
        arr(b.value['subjects']).some((s) => s['kind'] === 'ServiceAccount' && s['name'] === sa),
      );
      assert.equal(bindings.length, 1, `${what}: one ClusterRoleBinding for ${String(sa)}`);
      assert.deepEqual(bindings[0]!.value['roleRef'], {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'system:auth-delegator',
      });
      const subject = arr(bindings[0]!.value['subjects'])[0]!;
      const kustomization = kustomizationOf(example);
      assert.equal(
        subject['namespace'],
        kustomization['namespace'],
        'binding subject namespace = kustomization namespace',
      );
    }
  });

  test(`(3) ${example}: kustomization.yaml lists every manifest, and the README explains it`, () => {
    const dir = join(examplesDir, example);
    const k = kustomizationOf(example);
    assert.equal(k['kind'], 'Kustomization');
    assert.deepEqual(
      [...(k['resources'] as string[])].sort(),
      k8sFiles(example)
        .map((f) => relative(dir, f))
        .sort(),
    );
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    assert.match(readme, new RegExp(`kubectl apply -k examples/${example}`));
    assert.match(readme, /system:auth-delegator/);
    assert.match(readme, /## Troubleshooting/);
    assert.match(readme, /Kubernetes auth method not found for identity/);
  });
}

for (const example of SIDECARS) {
  test(`(3) ${example}: a native sidecar that can signal the app and that Infisical can reach`, async () => {
    const [doc, ...more] = workloads(example);
    assert.ok(doc && more.length === 0 && doc.value['kind'] === 'Deployment', 'one Deployment');
    const pod = podOf(doc);
    const reloader = reloaderOf(pod);
    assert.ok(pod.init.includes(reloader), 'the reloader is an init container...');
    assert.equal(
      reloader['restartPolicy'],
      'Always',
      '...with restartPolicy Always (native sidecar)',
    );
    assert.equal(
      pod.spec['shareProcessNamespace'],
      true,
      'shareProcessNamespace: the app is visible',
    );
    const spec = await specFor(example, reloader);
    // The probes ask the admin listener; the webhook listener serves only the webhook path.
    const adminPort = spec.admin.listen.port;
    assert.notEqual(adminPort, spec.webhook.listen.port);
    assert.deepEqual(httpProbe(reloader, 'startupProbe'), { path: '/readyz', port: adminPort });
    assert.deepEqual(httpProbe(reloader, 'readinessProbe'), { path: '/readyz', port: adminPort });
    assert.deepEqual(httpProbe(reloader, 'livenessProbe'), { path: '/healthz', port: adminPort });

    requireWebhookSecret(spec); // the daemon would refuse an unsigned webhook
    assert.equal(spec.webhook.listen.port, 8080);
    assert.deepEqual(
      arr(reloader['ports']).map((p) => p['containerPort']),
      [8080, adminPort],
    );

    // One app container; every target reloads it by signal, by name, as the same uid.
    assert.equal(pod.main.length, 1, 'one app container');
    const app = pod.main[0]!;
    const reloaderUid = effective(pod, reloader, 'runAsUser');
    assert.equal(
      effective(pod, app, 'runAsUser'),
      reloaderUid,
      'kill(2) needs the same uid (no CAP_KILL)',
    );
    for (const t of spec.targets) {
      assert.equal(t.reload?.kind, 'signal', `${t.name}: reload by signal`);
      if (t.reload?.kind === 'signal') assert.ok(t.reload.processName, `${t.name}: by processName`);
      // The app reads each file at the same path, from the same volume, read-only.
      for (const f of t.files) {
        const rm = mountFor(reloader, dirname(f.destination))!;
        const am = mountFor(app, dirname(f.destination));
        assert.ok(am, `${t.name}: ${String(app['name'])} does not mount ${dirname(f.destination)}`);
        assert.equal(am['name'], rm['name'], `${f.destination}: same volume in both containers`);
        assert.equal(
          am['mountPath'],
          rm['mountPath'],
          `${f.destination}: same path in both containers`,
        );
        assert.equal(am['readOnly'], true, `${f.destination}: read-only in the app`);
      }
    }
    // The app must not listen on the reloader's port (one network namespace per pod).
    const appPorts = arr(app['ports']).map((p) => p['containerPort']);
    assert.ok(!appPorts.includes(8080), `app ports ${appPorts.join(',')} collide with the webhook`);

    // The webhook secret file comes from a Secret the README tells how to create.
    assert.ok(spec.webhook.secretFile, 'webhook.secretFile');
    const sm = mountFor(reloader, spec.webhook.secretFile);
    assert.ok(sm, `nothing mounted at ${spec.webhook.secretFile}`);
    const secret = obj(
      volumeOf(pod, String(sm['name']))['secret'],
      'the webhook secret volume is a Secret',
    );
    const item = arr(secret['items']).find(
      (i) => i['path'] === posix.relative(String(sm['mountPath']), spec.webhook.secretFile!),
    );
    assert.ok(item, 'the Secret item lands on webhook.secretFile');
    const readme = readFileSync(join(examplesDir, example, 'README.md'), 'utf8');
    assert.match(
      readme,
      new RegExp(
        `kubectl create secret generic ${String(secret['secretName'])}[^\\n]*--from-literal=${String(item['key'])}=`,
      ),
    );
    assert.match(readme, /\/\*\*/, 'the README says to register the webhook with the path /**');

    // A Service named <app>-reloader-webhook reaches the reloader on 8080, by number (named
    // ports of native sidecars resolve only from Kubernetes 1.32 on).
    const labels = obj(
      obj(obj(doc.value['spec'], 'spec')['template'], 'template')['metadata'],
      'metadata',
    )['labels'];
    const svc = byKind(example, 'Service').find(
      (s) => nameOf(s) === `${nameOf(doc)}-reloader-webhook`,
    );
    assert.ok(svc, `Service ${nameOf(doc)}-reloader-webhook`);
    const svcSpec = obj(svc.value['spec'], 'service spec');
    for (const [k, v] of Object.entries(obj(svcSpec['selector'], 'selector'))) {
      assert.equal(obj(labels, 'labels')[k], v, `selector ${k}=${String(v)} matches the pod`);
    }
    assert.deepEqual(
      arr(svcSpec['ports']).map((p) => [p['port'], p['targetPort']]),
      [[8080, 8080]],
    );
    assert.match(readme, new RegExp(`${String(nameOf(svc))}\\.[^\\s]*:8080/infisical/webhook`));
  });
}

for (const example of INIT) {
  test(`(3) ${example}: a plain init container that renders once before the app`, async () => {
    for (const doc of workloads(example)) {
      const pod = podOf(doc);
      const reloader = reloaderOf(pod);
      assert.ok(pod.init.includes(reloader), 'an init container');
      assert.equal(reloader['restartPolicy'], undefined, 'not a sidecar: it must exit');
      const args = (reloader['args'] as string[] | undefined) ?? [];
      assert.deepEqual(args.slice(0, 2), ['run', '--once']);
      const spec = await specFor(example, reloader);
      for (const app of pod.main) {
        // Files are 0600 and owned by the reloader's uid: the app needs the same uid.
        assert.equal(effective(pod, app, 'runAsUser'), effective(pod, reloader, 'runAsUser'));
        for (const t of spec.targets)
          for (const f of t.files) {
            const am = mountFor(app, dirname(f.destination));
            assert.ok(am, `${String(app['name'])} does not mount ${dirname(f.destination)}`);
            assert.equal(am['name'], mountFor(reloader, dirname(f.destination))!['name']);
          }
      }
    }
  });
}

test('(4) every example reloader.yaml passes `infisical-reloader validate`', async () => {
  const specs = readdirSync(examplesDir)
    .map((e) => join(examplesDir, e, 'reloader.yaml'))
    .filter((f) => existsSync(f));
  assert.ok(
    specs.some((f) => f.includes('quickstart')),
    'the quickstart is among them',
  );
  for (const file of specs) {
    const r = await runCli(['validate', '--config', file], {
      env: {
        RELOADER_TEMPLATES: join(repoRoot, 'templates'),
        INFISICAL_API_URL: 'http://infisical.test:8080/api',
        INFISICAL_IDENTITY_ID: '00000000-0000-4000-8000-000000000001',
        INFISICAL_PROJECT_ID: 'project-example',
        INFISICAL_ENVIRONMENT: 'prod',
      },
      timeoutMs: 20_000,
    });
    assert.equal(r.code, 0, `${relative(repoRoot, file)}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`${basename(file)}: valid \\(\\d+ targets?, \\d+ files?\\)`));
  }
});

for (const example of SIDECARS) {
  test(`(3) ${example}: three replicas that all take every change (peers, PDB, NetworkPolicy, scraping)`, async () => {
    const [doc] = workloads(example);
    assert.ok(doc);
    const deploymentSpec = obj(doc.value['spec'], 'spec');
    assert.equal(deploymentSpec['replicas'], 3, 'replicas: 3');
    const pod = podOf(doc);
    const reloader = reloaderOf(pod);
    const spec = await specFor(example, reloader);
    const template = obj(obj(deploymentSpec['template'], 'template')['metadata'], 'metadata');
    const labels = obj(template['labels'], 'labels');
    const selects = (selector: unknown) =>
      Object.entries(obj(selector, 'selector')).every(([k, v]) => labels[k] === v);

    // The relay finds the other replicas through a headless Service of this Deployment's pods.
    const dns = spec.webhook.peers?.dns;
    assert.ok(dns, 'webhook.peers.dns');
    const peers = byKind(example, 'Service').find((d) => nameOf(d) === dns);
    assert.ok(peers, `a Service named ${dns}`);
    const peersSpec = obj(peers.value['spec'], 'peers spec');
    assert.equal(peersSpec['clusterIP'], 'None', 'headless');
    assert.ok(selects(peersSpec['selector']), 'the peers Service selects these pods');
    assert.deepEqual(
      arr(peersSpec['ports']).map((p) => p['targetPort']),
      [spec.webhook.listen.port],
    );
    const podIp = arr(reloader['env']).find((e) => e['name'] === 'POD_IP');
    assert.deepEqual(
      obj(podIp?.['valueFrom'], 'POD_IP valueFrom')['fieldRef'],
      { fieldPath: 'status.podIP' },
      'POD_IP from the downward API (the relay skips its own pod)',
    );

    const [pdb, ...morePdbs] = byKind(example, 'PodDisruptionBudget');
    assert.ok(pdb && morePdbs.length === 0, 'one PodDisruptionBudget');
    const pdbSpec = obj(pdb.value['spec'], 'pdb spec');
    assert.ok(selects(obj(pdbSpec['selector'], 'pdb selector')['matchLabels']));
    assert.equal(pdbSpec['minAvailable'], 2);

    // Infisical and the peers reach the webhook port only, Prometheus the admin port only.
    const [np] = byKind(example, 'NetworkPolicy');
    assert.ok(np, 'a NetworkPolicy');
    const npSpec = obj(np.value['spec'], 'networkpolicy spec');
    assert.ok(selects(obj(npSpec['podSelector'], 'podSelector')['matchLabels']));
    const rules = arr(npSpec['ingress']);
    const ruleFor = (port: number) =>
      rules.filter((r) => arr(r['ports']).some((p) => p['port'] === port));
    const webhookRules = ruleFor(spec.webhook.listen.port);
    const adminRules = ruleFor(spec.admin.listen.port);
    assert.equal(webhookRules.length, 1, 'one rule admits the webhook port');
    assert.equal(adminRules.length, 1, 'one rule admits the admin port');
    assert.ok(webhookRules[0]!['from'] && adminRules[0]!['from'], 'both rules name their sources');
    const webhookFrom = JSON.stringify(webhookRules[0]!['from']);
    assert.match(webhookFrom, /infisical/, 'Infisical may reach the webhook port');
    assert.ok(
      arr(webhookRules[0]!['from']).some(
        (f) => isObj(f['podSelector']) && selects(obj(f['podSelector'], 'ps')['matchLabels']),
      ),
      'the peers may reach the webhook port',
    );
    assert.doesNotMatch(JSON.stringify(adminRules[0]!['from']), /infisical/);
    assert.ok(
      arr(adminRules[0]!['ports']).every((p) => p['port'] !== spec.webhook.listen.port),
      'the admin rule does not open the webhook port',
    );

    const annotations = obj(template['annotations'], 'pod annotations');
    assert.equal(annotations['prometheus.io/scrape'], 'true');
    assert.equal(annotations['prometheus.io/port'], String(spec.admin.listen.port));
    assert.equal(annotations['prometheus.io/path'], '/metrics');

    // Requests close to the measured use (≈ 70 MiB idle), the limit at least twice the heap cap.
    const res = obj(reloader['resources'], 'resources');
    assert.equal(obj(res['requests'], 'requests')['memory'], '80Mi');

    const readme = readFileSync(join(examplesDir, example, 'README.md'), 'utf8');
    assert.match(readme, /## Several replicas/);
    assert.match(readme, /Event Subscriptions/);
  });
}

for (const example of examples) {
  test(`(3) ${example}: cluster-scoped names are unique per namespace, and the image placeholder says how to build it`, () => {
    const k = kustomizationOf(example);
    for (const b of byKind(example, 'ClusterRoleBinding')) {
      assert.ok(
        nameOf(b).startsWith(`${String(k['namespace'])}-`),
        `${where(b)}: the ClusterRoleBinding's name starts with the namespace`,
      );
    }
    const replacement = arr(k['replacements'] as unknown[]).find((r) =>
      JSON.stringify(r).includes('ClusterRoleBinding'),
    );
    assert.ok(replacement, 'kustomize puts the namespace into the binding name');
    for (const doc of workloads(example)) {
      const text = readFileSync(doc.file, 'utf8');
      assert.match(
        text,
        /docker build -t [^\n]*infisical-reloader[^\n]* \./,
        `${where(doc)}: build line`,
      );
    }
  });
}
