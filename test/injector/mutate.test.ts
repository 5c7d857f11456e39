/**
 * The mutation as a pure function, through the AdmissionReview answer: the guide's Step 1
 * verbatim (the patch applies with fast-json-patch; the result validates against the
 * Kubernetes schemas and the models' types; the guide's Service reaches the app), the selector
 * added to a workload without one, the reloader's ports moved off the app's, every annotation with its bad values, template
 * over workload precedence, annotations over the app's own variables, idempotence, a Pod, a
 * StatefulSet and a DaemonSet, init mode, the default config it generates (a valid
 * reloader.yaml), the ConfigMap and peers wiring, and malformed reviews.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { parseSpec } from '../../src/config/load.js';
import { DEFAULT_INJECTOR_CONFIG, parseInjectorConfig } from '../../src/injector/config.js';
import { answerReview } from '../../src/injector/review.js';
import { mutate } from '../../src/injector/mutate.js';
import { arr, obj, typeCheck, type Obj } from '../examples/k8s.js';
import {
  GUIDE_FILE,
  envEntries,
  guideDeployment,
  guideDoc,
  guideDocs,
  mutated,
  podSpecOf,
  reloaderOf,
  reviewOf,
  validateModel,
} from './fixtures.js';

const envValue = (c: Obj, name: string): unknown => envEntries(c)[name]?.['value'];

/** A workload of `kind` around the guide's pod template, annotations where asked. */
function workload(
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'Pod',
  annotations: { workload?: Obj; template?: Obj } = {},
): Obj {
  const guide = guideDeployment();
  const template = obj(obj(guide['spec'], 'spec')['template'], 'template');
  const podSpec = structuredClone(obj(template['spec'], 'pod spec'));
  const labels = { app: 'my-service' };
  if (kind === 'Pod') {
    return {
      apiVersion: 'v1',
      kind,
      metadata: { name: 'p', annotations: annotations.template ?? {} },
      spec: podSpec,
    };
  }
  const spec: Obj = {
    selector: { matchLabels: labels },
    template: {
      metadata: { labels, ...(annotations.template ? { annotations: annotations.template } : {}) },
      spec: podSpec,
    },
  };
  if (kind === 'StatefulSet') spec['serviceName'] = 'my-service';
  return {
    apiVersion: 'apps/v1',
    kind,
    metadata: { name: 'w', ...(annotations.workload ? { annotations: annotations.workload } : {}) },
    spec,
  };
}

const ASK = { 'infisical.com/auth': 'kubernetes' };
/** What the kubelet would resolve for the two variables a parsed default config needs. */
const GUIDE_ENV = { INFISICAL_IDENTITY_ID: 'i', INFISICAL_PROJECT_ID: 'p' };

