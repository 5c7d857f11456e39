/**
 * The mutation: a Pod, Deployment, StatefulSet or DaemonSet and its `infisical.com/*`
 * annotations → the RFC 6902 JSON Patch that wires the reloader into its pod spec. Pure (no
 * I/O, no clock): the same object and config always give the same patch.
 *
 * What the patch adds, in order:
 *
 *  (1) the reloader as the first init container: in `sidecar` mode a native sidecar
 *      (`restartPolicy: Always`) whose startupProbe waits for the admin listener's `/readyz`
 *      (200 once every target has rendered), so the app starts on rendered files; in `init`
 *      mode `run --once`;
 *  (2) volumes: the files (an in-memory `emptyDir`), the pod's service-account token
 *      (projected, for Kubernetes auth), the webhook Secret (mounted `optional`), the
 *      ConfigMap holding reloader.yaml when one is named;
 *  (3) the files mounted read-only at the output path in every app container;
 *  (4) `shareProcessNamespace: true` when the default config signals the app's process;
 *  (5) the annotation `infisical.com/injected` on the pod template;
 *  (6) for a Deployment, StatefulSet or DaemonSet written without `spec.selector` (as the
 *      integration guide's is), the selector `app: <metadata.name>` and that label on the pod
 *      template when it has none, so the API server accepts the workload and a Service
 *      selecting `app: <name>` reaches its pods. An existing selector is never touched.
 *
 * The reloader's two listeners share the pod's network with the app: each takes its port from
 * the injector's config unless a container of the pod declares it, else the first port above
 * it that none declares (`infisical.com/webhook-port` fixes the webhook's).
 *
 * Each setting is taken, first found: the pod template's annotations, the workload's, the app
 * containers' own `INFISICAL_*` variables (copied as written, a `valueFrom` as a `valueFrom`),
 * the injector's config. An object that already has the reloader container gets an empty
 * patch, so mutating a mutated object changes nothing.
 */
import { stringify } from 'yaml';
import { PREFIX, readAnnotations, type Annotations } from './annotations.js';
import type { InjectorConfig } from './config.js';

/** One RFC 6902 operation; the injector only ever adds. */
export interface PatchOperation {
  op: 'add';
  path: string;
  value: unknown;
}

export type MutationResult =
  | {
      allowed: true;
      patch: PatchOperation[];
      reason: 'injected' | 'not-asked' | 'already-injected';
    }
  | { allowed: false; message: string };

/** Names the injector gives what it adds. */
export const NAMES = Object.freeze({
  container: 'infisical-reloader',
  files: 'infisical-reloader-files',
  token: 'infisical-reloader-token',
  webhookSecret: 'infisical-reloader-webhook',
  config: 'infisical-reloader-config',
});

/** Paths inside the reloader container. */
export const PATHS = Object.freeze({
  tokenDir: '/var/run/secrets/kubernetes.io/serviceaccount',
  webhookSecretDir: '/var/run/infisical-reloader/webhook',
  configDir: '/etc/infisical-reloader',
});

export const DEFAULT_OUTPUT_PATH = '/infisical';

/** The variables of the integration guide the reloader reads, and their annotations. */
const GUIDE_ENV = [
  ['INFISICAL_API_URL', 'api-url'],
  ['INFISICAL_IDENTITY_ID', 'identity-id'],
  ['INFISICAL_PROJECT_ID', 'project-id'],
  ['INFISICAL_ENVIRONMENT', 'environment'],
  ['INFISICAL_SECRET_PATH', 'secret-path'],
] as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);
/** RFC 6901 escaping of one path segment. */
const seg = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** The kinds the injector mutates, and where their pod spec is. */
const WORKLOADS: Record<string, 'pod' | 'template'> = {
  Pod: 'pod',
  Deployment: 'template',
  StatefulSet: 'template',
  DaemonSet: 'template',
};

