/**
 * Shared pieces of the injector tests: the integration guide's Step 1 manifests (kept verbatim
 * in guide-deployment.yaml), AdmissionReviews around an
 * object, the patch applied with an RFC 6902 library (fast-json-patch, which also validates
 * every operation against the document), and schema validation with kubernetes-models.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fastJsonPatch from 'fast-json-patch';
import { DEFAULT_INJECTOR_CONFIG, type InjectorConfig } from '../../src/injector/config.js';
import { answerReview } from '../../src/injector/review.js';
import { repoRoot } from '../helpers/harness.js';
import { arr, modelPath, obj, readDocs, type Doc, type Obj } from '../examples/k8s.js';

export const GUIDE_FILE = join(repoRoot, 'test', 'injector', 'guide-deployment.yaml');

/** The guide's ServiceAccount, ClusterRoleBinding, Deployment and Service, freshly parsed. */
export function guideDocs(): Doc[] {
  return readDocs(GUIDE_FILE);
}

/** The guide's document of `kind`. */
export function guideDoc(
  kind: 'ServiceAccount' | 'ClusterRoleBinding' | 'Deployment' | 'Service',
): Obj {
  const d = guideDocs().find((doc) => doc.value['kind'] === kind);
  assert.ok(d, `the guide has a ${kind}`);
  return d.value;
}

export function guideDeployment(): Obj {
  return guideDoc('Deployment');
}

let uidCounter = 0;

function namespaceOf(object: unknown): string {
  const meta = (object as Obj | null)?.['metadata'];
  const ns = typeof meta === 'object' && meta !== null ? (meta as Obj)['namespace'] : undefined;
  return typeof ns === 'string' ? ns : 'default';
}

/** An AdmissionReview request for `object` (CREATE, in the object's namespace or `default`). */
export function reviewOf(object: unknown, operation = 'CREATE', namespace?: string): Obj {
  const kind = (object as Obj)['kind'];
  uidCounter += 1;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `705ab4f5-6393-11e8-b7cc-42010a8000${String(uidCounter).padStart(2, '0')}`,
      kind: { group: kind === 'Pod' ? '' : 'apps', version: 'v1', kind },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: namespace ?? namespaceOf(object),
      operation,
      object,
    },
  };
}

/** The JSON Patch carried by a review answer ([] when none). */
export function patchOf(answer: Obj): fastJsonPatch.Operation[] {
  const response = obj(answer['response'], 'response');
  if (response['patch'] === undefined) return [];
  assert.equal(response['patchType'], 'JSONPatch');
  return JSON.parse(Buffer.from(String(response['patch']), 'base64').toString('utf8'));
}

/** `object` with `patch` applied by fast-json-patch (validating each operation first). */
export function applied(object: Obj, patch: fastJsonPatch.Operation[]): Obj {
  const error = fastJsonPatch.validate(patch, object);
  assert.equal(error, undefined, `the patch does not apply: ${String(error?.message)}`);
  return fastJsonPatch.applyPatch(structuredClone(object), patch, true, false).newDocument as Obj;
}

/** Mutate `object` through the review function: the answer's response and the patched object. */
export function mutated(
  object: Obj,
  config: Readonly<InjectorConfig> = DEFAULT_INJECTOR_CONFIG,
): { response: Obj; patch: fastJsonPatch.Operation[]; result: Obj } {
  const answer = answerReview(JSON.stringify(reviewOf(object)), config);
  assert.equal(answer.status, 200);
  const response = obj(answer.body['response'], 'response');
  const patch = patchOf(answer.body);
  return { response, patch, result: applied(object, patch) };
}

/** Validate `value` against the kubernetes-models schema of its kind; fails with the problem. */
export async function validateModel(value: Obj, what: string): Promise<void> {
  const { module, kind } = modelPath({ file: what, index: 0, value });
  const mod = (await import(module)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = mod[kind];
  assert.ok(Model, `${module} exports no ${kind}`);
  try {
    new Model(value).validate();
  } catch (err) {
    assert.fail(`${what}: ${(err as Error).message}`);
  }
}

/** The pod spec of a Pod or of a workload's template. */
export function podSpecOf(value: Obj): Obj {
  const spec = obj(value['spec'], 'spec');
  return value['kind'] === 'Pod'
    ? spec
    : obj(obj(spec['template'], 'template')['spec'], 'pod spec');
}

/** The injected reloader container. */
export function reloaderOf(value: Obj): Obj {
  const c = arr(podSpecOf(value)['initContainers']).find((x) => x['name'] === 'infisical-reloader');
  assert.ok(c, 'no infisical-reloader init container');
  return c;
}

/** A container's env as name → the entry. */
export function envEntries(container: Obj): Record<string, Obj> {
  return Object.fromEntries(arr(container['env']).map((e) => [String(e['name']), e]));
}