test('the guide’s Step 1 verbatim: the patch applies and the result is a valid, wired Deployment its Service reaches', async () => {
  const deployment = guideDeployment();
  // What the guide writes, and what made it fail before: no selector, no template labels, and
  // the app on port 8080.
  assert.equal(obj(deployment['spec'], 'spec')['selector'], undefined);
  assert.equal(obj(obj(deployment['spec'], 'spec')['template'], 't')['metadata'], undefined);
  assert.deepEqual(arr(arr(podSpecOf(deployment)['containers'])[0]!['ports']), [
    { containerPort: 8080 },
  ]);
  const { response, patch, result } = mutated(deployment);
  assert.equal(response['allowed'], true, JSON.stringify(response['status']));
  assert.ok(patch.length > 0, 'a non-empty patch');
  assert.ok(
    patch.every((op) => op.op === 'add'),
    'the injector only adds',
  );
  await validateModel(result, 'the mutated Deployment');
  // The models' interfaces catch an unknown or misspelt field, which the schemas let through.
  const problems = typeCheck([{ file: GUIDE_FILE, index: 2, value: result }]);
  assert.deepEqual(problems, []);
  // The guide's other documents validate as they are; its Deployment as written does not.
  const docs = guideDocs();
  assert.deepEqual(
    docs.map((d) => d.value['kind']),
    ['ServiceAccount', 'ClusterRoleBinding', 'Deployment', 'Service'],
  );
  for (const doc of docs) {
    if (doc.value['kind'] !== 'Deployment') {
      await validateModel(doc.value, String(doc.value['kind']));
    }
  }
  await assert.rejects(
    validateModel(deployment, 'the guide’s Deployment as written'),
    /required property selector/,
  );

  // A selector the API server accepts, matching the template, and the guide's Service's.
  const spec = obj(result['spec'], 'spec');
  const template = obj(spec['template'], 'template');
  const labels = obj(obj(template['metadata'], 'metadata')['labels'], 'labels');
  const service = obj(guideDoc('Service')['spec'], 'service spec');
  for (const [k, v] of Object.entries(obj(service['selector'], 'selector'))) {
    assert.equal(labels[k], v, `the guide's Service selects the pods by ${k}`);
  }
  assert.deepEqual(spec['selector'], { matchLabels: { app: 'my-service' } });
  assert.deepEqual(labels, { app: 'my-service' });

  const pod = podSpecOf(result);
  const reloader = reloaderOf(result);
  const app = arr(pod['containers'])[0]!;
  assert.equal(arr(pod['initContainers'])[0], reloader, 'the reloader is the first init container');
  assert.equal(reloader['restartPolicy'], 'Always', 'a native sidecar');
  assert.deepEqual(reloader['args'], ['run']);
  // The app keeps 8080 (the Service's targetPort); the reloader's webhook takes the next one.
  assert.deepEqual(arr(service['ports']), [{ port: 8080, targetPort: 8080 }]);
  assert.deepEqual(app['ports'], [{ containerPort: 8080 }]);
  assert.deepEqual(reloader['ports'], [
    { name: 'rld-webhook', containerPort: 8081 },
    { name: 'rld-admin', containerPort: 9090 },
  ]);
  assert.deepEqual(obj(reloader['startupProbe'], 'startupProbe')['httpGet'], {
    path: '/readyz',
    port: 9090,
  });
  assert.deepEqual(obj(reloader['livenessProbe'], 'livenessProbe')['httpGet'], {
    path: '/healthz',
    port: 9090,
  });
  // The guide's variables: annotations first, then the app's own, a valueFrom as a valueFrom.
  const env = envEntries(reloader);
  assert.equal(
    env['INFISICAL_API_URL']?.['value'],
    'http://infisical.infisical.svc.cluster.local:8080/api',
  );
  assert.deepEqual(env['INFISICAL_IDENTITY_ID'], {
    name: 'INFISICAL_IDENTITY_ID',
    valueFrom: { configMapKeyRef: { name: 'my-service-infisical-config', key: 'identity-id' } },
  });
  assert.equal(env['INFISICAL_PROJECT_ID']?.['value'], 'my-project');
  assert.equal(env['INFISICAL_ENVIRONMENT']?.['value'], 'production');
  assert.equal(env['INFISICAL_SECRET_PATH']?.['value'], '/services/my-service');
  assert.equal(env['RELOADER_WEBHOOK_LISTEN']?.['value'], '0.0.0.0:8081');
  assert.equal(env['RELOADER_ADMIN_LISTEN']?.['value'], '0.0.0.0:9090');
  assert.deepEqual(env['POD_IP']?.['valueFrom'], { fieldRef: { fieldPath: 'status.podIP' } });
  const generated = parseSpec(String(env['RELOADER_CONFIG_YAML']?.['value']), '/x/y', GUIDE_ENV);
  assert.equal(generated.webhook.listen.port, 8081, 'the default config listens off the app');
  assert.equal(generated.admin.listen.port, 9090);
  // Hardened and bounded.
  assert.deepEqual(reloader['securityContext'], {
    runAsNonRoot: true,
    runAsUser: 1000,
    runAsGroup: 1000,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });
  assert.deepEqual(reloader['resources'], DEFAULT_INJECTOR_CONFIG.resources);
  // Volumes: the files in memory, the projected token, the optional webhook Secret.
  const volumes = Object.fromEntries(arr(pod['volumes']).map((v) => [String(v['name']), v]));
  assert.deepEqual(Object.keys(volumes), [
    'infisical-reloader-files',
    'infisical-reloader-token',
    'infisical-reloader-webhook',
  ]);
  assert.deepEqual(volumes['infisical-reloader-files']?.['emptyDir'], {
    medium: 'Memory',
    sizeLimit: '8Mi',
  });
  assert.deepEqual(volumes['infisical-reloader-token']?.['projected'], {
    sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3600 } }],
  });
  assert.deepEqual(volumes['infisical-reloader-webhook']?.['secret'], {
    secretName: 'infisical-reloader-webhook',
    optional: true,
    items: [{ key: 'webhook-secret', path: 'webhook-secret' }],
  });
  assert.deepEqual(reloader['volumeMounts'], [
    { name: 'infisical-reloader-files', mountPath: '/infisical' },
    {
      name: 'infisical-reloader-token',
      mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
      readOnly: true,
    },
    {
      name: 'infisical-reloader-webhook',
      mountPath: '/var/run/infisical-reloader/webhook',
      readOnly: true,
    },
  ]);
  // The app reads the files, read-only; its service account is kept.
  assert.deepEqual(app['volumeMounts'], [
    { name: 'infisical-reloader-files', mountPath: '/infisical', readOnly: true },
  ]);
  assert.equal(pod['serviceAccountName'], 'my-service-sa');
  assert.equal(pod['shareProcessNamespace'], undefined, 'no reload asked: no shared namespace');
  assert.deepEqual(obj(template['metadata'], 'metadata')['annotations'], {
    'infisical.com/injected': 'sidecar',
  });
  // Everything else is as the guide wrote it.
  assert.equal(spec['replicas'], 3);
  assert.deepEqual(result['metadata'], deployment['metadata']);
  assert.deepEqual(app['env'], arr(podSpecOf(deployment)['containers'])[0]!['env']);
  // Mutated again (the Deployment updated, or its Pods created): nothing more.
  const twice = mutated(result);
  assert.equal(twice.response['allowed'], true);
  assert.deepEqual(twice.patch, []);
});