export interface MutationInput {
  /** The object as the API server sent it (`request.object`). */
  object: unknown;
  /** Its namespace (`request.namespace`); used to complete a bare peers Service name. */
  namespace?: string;
  config: Readonly<InjectorConfig>;
}

/**
 * The patch for `input.object`, or a refusal naming the annotation (or the conflicting field)
 * and what is accepted. Objects of other kinds, and objects without `infisical.com/auth`, are
 * allowed with an empty patch.
 */
export function mutate(input: MutationInput): MutationResult {
  const object = input.object;
  if (!isObj(object)) return { allowed: false, message: 'the object is not a JSON object' };
  const where = WORKLOADS[String(object['kind'])];
  if (where === undefined) return { allowed: true, patch: [], reason: 'not-asked' };
  const meta = isObj(object['metadata']) ? object['metadata'] : {};
  const spec = isObj(object['spec']) ? object['spec'] : {};
  let podSpec: Obj;
  let podMeta: Obj | undefined;
  let base: string;
  let metaPath: string;
  let workloadAnnotations: Obj | undefined;
  if (where === 'pod') {
    podSpec = spec;
    podMeta = meta;
    base = '/spec';
    metaPath = '/metadata';
  } else {
    const template = isObj(spec['template']) ? spec['template'] : {};
    podSpec = isObj(template['spec']) ? template['spec'] : {};
    podMeta = isObj(template['metadata']) ? template['metadata'] : undefined;
    base = '/spec/template/spec';
    metaPath = '/spec/template/metadata';
    workloadAnnotations = isObj(meta['annotations']) ? meta['annotations'] : undefined;
  }
  const templateAnnotations = isObj(podMeta?.['annotations'])
    ? (podMeta['annotations'] as Obj)
    : undefined;
  const read = readAnnotations(workloadAnnotations, templateAnnotations);
  if ('refused' in read) return { allowed: false, message: read.refused };
  if (!read.inject) return { allowed: true, patch: [], reason: 'not-asked' };

  const containers = list(podSpec['containers']);
  const initContainers = list(podSpec['initContainers']);
  if ([...containers, ...initContainers].some((c) => c['name'] === NAMES.container)) {
    return { allowed: true, patch: [], reason: 'already-injected' };
  }
  if (containers.length === 0) {
    return { allowed: false, message: 'the pod spec has no containers to give the files to' };
  }
  const selector = where === 'template' ? selectorToAdd(meta, spec, podMeta) : undefined;
  if (selector !== undefined && 'message' in selector) {
    return { allowed: false, message: selector.message };
  }
  const plan = planInjection(read.values, podSpec, containers, input);
  if ('message' in plan) return { allowed: false, message: plan.message };

  const patch: PatchOperation[] = [];
  // (1)
  if (!Array.isArray(podSpec['initContainers'])) {
    patch.push({ op: 'add', path: `${base}/initContainers`, value: [plan.container] });
  } else {
    patch.push({ op: 'add', path: `${base}/initContainers/0`, value: plan.container });
  }
  // (2)
  if (!Array.isArray(podSpec['volumes'])) {
    patch.push({ op: 'add', path: `${base}/volumes`, value: plan.volumes });
  } else {
    for (const v of plan.volumes) patch.push({ op: 'add', path: `${base}/volumes/-`, value: v });
  }
  // (3)
  const appMount = { name: NAMES.files, mountPath: plan.outputPath, readOnly: true };
  containers.forEach((c, i) => {
    const at = `${base}/containers/${i}/volumeMounts`;
    if (!Array.isArray(c['volumeMounts'])) patch.push({ op: 'add', path: at, value: [appMount] });
    else patch.push({ op: 'add', path: `${at}/-`, value: appMount });
  });
  // (4)
  if (plan.shareProcessNamespace && podSpec['shareProcessNamespace'] !== true) {
    patch.push({ op: 'add', path: `${base}/shareProcessNamespace`, value: true });
  }
  // (5) and the label of (6)
  const injected = plan.mode;
  const label = selector?.addLabel === true ? { app: selector.app } : undefined;
  if (podMeta === undefined) {
    patch.push({
      op: 'add',
      path: metaPath,
      value: {
        ...(label ? { labels: label } : {}),
        annotations: { [`${PREFIX}injected`]: injected },
      },
    });
  } else {
    if (label !== undefined && !isObj(podMeta['labels'])) {
      patch.push({ op: 'add', path: `${metaPath}/labels`, value: label });
    } else if (label !== undefined) {
      patch.push({ op: 'add', path: `${metaPath}/labels/app`, value: label.app });
    }
    addInjectedAnnotation(patch, metaPath, templateAnnotations, injected);
  }
  // (6)
  if (selector !== undefined) {
    patch.push({
      op: 'add',
      path: '/spec/selector',
      value: { matchLabels: { app: selector.app } },
    });
  }
  return { allowed: true, patch, reason: 'injected' };
}

