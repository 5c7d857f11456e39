/**
 * The mutation over generated objects: any kind the injector takes, annotations drawn from
 * the accepted values and split between the workload and its template, pod specs with or
 * without init containers, volumes, mounts, ports on the reloader's (8080, 9090) and workloads
 * with or without a selector. For each: the patch applies (fast-json-patch
 * validates every operation first), the result has exactly one reloader and every app
 * container mounts the output path read-only, no two containers declare one port, a workload
 * has a selector matching its template's labels, the result validates against its Kubernetes
 * schema, and mutating the result again gives an empty patch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEFAULT_INJECTOR_CONFIG } from '../../src/injector/config.js';
import { mutate } from '../../src/injector/mutate.js';
import { arr, type Obj } from '../examples/k8s.js';
import { applied, podSpecOf, validateModel } from './fixtures.js';

const choice = <T>(values: T[]): fc.Arbitrary<T | undefined> =>
  fc.option(fc.constantFrom(...values), { nil: undefined });

const annotationsArb = fc.record({
  'infisical.com/mode': choice(['sidecar', 'init']),
  'infisical.com/environment': choice(['dev', 'prod', 'staging-eu']),
  'infisical.com/secret-path': choice(['/', '/apps/api', '/a/b/']),
  'infisical.com/reloader-config': choice(['my-config']),
  'infisical.com/output-path': choice(['/infisical', '/run/app-secrets', '/srv/conf/']),
  'infisical.com/reload-process': choice(['nginx', 'pgbouncer']),
  'infisical.com/reload-signal': choice(['HUP', 'SIGUSR1']),
  'infisical.com/webhook-secret': choice(['w1']),
  'infisical.com/peers': choice(['peers', 'peers.other.svc.cluster.local']),
  'infisical.com/project-id': fc.constant('p1'),
  'infisical.com/identity-id': fc.constant('i1'),
});

const containerArb = (i: number): fc.Arbitrary<Obj> =>
  fc.record({
    name: fc.constant(`c${i}`),
    image: fc.constant('app:1'),
    volumeMounts: fc.option(fc.constant([{ name: 'data', mountPath: '/data' }]), {
      nil: undefined,
    }),
    securityContext: fc.option(fc.constant({ runAsUser: 101 }), { nil: undefined }),
    // Container i declares ports 10·i above the reloader's, so only c0 takes 8080 or 9090.
    ports: fc.option(
      fc
        .constantFrom([8080], [9090], [8080, 8081, 9090])
        .map((ports) => ports.map((p) => ({ containerPort: p + 10 * i }))),
      { nil: undefined },
    ),
  });

const objectArb = fc
  .record({
    kind: fc.constantFrom('Pod', 'Deployment', 'StatefulSet', 'DaemonSet'),
    annotations: annotationsArb,
    onTemplate: fc.array(fc.boolean(), { minLength: 11, maxLength: 11 }),
    containers: fc
      .integer({ min: 1, max: 3 })
      .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => containerArb(i)))),
    init: fc.boolean(),
    selector: fc.boolean(),
  })
  .map(({ kind, annotations, onTemplate, containers, init, selector }) => {
    if (annotations['infisical.com/reload-signal'] !== undefined)
      annotations['infisical.com/reload-process'] ??= 'app';
    const workload: Obj = { 'infisical.com/auth': 'kubernetes' };
    const template: Obj = {};
    Object.entries(annotations).forEach(([k, v], i) => {
      if (v === undefined) return;
      if (kind === 'Pod' || onTemplate[i]) template[k] = v;
      else workload[k] = v;
    });
    if (kind === 'Pod') Object.assign(template, workload);
    const podSpec: Obj = { containers: structuredClone(containers) };
    if (containers.some((c) => c['volumeMounts']))
      podSpec['volumes'] = [{ name: 'data', emptyDir: {} }];
    if (init) podSpec['initContainers'] = [{ name: 'setup', image: 'setup:1' }];
    if (kind === 'Pod') {
      return {
        apiVersion: 'v1',
        kind,
        metadata: { name: 'p', annotations: template },
        spec: podSpec,
      };
    }
    const labels = { app: 'x' };
    return {
      apiVersion: 'apps/v1',
      kind,
      metadata: { name: 'w', annotations: workload },
      spec: {
        ...(selector ? { selector: { matchLabels: labels } } : {}),
        ...(kind === 'StatefulSet' ? { serviceName: 'w' } : {}),
        template: {
          metadata: { ...(selector ? { labels } : {}), annotations: template },
          spec: podSpec,
        },
      },
    } as Obj;
  });

test('generated objects: the patch applies, the result is valid and wired once, and a second pass changes nothing', async () => {
  const samples = fc.sample(objectArb, { numRuns: 150, seed: 11 });
  for (const object of samples) {
    const what = JSON.stringify(object).slice(0, 300);
    const first = mutate({ object, namespace: 'ns', config: DEFAULT_INJECTOR_CONFIG });
    assert.ok(first.allowed, `${what}: ${'message' in first ? first.message : ''}`);
    const result = applied(object as Obj, first.patch);
    await validateModel(result, what);
    const spec = podSpecOf(result);
    const reloaders = [...arr(spec['initContainers']), ...arr(spec['containers'])].filter(
      (c) => c['name'] === 'infisical-reloader',
    );
    assert.equal(reloaders.length, 1, what);
    const ports = [...arr(spec['initContainers']), ...arr(spec['containers'])].flatMap((c) =>
      arr(c['ports']).map((p) => p['containerPort']),
    );
    assert.equal(new Set(ports).size, ports.length, `${what}: a port declared twice`);
    if (result['kind'] !== 'Pod') {
      const workloadSpec = result['spec'] as Obj;
      const matchLabels = (workloadSpec['selector'] as Obj)['matchLabels'] as Obj;
      const labels = ((workloadSpec['template'] as Obj)['metadata'] as Obj)['labels'] as Obj;
      for (const [k, v] of Object.entries(matchLabels)) assert.equal(labels[k], v, what);
    }
    for (const c of arr(spec['containers'])) {
      const files = arr(c['volumeMounts']).filter((m) => m['name'] === 'infisical-reloader-files');
      assert.equal(files.length, 1, what);
      assert.equal(files[0]!['readOnly'], true, what);
    }
    const second = mutate({ object: result, namespace: 'ns', config: DEFAULT_INJECTOR_CONFIG });
    assert.deepEqual(second, { allowed: true, patch: [], reason: 'already-injected' }, what);
  }
});