test('the default config is a valid reloader.yaml: every secret in secrets.env and secrets.json', () => {
  const reloader = reloaderOf(mutated(guideDeployment()).result);
  const text = String(envValue(reloader, 'RELOADER_CONFIG_YAML'));
  const env = { INFISICAL_IDENTITY_ID: 'id-1', INFISICAL_PROJECT_ID: 'p1' };
  const spec = parseSpec(text, '/x/$RELOADER_CONFIG_YAML', env);
  assert.deepEqual(
    spec.targets[0]!.files.map((f) => [f.destination, f.mode]),
    [
      ['/infisical/secrets.env', 0o644],
      ['/infisical/secrets.json', 0o644],
    ],
  );
  assert.equal(spec.targets[0]!.reload, undefined);
  assert.equal(spec.webhook.secretFile, '/var/run/infisical-reloader/webhook/webhook-secret');
  assert.equal(spec.admin.listen.port, 9090);
  assert.equal(spec.webhook.listen.port, 8081, 'the guide’s app declares 8080');
  assert.equal(spec.webhook.peers, undefined);
  const auth = spec.infisical.auth as { kind: string; tokenPath?: string };
  assert.equal(auth.tokenPath, '/var/run/secrets/kubernetes.io/serviceaccount/token');
});

test('reload-process / reload-signal: the process is signalled, shareProcessNamespace is set, uid follows the app', () => {
  const w = workload('Deployment', {
    workload: {
      ...ASK,
      'infisical.com/reload-process': 'nginx',
      'infisical.com/reload-signal': 'SIGUSR1',
    },
  });
  obj(obj(w['spec'], 's')['template'], 't')['spec'] = {
    ...podSpecOf(w),
    securityContext: { runAsUser: 101, runAsGroup: 101 },
  };
  const { result } = mutated(w);
  assert.equal(podSpecOf(result)['shareProcessNamespace'], true);
  const reloader = reloaderOf(result);
  const sc = obj(reloader['securityContext'], 'sc');
  assert.equal(sc['runAsUser'], 101, 'same uid as the app, so kill(2) is allowed');
  assert.equal(sc['runAsGroup'], 101);
  const spec = parseSpec(String(envValue(reloader, 'RELOADER_CONFIG_YAML')), '/x/y', GUIDE_ENV);
  assert.equal(spec.targets[0]!.files[0]!.mode, 0o600, 'the app’s own uid: 0600');
  const reload = spec.targets[0]!.reload as unknown as Obj;
  assert.equal(reload['kind'] ?? 'signal', 'signal');
  assert.match(JSON.stringify(reload), /USR1/);
  assert.match(JSON.stringify(reload), /nginx/);
  // Only a process: HUP.
  const onlyProcess = mutated(
    workload('Deployment', { workload: { ...ASK, 'infisical.com/reload-process': 'pgbouncer' } }),
  );
  const text = String(envValue(reloaderOf(onlyProcess.result), 'RELOADER_CONFIG_YAML'));
  assert.match(text, /signal: HUP/);
});

test('the pod template’s annotations win over the workload’s; annotations win over the app’s variables', () => {
  const w = workload('Deployment', {
    workload: { ...ASK, 'infisical.com/environment': 'production', 'infisical.com/mode': 'init' },
    template: {
      'infisical.com/environment': 'staging',
      'infisical.com/secret-path': '/from-template',
    },
  });
  const reloader = reloaderOf(mutated(w).result);
  assert.equal(envValue(reloader, 'INFISICAL_ENVIRONMENT'), 'staging', 'template over workload');
  assert.equal(envValue(reloader, 'INFISICAL_SECRET_PATH'), '/from-template', 'over the app env');
  assert.deepEqual(reloader['args'], ['run', '--once'], 'the workload’s mode still applies');
  // Injection asked on the template alone works too.
  const t = workload('Deployment', { template: { ...ASK } });
  assert.equal(mutated(t).response['allowed'], true);
  reloaderOf(mutated(t).result);
});