/** The `infisical.com/injected` annotation on pod template metadata that exists. */
function addInjectedAnnotation(
  patch: PatchOperation[],
  metaPath: string,
  templateAnnotations: Obj | undefined,
  injected: string,
): void {
  if (templateAnnotations === undefined) {
    patch.push({
      op: 'add',
      path: `${metaPath}/annotations`,
      value: { [`${PREFIX}injected`]: injected },
    });
  } else {
    patch.push({
      op: 'add',
      path: `${metaPath}/annotations/${seg(`${PREFIX}injected`)}`,
      value: injected,
    });
  }
}

/**
 * A workload without `spec.selector`: the selector to add, `app: <label>`, where the label is
 * the pod template's own `app` label when it has one (a selector must match the template's
 * labels), else `metadata.name`, added to the template. Undefined when a selector exists.
 */
function selectorToAdd(
  meta: Obj,
  spec: Obj,
  podMeta: Obj | undefined,
): { app: string; addLabel: boolean } | { message: string } | undefined {
  if (spec['selector'] !== undefined && spec['selector'] !== null) return undefined;
  const own = isObj(podMeta?.['labels']) ? (podMeta['labels'] as Obj)['app'] : undefined;
  if (typeof own === 'string' && own !== '') return { app: own, addLabel: false };
  const name = meta['name'];
  if (typeof name !== 'string' || name === '') {
    return {
      message:
        'the workload has no spec.selector and no metadata.name to select its pods by (app: <name>); write a spec.selector',
    };
  }
  return { app: name, addLabel: true };
}

interface Plan {
  mode: 'sidecar' | 'init';
  /** The reloader's listener ports (sidecar mode). */
  ports?: { webhook: number; admin: number };
  outputPath: string;
  container: Obj;
  volumes: Obj[];
  shareProcessNamespace: boolean;
}

/** One environment variable as Kubernetes writes it. */
type EnvVar = { name: string; value?: string; valueFrom?: unknown };

/** The first app container variable named `name`, copied as written. */
function appEnv(containers: Obj[], name: string): EnvVar | undefined {
  for (const c of containers) {
    const found = list(c['env']).find((e) => e['name'] === name);
    if (found === undefined) continue;
    if (found['valueFrom'] !== undefined)
      return { name, valueFrom: structuredClone(found['valueFrom']) };
    return { name, value: String(found['value'] ?? '') };
  }
  return undefined;
}

/** The uid every app container runs as, when the pod spec says it and it is the same for all. */
function appUid(
  podSpec: Obj,
  containers: Obj[],
  field: 'runAsUser' | 'runAsGroup',
): number | undefined {
  const podLevel = isObj(podSpec['securityContext'])
    ? podSpec['securityContext'][field]
    : undefined;
  const uids = containers.map((c) => {
    const own = isObj(c['securityContext']) ? c['securityContext'][field] : undefined;
    return typeof own === 'number' ? own : typeof podLevel === 'number' ? podLevel : undefined;
  });
  const first = uids[0];
  if (first === undefined || first <= 0 || uids.some((u) => u !== first)) return undefined;
  return first;
}

