/**
 * deploy/injector, checked without a cluster: `kubectl kustomize deploy/injector` builds; every
 * object validates against its schema (kubernetes-models; cert-manager's kinds against
 * @kubernetes-models/cert-manager) and the core ones against the models' types (no unknown
 * field); and the pieces fit together — the webhook reaches the Service, the Service the
 * pods, the Certificate's Secret is what the pods mount, the cainjector annotation names the
 * Certificate, the ConfigMap is a valid injector.yaml with the documented defaults, and the
 * container's arguments are a valid `injector` command line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseCli } from '../../src/cli.js';
import { DEFAULT_INJECTOR_CONFIG, parseInjectorConfig } from '../../src/injector/config.js';
import { repoRoot } from '../helpers/harness.js';
import { requireBinary, run } from '../e2e/process.js';
import { arr, modelPath, obj, typeCheck, type Doc, type Obj } from '../examples/k8s.js';
import { podSpecOf } from './fixtures.js';

const DIR = join(repoRoot, 'deploy', 'injector');

test('kubectl kustomize deploy/injector builds, every object validates, and the pieces fit', async (t) => {
  const kubectl = requireBinary(t, 'kubectl');
  if (kubectl === undefined) return;
  const built = await run(kubectl, ['kustomize', DIR]);
  assert.equal(built.code, 0, `kubectl kustomize failed: ${built.stderr}`);
  const docs: Doc[] = parseAllDocuments(built.stdout).map((d, index) => {
    assert.deepEqual(d.errors, [], `document ${index}`);
    return { file: join(DIR, 'kustomize-output.yaml'), index, value: obj(d.toJS(), `#${index}`) };
  });
  const byKind = (kind: string): Obj[] =>
    docs.filter((d) => d.value['kind'] === kind).map((d) => d.value);
  const one = (kind: string): Obj => {
    const found = byKind(kind);
    assert.equal(found.length, 1, `one ${kind}`);
    return found[0]!;
  };
  assert.deepEqual(docs.map((d) => String(d.value['kind'])).sort(), [
    'Certificate',
    'ConfigMap',
    'Deployment',
    'Issuer',
    'MutatingWebhookConfiguration',
    'Namespace',
    'PodDisruptionBudget',
    'Service',
    'ServiceAccount',
  ]);

  // Schemas.
  for (const doc of docs) {
    const apiVersion = String(doc.value['apiVersion']);
    const kind = String(doc.value['kind']);
    const module = apiVersion.startsWith('cert-manager.io/')
      ? `@kubernetes-models/cert-manager/${apiVersion}/${kind}`
      : modelPath(doc).module;
    const mod = (await import(module)) as Record<string, new (v: unknown) => { validate(): void }>;
    assert.ok(mod[kind], `${module} exports ${kind}`);
    try {
      new mod[kind]!(doc.value).validate();
    } catch (err) {
      assert.fail(`${kind}: ${(err as Error).message}`);
    }
  }
  const core = docs.filter((d) => !String(d.value['apiVersion']).startsWith('cert-manager.io/'));
  assert.deepEqual(typeCheck(core), []);

  // Everything lives in the injector's namespace, which is not itself injected.
  const ns = 'infisical-reloader';
  for (const d of docs) {
    const kind = String(d.value['kind']);
    if (['Namespace', 'MutatingWebhookConfiguration'].includes(kind)) continue;
    assert.equal(obj(d.value['metadata'], 'metadata')['namespace'], ns, kind);
  }
  const labels = obj(one('Namespace')['metadata'], 'metadata')['labels'] as Obj;
  assert.equal(labels['infisical.com/injection'], undefined, 'the injector never waits on itself');

  // Deployment: two replicas, hardened, the CLI's own command line.
  const deployment = one('Deployment');
  assert.equal(obj(deployment['spec'], 'spec')['replicas'], 2);
  const pod = podSpecOf(deployment);
  const container = arr(pod['containers'])[0]!;
  const args = parseCli(container['args'] as string[]);
  assert.equal(args.command, 'injector');
  const listenPort = Number(String(args.listen).split(':').at(-1));
  assert.equal(arr(container['ports'])[0]!['containerPort'], listenPort);
  const sc = obj(container['securityContext'], 'securityContext');
  assert.equal(sc['readOnlyRootFilesystem'], true);
  assert.equal(sc['allowPrivilegeEscalation'], false);
  assert.deepEqual(obj(sc['capabilities'], 'caps')['drop'], ['ALL']);
  assert.equal(obj(pod['securityContext'], 'psc')['runAsNonRoot'], true);
  const mountOf = (file: string): Obj => {
    const m = arr(container['volumeMounts']).find((v) =>
      file.startsWith(`${String(v['mountPath'])}/`),
    );
    assert.ok(m, `nothing mounted for ${file}`);
    return arr(pod['volumes']).find((v) => v['name'] === m['name'])!;
  };
  const tlsVolume = obj(mountOf(String(args.tlsCert))['secret'], 'tls secret volume');
  assert.equal(mountOf(String(args.tlsKey)), mountOf(String(args.tlsCert)));
  const configVolume = obj(mountOf(String(args.config))['configMap'], 'config volume');
  for (const probe of ['readinessProbe', 'livenessProbe']) {
    const get = obj(obj(container[probe], probe)['httpGet'], 'httpGet');
    assert.deepEqual([get['path'], get['port'], get['scheme']], ['/healthz', listenPort, 'HTTPS']);
  }

  // The ConfigMap is a valid injector.yaml holding the documented defaults.
  const configMap = one('ConfigMap');
  assert.equal(obj(configMap['metadata'], 'm')['name'], configVolume['name']);
  const text = String(obj(configMap['data'], 'data')['injector.yaml']);
  assert.deepEqual(parseInjectorConfig(text, 'configmap.yaml'), DEFAULT_INJECTOR_CONFIG);

  // Service → pods; PDB keeps one; webhook → Service.
  const podLabels = obj(obj(obj(deployment['spec'], 's')['template'], 't')['metadata'], 'm')[
    'labels'
  ] as Obj;
  const service = one('Service');
  const serviceSpec = obj(service['spec'], 'spec');
  for (const [k, v] of Object.entries(obj(serviceSpec['selector'], 'selector'))) {
    assert.equal(podLabels[k], v, `Service selector ${k}`);
  }
  const servicePort = arr(serviceSpec['ports'])[0]!;
  assert.equal(servicePort['targetPort'], listenPort);
  const pdb = obj(one('PodDisruptionBudget')['spec'], 'pdb');
  assert.equal(pdb['minAvailable'], 1);
  assert.deepEqual(obj(pdb['selector'], 'sel')['matchLabels'], serviceSpec['selector']);

  const mwc = one('MutatingWebhookConfiguration');
  assert.equal(obj(mwc['metadata'], 'm')['namespace'], undefined, 'cluster-scoped');
  const hooks = arr(mwc['webhooks']);
  assert.equal(hooks.length, 1);
  const hook = hooks[0]!;
  assert.equal(hook['sideEffects'], 'None');
  assert.ok(['Fail', 'Ignore'].includes(String(hook['failurePolicy'])), 'failurePolicy set');
  const timeout = Number(hook['timeoutSeconds']);
  assert.ok(timeout >= 1 && timeout <= 10, `timeoutSeconds ${timeout}`);
  assert.deepEqual(hook['admissionReviewVersions'], ['v1']);
  assert.deepEqual(obj(hook['namespaceSelector'], 'namespaceSelector')['matchLabels'], {
    'infisical.com/injection': 'enabled',
  });
  const target = obj(obj(hook['clientConfig'], 'clientConfig')['service'], 'service');
  assert.deepEqual(
    [target['name'], target['namespace'], target['path'], target['port']],
    [obj(service['metadata'], 'm')['name'], ns, '/mutate', servicePort['port']],
  );
  const resources = arr(hook['rules']).flatMap((r) => r['resources'] as string[]);
  assert.deepEqual(resources.sort(), ['daemonsets', 'deployments', 'pods', 'statefulsets']);
  const podRule = arr(hook['rules']).find((r) => (r['resources'] as string[]).includes('pods'))!;
  assert.deepEqual(podRule['operations'], ['CREATE'], 'a pod spec cannot gain containers later');

  // The certificate: cert-manager issues it into the Secret the pods mount, for the Service's
  // name, and cainjector is pointed at it.
  const certificate = one('Certificate');
  const certSpec = obj(certificate['spec'], 'spec');
  assert.equal(certSpec['secretName'], tlsVolume['secretName']);
  const svcName = String(obj(service['metadata'], 'm')['name']);
  assert.ok((certSpec['dnsNames'] as string[]).includes(`${svcName}.${ns}.svc`));
  const certName = String(obj(certificate['metadata'], 'm')['name']);
  assert.equal(
    obj(obj(mwc['metadata'], 'm')['annotations'], 'annotations')['cert-manager.io/inject-ca-from'],
    `${ns}/${certName}`,
  );
  const issuer = one('Issuer');
  assert.equal(
    obj(certSpec['issuerRef'], 'issuerRef')['name'],
    obj(issuer['metadata'], 'm')['name'],
  );
});