test('the injector’s config fills what neither annotations nor the app say', () => {
  const w = workload('Deployment', {
    workload: { ...ASK, 'infisical.com/project-id': 'p9', 'infisical.com/identity-id': 'id9' },
  });
  const app = arr(podSpecOf(w)['containers'])[0]!;
  delete app['env'];
  const config = parseInjectorConfig(
    [
      'apiUrl: https://infisical.example.com/api',
      'image: registry.example/reloader:1',
      'webhookSecretName: shared-webhook',
      'resources: { requests: { cpu: 20m, memory: 96Mi }, limits: { memory: 192Mi } }',
    ].join('\n'),
    'injector.yaml',
  );
  const { result } = mutated(w, config);
  const reloader = reloaderOf(result);
  assert.equal(reloader['image'], 'registry.example/reloader:1');
  assert.equal(envValue(reloader, 'INFISICAL_API_URL'), 'https://infisical.example.com/api');
  assert.equal(envValue(reloader, 'INFISICAL_ENVIRONMENT'), 'dev');
  assert.equal(envValue(reloader, 'INFISICAL_SECRET_PATH'), '/');
  assert.equal(envValue(reloader, 'INFISICAL_PROJECT_ID'), 'p9');
  assert.deepEqual(reloader['resources'], {
    requests: { cpu: '20m', memory: '96Mi' },
    limits: { memory: '192Mi' },
  });
  const secret = arr(podSpecOf(result)['volumes']).find(
    (v) => v['name'] === 'infisical-reloader-webhook',
  );
  assert.equal(obj(secret?.['secret'], 'secret')['secretName'], 'shared-webhook');
  assert.equal(
    parseSpec(String(envValue(reloader, 'RELOADER_CONFIG_YAML')), '/x/y', GUIDE_ENV).infisical
      .eventSubscription.enabled,
    false,
  );
  const withStreams = parseInjectorConfig('eventSubscription: true', 'injector.yaml');
  const streamed = reloaderOf(mutated(w, withStreams).result);
  assert.equal(
    parseSpec(String(envValue(streamed, 'RELOADER_CONFIG_YAML')), '/x/y', GUIDE_ENV).infisical
      .eventSubscription.enabled,
    true,
  );
  assert.throws(() => parseInjectorConfig('imag: x', 'injector.yaml'), /unknown key "imag"/);
  assert.throws(() => parseInjectorConfig('adminPort: 8080', 'injector.yaml'), /differ/);
});

test('without a project or identity anywhere the object is refused, naming the annotation', () => {
  const w = workload('Deployment', { workload: { ...ASK } });
  delete arr(podSpecOf(w)['containers'])[0]!['env'];
  const r = mutate({ object: w, config: DEFAULT_INJECTOR_CONFIG });
  assert.equal(r.allowed, false);
  assert.match((r as { message: string }).message, /infisical\.com\/identity-id is required/);
});

const BAD: Array<[string, string[], RegExp]> = [
  ['auth', ['token', 'Kubernetes', ''], /accepted: kubernetes/],
  ['auto-renewal', ['false', 'yes', 'TRUE'], /accepted: "true"/],
  ['mode', ['daemon', 'Sidecar'], /accepted: sidecar, init/],
  ['environment', ['pro d', 'a/b', ''], /environment slug/],
  ['secret-path', ['relative', '/a/../b', '/a b'], /absolute secret path/],
  ['project-id', ['a b', ''], /project id/],
  ['identity-id', ['x y'], /identity id/],
  ['api-url', ['ftp://x/api', 'https://x', 'https://x/api/${EVIL}'], /URL ending in \/api/],
  ['reloader-config', ['Bad_Name', '-x'], /ConfigMap/],
  [
    'output-path',
    ['relative', '/', '/etc', '/a/../b', '/var/run/secrets/x', '/proc/1'],
    /absolute directory path/,
  ],
  ['reload-signal', ['KILL', 'SIGSTOP', '1'], /HUP, USR1, USR2/],
  ['reload-process', ['a-very-long-process-name', 'a b', '$(x)'], /proc\/<pid>\/comm/],
  ['webhook-secret', ['UPPER', 'a_b'], /Secret/],
  ['peers', ['Peers', 'a_b'], /headless Service/],
  ['webhook-port', ['0', '65536', '08080', '80a', '-1', ''], /port number, 1-65535/],
];