/** Every `containerPort` a container of the pod declares. */
function declaredPorts(containers: Obj[]): Map<number, string> {
  const ports = new Map<number, string>();
  for (const c of containers) {
    for (const p of list(c['ports'])) {
      const n = Number(p['containerPort']);
      if (Number.isInteger(n) && !ports.has(n)) ports.set(n, String(c['name']));
    }
  }
  return ports;
}

/** `from`, or the first port above it that is not in `busy`. */
function freePortFrom(from: number, busy: (port: number) => boolean): number | undefined {
  for (let port = from; port <= 65535; port += 1) if (!busy(port)) return port;
  return undefined;
}

/**
 * The reloader's webhook and admin ports: `infisical.com/webhook-port`, or the config's port
 * when no container of the pod declares it, else the first port above it that none declares;
 * the admin port likewise, and never the webhook's.
 */
function choosePorts(
  values: Annotations,
  declared: Map<number, string>,
  config: Readonly<InjectorConfig>,
): { webhook: number; admin: number } | { message: string } {
  let webhook: number | undefined;
  const asked = values['webhook-port'];
  if (asked !== undefined) {
    webhook = Number(asked);
    const owner = declared.get(webhook);
    if (owner !== undefined) {
      return {
        message: `annotation ${PREFIX}webhook-port: container ${owner} declares port ${webhook}, which the pod shares with the reloader; choose another`,
      };
    }
  } else {
    webhook = freePortFrom(config.webhookPort, (p) => declared.has(p));
  }
  const admin = freePortFrom(config.adminPort, (p) => declared.has(p) || p === webhook);
  if (webhook === undefined || admin === undefined) {
    return { message: 'the pod declares every port the reloader could listen on' };
  }
  return { webhook, admin };
}

