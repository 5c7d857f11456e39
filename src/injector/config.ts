/**
 * The injector's own configuration (`infisical-reloader injector --config injector.yaml`): what
 * every injected reloader gets unless a pod says otherwise — image, Infisical's API URL, the
 * default webhook Secret, ports, user and resources. Every key is optional; the defaults are
 * the one literal below. Unknown keys are refused (a misspelt key would otherwise be ignored
 * in silence), then the result is frozen.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { SpecError } from '../errors.js';

/** Requests and limits of the injected container, as Kubernetes quantities. */
export interface Resources {
  requests: Record<string, string>;
  limits: Record<string, string>;
}

export interface InjectorConfig {
  /** Image of the injected reloader (its entrypoint runs `infisical-reloader`). */
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** `INFISICAL_API_URL` when neither an annotation nor the app's own variable names one. */
  apiUrl: string;
  /** Secret (key `webhook-secret`) mounted when a pod names none; mounted `optional`. */
  webhookSecretName: string;
  /**
   * Ports of the reloader's two listeners inside the pod (they share the pod's network); a
   * port a container of the pod declares moves to the next free one above.
   */
  webhookPort: number;
  adminPort: number;
  /** uid/gid of the reloader when the app's own uid is not known from the pod spec. */
  runAsUser: number;
  runAsGroup: number;
  resources: Resources;
  /** `NODE_OPTIONS` of the reloader: V8's heap kept well under the memory limit. */
  nodeOptions: string;
  /** The default config opens an Infisical Event Subscription (Enterprise) besides webhooks. */
  eventSubscription: boolean;
  /** Largest AdmissionReview body accepted, in bytes (413 above). */
  bodyLimit: number;
}

/** The defaults: every key documented in docs/injector.md with this value. */
export const DEFAULT_INJECTOR_CONFIG: Readonly<InjectorConfig> = Object.freeze({
  image: 'ghcr.io/example/infisical-reloader:0.1.0',
  imagePullPolicy: 'IfNotPresent',
  apiUrl: 'http://infisical.infisical.svc.cluster.local:8080/api',
  webhookSecretName: 'infisical-reloader-webhook',
  webhookPort: 8080,
  adminPort: 9090,
  runAsUser: 1000,
  runAsGroup: 1000,
  resources: {
    requests: { cpu: '10m', memory: '64Mi' },
    limits: { memory: '128Mi' },
  },
  nodeOptions: '--max-old-space-size=48',
  eventSubscription: false,
  // A Kubernetes object is at most about 1.5 MiB (etcd's request limit); a review carries the
  // object and, on updates, the old one.
  bodyLimit: 4 * 1024 * 1024,
});

const quantities = {
  type: 'object',
  additionalProperties: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?(m|k|Ki|Mi|Gi|M|G)?$' },
};
const port = { type: 'integer', minimum: 1, maximum: 65535 };
const uid = { type: 'integer', minimum: 1 };

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    image: { type: 'string', minLength: 1 },
    imagePullPolicy: { enum: ['Always', 'IfNotPresent', 'Never'] },
    apiUrl: { type: 'string', pattern: '^https?://' },
    webhookSecretName: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' },
    webhookPort: port,
    adminPort: port,
    runAsUser: uid,
    runAsGroup: uid,
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: { requests: quantities, limits: quantities },
    },
    nodeOptions: { type: 'string' },
    eventSubscription: { type: 'boolean' },
    bodyLimit: { type: 'integer', minimum: 65536 },
  },
};

const validate = new Ajv({ allErrors: true }).compile(SCHEMA);

/**
 * injector.yaml text → a frozen config over the defaults. `file` names the file in errors.
 * Throws SpecError (RLD_ERR_SPEC) naming the key and the problem.
 */
export function parseInjectorConfig(text: string, file: string): Readonly<InjectorConfig> {
  const at = (yamlPath: string): { file: string; yamlPath: string; line: number } => ({
    file,
    yamlPath,
    line: 0,
  });
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (err) {
    throw new SpecError(at(''), `not valid YAML (${(err as Error).message})`, { cause: err });
  }
  if (!validate(raw)) {
    const first = validate.errors?.[0];
    const path = (first?.instancePath ?? '').slice(1).replace(/\//g, '.');
    const extra = first?.params && 'additionalProperty' in first.params;
    const problem = extra
      ? `unknown key "${String(first.params['additionalProperty'])}"`
      : (first?.message ?? 'invalid');
    throw new SpecError(at(path), problem);
  }
  const given = raw as Partial<InjectorConfig>;
  if (given.webhookPort !== undefined && given.webhookPort === given.adminPort) {
    throw new SpecError(at('adminPort'), 'must differ from webhookPort');
  }
  const base = DEFAULT_INJECTOR_CONFIG;
  const config: InjectorConfig = {
    ...base,
    ...given,
    resources: {
      requests: given.resources?.requests ?? base.resources.requests,
      limits: given.resources?.limits ?? base.resources.limits,
    },
  };
  if (config.webhookPort === config.adminPort) {
    throw new SpecError(at('webhookPort'), 'must differ from adminPort');
  }
  return Object.freeze(config);
}

/** Reads and parses injector.yaml; an unreadable file is a SpecError naming it. */
export async function loadInjectorConfig(file: string): Promise<Readonly<InjectorConfig>> {
  const absolute = resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new SpecError({ file: absolute, yamlPath: '', line: 0 }, `cannot read (${code})`, {
      cause: err,
    });
  }
  return parseInjectorConfig(text, absolute);
}