test('every annotation refuses its bad values, naming the annotation and what is accepted', () => {
  for (const [name, values, accepted] of BAD) {
    for (const value of values) {
      const ann: Obj = {
        ...ASK,
        'infisical.com/reload-process': 'app',
        [`infisical.com/${name}`]: value,
      };
      for (const where of ['workload', 'template'] as const) {
        const answer = answerReview(
          JSON.stringify(reviewOf(workload('Deployment', { [where]: ann }))),
          DEFAULT_INJECTOR_CONFIG,
        );
        assert.equal(answer.status, 200);
        const response = obj(answer.body['response'], 'response');
        const what = `${name}=${JSON.stringify(value)} on the ${where}`;
        assert.equal(response['allowed'], false, `${what}: refused`);
        assert.equal(response['patch'], undefined, `${what}: no patch`);
        const message = String(obj(response['status'], 'status')['message']);
        assert.ok(message.includes(`infisical.com/${name}`), `${what}: names it: ${message}`);
        assert.match(message, accepted, `${what}: says what is accepted: ${message}`);
      }
    }
  }
  // A good value of each is accepted (so the refusals above are about the values).
  const good = workload('Deployment', {
    workload: {
      ...ASK,
      'infisical.com/auto-renewal': 'true',
      'infisical.com/mode': 'sidecar',
      'infisical.com/environment': 'prod',
      'infisical.com/secret-path': '/apps/api',
      'infisical.com/project-id': 'p-1',
      'infisical.com/identity-id': 'i_1',
      'infisical.com/api-url': 'https://eu.infisical.com/api',
      'infisical.com/reloader-config': 'my-reloader',
      'infisical.com/output-path': '/run/secrets-files',
      'infisical.com/reload-signal': 'HUP',
      'infisical.com/reload-process': 'nginx',
      'infisical.com/webhook-secret': 'my-webhook',
      'infisical.com/peers': 'my-peers',
      'infisical.com/webhook-port': '7070',
    },
  });
  assert.equal(mutated(good).response['allowed'], true);
  // reload-signal alone names the annotation it needs.
  const r = mutate({
    object: workload('Deployment', { workload: { ...ASK, 'infisical.com/reload-signal': 'HUP' } }),
    config: DEFAULT_INJECTOR_CONFIG,
  });
  assert.match((r as { message: string }).message, /needs infisical\.com\/reload-process/);
});

test('idempotent: the mutated object mutated again gives an empty patch', () => {
  for (const kind of ['Deployment', 'Pod'] as const) {
    const once = mutated(workload(kind, { template: { ...ASK } })).result;
    const twice = mutated(once);
    assert.equal(twice.response['allowed'], true);
    assert.deepEqual(twice.patch, [], `${kind}: empty patch`);
    assert.equal(twice.response['patchType'], undefined);
  }
});

test('a Pod, a StatefulSet and a DaemonSet are mutated and validate', async () => {
  for (const kind of ['Pod', 'StatefulSet', 'DaemonSet'] as const) {
    const object = workload(
      kind,
      kind === 'Pod' ? { template: { ...ASK } } : { workload: { ...ASK } },
    );
    const { result, patch } = mutated(object);
    assert.ok(patch.length > 0, `${kind}: patched`);
    await validateModel(result, `the mutated ${kind}`);
    const reloader = reloaderOf(result);
    assert.equal(reloader['restartPolicy'], 'Always', kind);
    const app = arr(podSpecOf(result)['containers'])[0]!;
    assert.ok(
      arr(app['volumeMounts']).some((m) => m['mountPath'] === '/infisical' && m['readOnly']),
    );
  }
});

test('init mode: run --once, no probes, no webhook Secret; other init containers and volumes are kept', async () => {
  const w = workload('Deployment', { workload: { ...ASK, 'infisical.com/mode': 'init' } });
  const pod = podSpecOf(w);
  pod['initContainers'] = [{ name: 'migrate', image: 'm:1' }];
  pod['volumes'] = [{ name: 'data', emptyDir: {} }];
  arr(pod['containers'])[0]!['volumeMounts'] = [{ name: 'data', mountPath: '/data' }];
  const { result } = mutated(w);
  await validateModel(result, 'init mode');
  const out = podSpecOf(result);
  assert.deepEqual(
    arr(out['initContainers']).map((c) => c['name']),
    ['infisical-reloader', 'migrate'],
  );
  const reloader = reloaderOf(result);
  assert.deepEqual(reloader['args'], ['run', '--once']);
  for (const k of ['restartPolicy', 'startupProbe', 'livenessProbe', 'ports']) {
    assert.equal(reloader[k], undefined, k);
  }
  assert.deepEqual(
    arr(out['volumes']).map((v) => v['name']),
    ['data', 'infisical-reloader-files', 'infisical-reloader-token'],
  );
  assert.deepEqual(
    arr(arr(out['containers'])[0]!['volumeMounts']).map((m) => m['mountPath']),
    ['/data', '/infisical'],
  );
  const spec = parseSpec(String(envValue(reloader, 'RELOADER_CONFIG_YAML')), '/x/y', GUIDE_ENV);
  assert.equal(spec.webhook.secretFile, undefined, 'no webhook in init mode');
});