function planInjection(
  values: Annotations,
  podSpec: Obj,
  containers: Obj[],
  input: MutationInput,
): Plan | { message: string } {
  const { config } = input;
  const mode = values.mode === 'init' ? 'init' : 'sidecar';
  const outputPath = (values['output-path'] ?? DEFAULT_OUTPUT_PATH).replace(/(.)\/$/, '$1');
  const configMap = values['reloader-config'];

  // Conflicts a patch would turn into an invalid pod: refuse them by name instead.
  for (const c of containers) {
    const name = String(c['name']);
    const busy = list(c['volumeMounts']).find(
      (m) => String(m['mountPath']).replace(/(.)\/$/, '$1') === outputPath,
    );
    if (busy !== undefined) {
      return {
        message: `annotation ${PREFIX}output-path: container ${name} already mounts ${outputPath}; choose another path`,
      };
    }
  }
  let ports: { webhook: number; admin: number } | undefined;
  if (mode === 'sidecar') {
    const chosen = choosePorts(
      values,
      declaredPorts([...containers, ...list(podSpec['initContainers'])]),
      config,
    );
    if ('message' in chosen) return chosen;
    ports = chosen;
  }
  const taken = new Set(list(podSpec['volumes']).map((v) => v['name']));
  for (const n of Object.values(NAMES)) {
    if (n !== NAMES.container && taken.has(n)) {
      return { message: `the pod already has a volume named ${n}, which the injector adds` };
    }
  }

  // Settings, first found: annotations (template over workload), app variables, config.
  const env: EnvVar[] = [];
  for (const [name, annotation] of GUIDE_ENV) {
    const fromAnnotation = values[annotation];
    const found =
      fromAnnotation !== undefined ? { name, value: fromAnnotation } : appEnv(containers, name);
    if (found !== undefined) env.push(found);
    else if (name === 'INFISICAL_API_URL') env.push({ name, value: config.apiUrl });
    else if (name === 'INFISICAL_ENVIRONMENT') env.push({ name, value: 'dev' });
    else if (name === 'INFISICAL_SECRET_PATH') env.push({ name, value: '/' });
    else if (configMap === undefined) {
      // The default config has no other place for these two; a ConfigMap's reloader.yaml may.
      return {
        message: `annotation ${PREFIX}${annotation} is required (or a ${name} variable on an app container): Kubernetes auth needs it`,
      };
    }
  }

  const uid = appUid(podSpec, containers, 'runAsUser');
  const gid = appUid(podSpec, containers, 'runAsGroup');
  const reloadProcess = values['reload-process'];
  const reloadSignal = (values['reload-signal'] ?? 'HUP').replace(/^SIG/, '');
  const shareProcessNamespace = configMap === undefined && reloadProcess !== undefined;
  const peers =
    values.peers === undefined
      ? undefined
      : values.peers.includes('.') || input.namespace === undefined
        ? values.peers
        : `${values.peers}.${input.namespace}.svc.cluster.local`;
  const webhookSecretName = values['webhook-secret'] ?? config.webhookSecretName;
  const webhookSecretFile = `${PATHS.webhookSecretDir}/webhook-secret`;

  env.push(
    { name: 'RELOADER_OUTPUT_PATH', value: outputPath },
    { name: 'RELOADER_WEBHOOK_SECRET_FILE', value: webhookSecretFile },
  );
  if (ports !== undefined) {
    env.push(
      { name: 'RELOADER_WEBHOOK_LISTEN', value: `0.0.0.0:${ports.webhook}` },
      { name: 'RELOADER_ADMIN_LISTEN', value: `0.0.0.0:${ports.admin}` },
    );
  }
  if (peers !== undefined) env.push({ name: 'RELOADER_PEERS_DNS', value: peers });
  env.push({ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
  env.push({ name: 'NODE_OPTIONS', value: config.nodeOptions });
  if (configMap !== undefined) {
    env.push({ name: 'RELOADER_CONFIG', value: `${PATHS.configDir}/reloader.yaml` });
  } else {
    env.push({
      name: 'RELOADER_CONFIG_YAML',
      value: defaultSpec({
        mode,
        outputPath,
        // Files readable by the app: 0600 when the reloader runs as the app's own uid.
        fileMode: uid !== undefined ? '0600' : '0644',
        ports,
        webhookSecretFile,
        peers,
        reload:
          reloadProcess === undefined
            ? undefined
            : { signal: reloadSignal, processName: reloadProcess },
        config,
      }),
    });
  }

  const mounts: Obj[] = [
    { name: NAMES.files, mountPath: outputPath },
    { name: NAMES.token, mountPath: PATHS.tokenDir, readOnly: true },
  ];
  const volumes: Obj[] = [
    { name: NAMES.files, emptyDir: { medium: 'Memory', sizeLimit: '8Mi' } },
    {
      name: NAMES.token,
      projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3600 } }] },
    },
  ];
  if (mode === 'sidecar') {
    mounts.push({ name: NAMES.webhookSecret, mountPath: PATHS.webhookSecretDir, readOnly: true });
    volumes.push({
      name: NAMES.webhookSecret,
      secret: {
        secretName: webhookSecretName,
        optional: true,
        items: [{ key: 'webhook-secret', path: 'webhook-secret' }],
      },
    });
  }
  if (configMap !== undefined) {
    mounts.push({ name: NAMES.config, mountPath: PATHS.configDir, readOnly: true });
    volumes.push({ name: NAMES.config, configMap: { name: configMap } });
  }

  const container: Obj = {
    name: NAMES.container,
    image: config.image,
    imagePullPolicy: config.imagePullPolicy,
    args: mode === 'sidecar' ? ['run'] : ['run', '--once'],
    env,
  };
  if (ports !== undefined) {
    container['restartPolicy'] = 'Always';
    container['ports'] = [
      { name: 'rld-webhook', containerPort: ports.webhook },
      { name: 'rld-admin', containerPort: ports.admin },
    ];
    container['startupProbe'] = {
      httpGet: { path: '/readyz', port: ports.admin },
      periodSeconds: 2,
      failureThreshold: 60,
    };
    container['livenessProbe'] = {
      httpGet: { path: '/healthz', port: ports.admin },
      periodSeconds: 20,
      failureThreshold: 3,
    };
  }
  container['resources'] = structuredClone(config.resources);
  container['securityContext'] = {
    runAsNonRoot: true,
    runAsUser: uid ?? config.runAsUser,
    runAsGroup: gid ?? config.runAsGroup,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
  container['volumeMounts'] = mounts;
  return { mode, ports, outputPath, container, volumes, shareProcessNamespace };
}