test('reloader-config mounts the ConfigMap and points RELOADER_CONFIG at its reloader.yaml', () => {
  const w = workload('Deployment', {
    workload: {
      ...ASK,
      'infisical.com/reloader-config': 'my-reloader',
      'infisical.com/output-path': '/etc/app/secrets',
      'infisical.com/reload-process': 'nginx',
    },
  });
  delete arr(podSpecOf(w)['containers'])[0]!['env'];
  const { result } = mutated(w);
  const reloader = reloaderOf(result);
  assert.equal(envValue(reloader, 'RELOADER_CONFIG'), '/etc/infisical-reloader/reloader.yaml');
  assert.equal(envValue(reloader, 'RELOADER_CONFIG_YAML'), undefined);
  assert.equal(envValue(reloader, 'RELOADER_OUTPUT_PATH'), '/etc/app/secrets');
  const cm = arr(podSpecOf(result)['volumes']).find(
    (v) => v['name'] === 'infisical-reloader-config',
  );
  assert.deepEqual(cm?.['configMap'], { name: 'my-reloader' });
  assert.equal(
    podSpecOf(result)['shareProcessNamespace'],
    undefined,
    'the ConfigMap says how to reload',
  );
  const app = arr(podSpecOf(result)['containers'])[0]!;
  assert.deepEqual(arr(app['volumeMounts'])[0], {
    name: 'infisical-reloader-files',
    mountPath: '/etc/app/secrets',
    readOnly: true,
  });
});

test('peers: a bare Service name becomes its cluster DNS name, wired to the relay', () => {
  const w = workload('Deployment', {
    workload: { ...ASK, 'infisical.com/peers': 'my-service-peers' },
  });
  const reloader = reloaderOf(mutated(w).result);
  const dns = 'my-service-peers.default.svc.cluster.local';
  assert.equal(envValue(reloader, 'RELOADER_PEERS_DNS'), dns);
  const text = String(envValue(reloader, 'RELOADER_CONFIG_YAML'));
  assert.equal(
    obj(obj(parse(text), 'spec')['webhook'], 'webhook')['peers'] &&
      (parse(text).webhook.peers.dns as string),
    dns,
  );
  const spec = parseSpec(text, '/x/y', GUIDE_ENV);
  assert.equal(spec.webhook.peers?.dns, dns);
  const full = workload('Deployment', {
    workload: { ...ASK, 'infisical.com/peers': 'p.other.svc.cluster.local' },
  });
  assert.equal(
    envValue(reloaderOf(mutated(full).result), 'RELOADER_PEERS_DNS'),
    'p.other.svc.cluster.local',
  );
});

test('conflicts are refused by name: the output path mounted already', () => {
  const busy = workload('Deployment', { workload: { ...ASK } });
  arr(podSpecOf(busy)['containers'])[0]!['volumeMounts'] = [{ name: 'x', mountPath: '/infisical' }];
  const r1 = mutate({ object: busy, config: DEFAULT_INJECTOR_CONFIG });
  assert.match(
    (r1 as { message: string }).message,
    /infisical\.com\/output-path: container app already mounts \/infisical/,
  );
});

/** The reloader's webhook and admin ports, and where else they appear, after mutating `w`. */
function portsOf(w: Obj): { webhook: unknown; admin: unknown } {
  const reloader = reloaderOf(mutated(w).result);
  const byName = Object.fromEntries(
    arr(reloader['ports']).map((p) => [String(p['name']), p['containerPort']]),
  );
  const env = envEntries(reloader);
  const spec = parseSpec(String(env['RELOADER_CONFIG_YAML']?.['value']), '/x/y', GUIDE_ENV);
  // The listen settings, the variables and both probes agree with the declared ports.
  assert.equal(spec.webhook.listen.port, byName['rld-webhook']);
  assert.equal(spec.admin.listen.port, byName['rld-admin']);
  assert.equal(env['RELOADER_WEBHOOK_LISTEN']?.['value'], `0.0.0.0:${byName['rld-webhook']}`);
  assert.equal(env['RELOADER_ADMIN_LISTEN']?.['value'], `0.0.0.0:${byName['rld-admin']}`);
  for (const probe of ['startupProbe', 'livenessProbe']) {
    assert.equal(
      obj(obj(reloader[probe], probe)['httpGet'], 'httpGet')['port'],
      byName['rld-admin'],
    );
  }
  return { webhook: byName['rld-webhook'], admin: byName['rld-admin'] };
}

test('the reloader’s ports: the config’s unless a container declares them, else the next free ones; webhook-port overrides', async () => {
  const withPorts = (ports: number[][], annotations: Obj = {}): Obj => {
    const w = workload('Deployment', { workload: { ...ASK, ...annotations } });
    const pod = podSpecOf(w);
    const [app = [], ...others] = ports;
    arr(pod['containers'])[0]!['ports'] = app.map((containerPort) => ({ containerPort }));
    pod['initContainers'] = others.map((list, i) => ({
      name: `side${i}`,
      image: 'side:1',
      restartPolicy: 'Always',
      ports: list.map((containerPort) => ({ containerPort })),
    }));
    return w;
  };
  assert.deepEqual(portsOf(withPorts([[3000]])), { webhook: 8080, admin: 9090 });
  assert.deepEqual(portsOf(withPorts([[8080]])), { webhook: 8081, admin: 9090 });
  assert.deepEqual(portsOf(withPorts([[8080, 9090]])), { webhook: 8081, admin: 9091 });
  // Another sidecar of the pod counts too; the admin port never takes the webhook's.
  assert.deepEqual(
    portsOf(
      withPorts([
        [8080, 8081],
        [8082, 9090, 9091],
      ]),
    ),
    {
      webhook: 8083,
      admin: 9092,
    },
  );
  const adminNext = parseInjectorConfig('webhookPort: 8080\nadminPort: 8081', 'injector.yaml');
  const r = reloaderOf(mutated(withPorts([[8080]]), adminNext).result);
  assert.deepEqual(
    arr(r['ports']).map((p) => p['containerPort']),
    [8081, 8082],
    'the webhook moved onto the config’s admin port; the admin port moves on',
  );
  // The annotation fixes the webhook's port.
  assert.deepEqual(portsOf(withPorts([[8080]], { 'infisical.com/webhook-port': '7000' })), {
    webhook: 7000,
    admin: 9090,
  });
  assert.deepEqual(portsOf(withPorts([[8080]], { 'infisical.com/webhook-port': '9090' })), {
    webhook: 9090,
    admin: 9091,
  });
  // ... but never onto a port a container declares.
  for (const [ports, owner] of [
    [[[8080]], 'app'],
    [[[3000], [8080]], 'side0'],
  ] as const) {
    const refused = mutate({
      object: withPorts(
        ports.map((l) => [...l]),
        { 'infisical.com/webhook-port': '8080' },
      ),
      config: DEFAULT_INJECTOR_CONFIG,
    });
    assert.equal(refused.allowed, false);
    assert.match(
      (refused as { message: string }).message,
      new RegExp(`^annotation infisical\\.com/webhook-port: container ${owner} declares port 8080`),
    );
  }
  // The results are valid pods (no two containers of the pod on one port).
  await validateModel(mutated(withPorts([[8080, 9090]])).result, 'ports moved');
  // Init mode has no listener: an app on 8080 is left alone, no ports are added.
  const init = reloaderOf(mutated(withPorts([[8080]], { 'infisical.com/mode': 'init' })).result);
  assert.equal(init['ports'], undefined);
  assert.equal(envEntries(init)['RELOADER_WEBHOOK_LISTEN'], undefined);
});