/** The Handlebars text of the default config's two files. */
export const DEFAULT_TEMPLATES = Object.freeze({
  env: '{{#each secrets}}\n{{@key}}={{json this}}\n{{/each}}\n',
  json: '{{json secrets}}\n',
});

/**
 * The reloader.yaml of a pod without a ConfigMap: every secret of the source (from the
 * `INFISICAL_*` variables) in `secrets.env` and `secrets.json` at the output path, the named
 * process signalled when asked. Passed to the reloader in `RELOADER_CONFIG_YAML` (no file to
 * ship, nothing to create in the cluster). Holds no secret: values come at run time.
 */
export function defaultSpec(p: DefaultSpecParams): string {
  // Memoised: a cluster has a handful of distinct settings, and YAML stringification is most
  // of the cost of a review (≈0.18 ms of ≈0.2 ms measured). Bounded, so odd input cannot grow it.
  let byConfig = specCache.get(p.config);
  if (byConfig === undefined) specCache.set(p.config, (byConfig = new Map()));
  const key = JSON.stringify([
    p.mode,
    p.outputPath,
    p.fileMode,
    p.webhookSecretFile,
    p.peers,
    p.reload,
    p.ports,
  ]);
  const cached = byConfig.get(key);
  if (cached !== undefined) return cached;
  const text = renderDefaultSpec(p);
  if (byConfig.size >= SPEC_CACHE_SIZE) byConfig.clear();
  byConfig.set(key, text);
  return text;
}

interface DefaultSpecParams {
  mode: 'sidecar' | 'init';
  outputPath: string;
  fileMode: string;
  webhookSecretFile: string;
  peers: string | undefined;
  reload: { signal: string; processName: string } | undefined;
  /** The listener ports; sidecar mode only. */
  ports: { webhook: number; admin: number } | undefined;
  config: Readonly<InjectorConfig>;
}

const SPEC_CACHE_SIZE = 256;
const specCache = new WeakMap<Readonly<InjectorConfig>, Map<string, string>>();

function renderDefaultSpec(p: DefaultSpecParams): string {
  const infisical: Obj = { auth: { kubernetes: { tokenPath: `${PATHS.tokenDir}/token` } } };
  if (p.mode === 'sidecar' && p.config.eventSubscription) {
    infisical['eventSubscription'] = { enabled: true };
  }
  const spec: Obj = { infisical };
  if (p.ports !== undefined) {
    const webhook: Obj = {
      listen: `0.0.0.0:${p.ports.webhook}`,
      secretFile: p.webhookSecretFile,
    };
    if (p.peers !== undefined) webhook['peers'] = { dns: p.peers };
    spec['webhook'] = webhook;
    spec['admin'] = { listen: `0.0.0.0:${p.ports.admin}` };
  }
  const target: Obj = {
    name: 'secrets',
    files: [
      {
        destination: `${p.outputPath}/secrets.env`,
        mode: p.fileMode,
        contents: DEFAULT_TEMPLATES.env,
      },
      {
        destination: `${p.outputPath}/secrets.json`,
        mode: p.fileMode,
        contents: DEFAULT_TEMPLATES.json,
      },
    ],
  };
  if (p.reload !== undefined) target['reload'] = { ...p.reload };
  spec['targets'] = [target];
  return `# Written by the infisical-reloader injector.\n${stringify(spec)}`;
}