test('a workload without spec.selector gets app: <name> on its template and as its selector; one with a selector is left as it is', async () => {
  const bare = (kind: 'Deployment' | 'StatefulSet' | 'DaemonSet', templateMeta?: Obj): Obj => {
    const w = workload(kind, { workload: { ...ASK } });
    const spec = obj(w['spec'], 'spec');
    delete spec['selector'];
    const template = obj(spec['template'], 'template');
    if (templateMeta === undefined) delete template['metadata'];
    else template['metadata'] = templateMeta;
    return w;
  };
  for (const kind of ['Deployment', 'StatefulSet', 'DaemonSet'] as const) {
    // No template metadata at all (the guide's case).
    const { result, patch } = mutated(bare(kind));
    await validateModel(result, `${kind} without a selector`);
    const spec = obj(result['spec'], 'spec');
    assert.deepEqual(spec['selector'], { matchLabels: { app: 'w' } }, kind);
    assert.deepEqual(obj(obj(spec['template'], 't')['metadata'], 'm')['labels'], { app: 'w' });
    assert.deepEqual(mutated(result).patch, [], `${kind}: idempotent`);
    assert.ok(patch.some((op) => op.path === '/spec/selector'));
  }
  // Template labels without app: app is added beside them; annotations are kept.
  const other = mutated(bare('Deployment', { labels: { tier: 'web' }, annotations: { a: 'b' } }));
  await validateModel(other.result, 'labels without app');
  const otherMeta = obj(obj(obj(other.result['spec'], 's')['template'], 't')['metadata'], 'm');
  assert.deepEqual(otherMeta['labels'], { tier: 'web', app: 'w' });
  assert.deepEqual(otherMeta['annotations'], { a: 'b', 'infisical.com/injected': 'sidecar' });
  // The template's own app label is never changed: the selector takes its value.
  const own = mutated(bare('Deployment', { labels: { app: 'shop' } }));
  await validateModel(own.result, 'its own app label');
  assert.deepEqual(obj(own.result['spec'], 's')['selector'], { matchLabels: { app: 'shop' } });
  assert.ok(!own.patch.some((op) => op.path.includes('/labels')), 'labels untouched');
  // A selector (the test workloads have one) is never touched, nor the template's labels.
  const selected = workload('Deployment', { workload: { ...ASK } });
  const kept = mutated(selected);
  assert.ok(
    kept.patch.every((op) => !op.path.startsWith('/spec/selector') && !op.path.includes('/labels')),
  );
  assert.deepEqual(
    obj(kept.result['spec'], 's')['selector'],
    obj(selected['spec'], 's')['selector'],
  );
  // A Pod has no selector to add.
  const pod = mutated(workload('Pod', { template: { ...ASK } }));
  assert.ok(pod.patch.every((op) => !op.path.includes('selector') && !op.path.includes('labels')));
  // No selector and no name to derive one from: refused, saying what to write.
  const nameless = bare('Deployment');
  delete obj(nameless['metadata'], 'metadata')['name'];
  const refused = mutate({ object: nameless, config: DEFAULT_INJECTOR_CONFIG });
  assert.equal(refused.allowed, false);
  assert.match((refused as { message: string }).message, /no spec\.selector/);
});

test('objects that do not ask, other kinds and other operations are allowed unchanged', () => {
  const plain = workload('Deployment');
  assert.deepEqual(mutate({ object: plain, config: DEFAULT_INJECTOR_CONFIG }), {
    allowed: true,
    patch: [],
    reason: 'not-asked',
  });
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { annotations: ASK } };
  assert.equal(mutated(cm).patch.length, 0);
  const del = answerReview(
    JSON.stringify({
      ...reviewOf(guideDeployment(), 'DELETE'),
      request: { ...(reviewOf(guideDeployment(), 'DELETE')['request'] as Obj), object: null },
    }),
    DEFAULT_INJECTOR_CONFIG,
  );
  assert.equal(del.status, 200);
  assert.equal(obj(del.body['response'], 'r')['allowed'], true);
  assert.equal(obj(del.body['response'], 'r')['patch'], undefined);
});

test('the answer echoes the uid; a malformed review is a 400 with the reason', () => {
  const review = reviewOf(guideDeployment());
  const answer = answerReview(JSON.stringify(review), DEFAULT_INJECTOR_CONFIG);
  assert.equal(answer.status, 200);
  assert.equal(answer.body['apiVersion'], 'admission.k8s.io/v1');
  assert.equal(answer.body['kind'], 'AdmissionReview');
  assert.equal(obj(answer.body['response'], 'r')['uid'], obj(review['request'], 'req')['uid']);
  const cases: Array<[string, RegExp]> = [
    ['{', /not JSON/],
    ['[]', /not a JSON object/],
    [JSON.stringify({ ...review, apiVersion: 'admission.k8s.io/v1beta1' }), /apiVersion/],
    [
      JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }),
      /request is missing/,
    ],
    [
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { object: {} },
      }),
      /uid/,
    ],
  ];
  for (const [body, reason] of cases) {
    const bad = answerReview(body, DEFAULT_INJECTOR_CONFIG);
    assert.equal(bad.status, 400, body.slice(0, 40));
    assert.match(String((bad.body as Obj)['reason']), reason);
  }
});

test('null lists in the pod spec are replaced, not appended to (the patch still applies)', async () => {
  const pod = workload('Pod', { template: { ...ASK } });
  const spec = podSpecOf(pod);
  spec['initContainers'] = null;
  spec['volumes'] = null;
  arr(spec['containers'])[0]!['volumeMounts'] = null;
  const { result } = mutated(pod);
  await validateModel(result, 'a Pod with null lists');
  assert.equal(arr(podSpecOf(result)['volumes']).length, 3);
  assert.equal(arr(arr(podSpecOf(result)['containers'])[0]!['volumeMounts']).length, 1);
});
