/**
 * Raw (schema-valid) spec data → the resolved `ReloaderSpec`: defaults applied from the one
 * DEFAULTS literal and the environment, durations and modes converted, relative
 * paths made absolute against the spec's folder, and the cross-field rules the schema cannot
 * word well checked here, each failing with a SpecError that names file, YAML path and line.
 */
import type {
  AdminSpec,
  AuthSpec,
  EventSubscriptionSpec,
  InfisicalSpec,
  PeerAddress,
  PeersSpec,
  ReloaderSpec,
  SourceSpec,
  WebhookSpec,
} from './types.js';
import { parseDuration } from './duration.js';
import { DEFAULTS, buildWait } from './reader.js';
import type { SpecReader } from './reader.js';
import type { Segment } from './source.js';
import { buildTargets } from './targets.js';
import { normaliseSecretPath, parseHttpUrl, parseListen, parseMode } from './validate.js';

type Raw = Record<string, unknown>;

/** Builds the resolved spec (not yet frozen) from schema-valid data. */
export function buildSpec(reader: SpecReader, file: string): ReloaderSpec {
  const defaultMode = reader.mode(['defaults', 'mode'], parseMode(DEFAULTS.mode));
  const defaultWait = buildWait(reader, ['defaults', 'wait'], {
    minMs: parseDuration(DEFAULTS.waitMin),
    maxMs: parseDuration(DEFAULTS.waitMax),
  });
  const webhook = buildWebhook(reader);
  const admin = buildAdmin(reader, webhook);
  return {
    file,
    dir: reader.dir,
    infisical: buildInfisical(reader),
    sources: buildSources(reader),
    webhook,
    admin,
    defaults: { mode: defaultMode, wait: defaultWait },
    targets: buildTargets(reader, defaultMode, defaultWait),
  };
}

function buildInfisical(reader: SpecReader): InfisicalSpec {
  const base: Segment[] = ['infisical'];
  const urlText =
    reader.get<string>([...base, 'url']) ?? reader.envVar('INFISICAL_API_URL') ?? DEFAULTS.url;
  const url = reader.convert([...base, 'url'], () => {
    try {
      return parseHttpUrl(urlText, true);
    } catch (err) {
      if (reader.has([...base, 'url'])) throw err;
      throw new Error(`INFISICAL_API_URL ${(err as Error).message}`, { cause: err });
    }
  });
  const spec: InfisicalSpec = {
    url,
    auth: buildAuth(reader, [...base, 'auth']),
    renewAt: reader.get<number>([...base, 'renewAt']) ?? DEFAULTS.renewAt,
    timeoutMs: reader.duration([...base, 'timeout'], DEFAULTS.timeout),
    eventSubscription: buildEventSubscription(reader, [...base, 'eventSubscription']),
  };
  if (spec.renewAt <= 0 || spec.renewAt >= 1) {
    reader.fail([...base, 'renewAt'], 'must be between 0 and 1 (exclusive), e.g. 0.8');
  }
  const caFile = reader.filePath([...base, 'caFile']);
  if (caFile !== undefined) spec.caFile = caFile;
  if (spec.timeoutMs <= 0) reader.fail([...base, 'timeout'], 'must be longer than 0');
  return spec;
}

function buildAuth(reader: SpecReader, path: Segment[]): AuthSpec {
  const method =
    reader.get<Raw>(path) === undefined
      ? 'kubernetes'
      : reader.exactlyOne(path, ['kubernetes', 'universal', 'token'], 'auth');
  const at = [...path, method];
  if (method === 'kubernetes') {
    const identityId =
      reader.get<string>([...at, 'identityId']) ?? reader.envVar('INFISICAL_IDENTITY_ID');
    if (identityId === undefined) {
      reader.fail(
        [...at, 'identityId'],
        'kubernetes auth needs a machine identity: set INFISICAL_IDENTITY_ID or infisical.auth.kubernetes.identityId',
      );
    }
    return {
      kind: 'kubernetes',
      identityId,
      tokenPath: reader.filePath([...at, 'tokenPath']) ?? DEFAULTS.tokenPath,
    };
  }
  if (method === 'universal') {
    const which = reader.exactlyOne(at, ['clientSecret', 'clientSecretFile'], 'universal auth');
    const clientId = reader.get<string>([...at, 'clientId']) as string;
    return which === 'clientSecret'
      ? { kind: 'universal', clientId, clientSecret: reader.get<string>([...at, which]) as string }
      : {
          kind: 'universal',
          clientId,
          clientSecretFile: reader.filePath([...at, which]) as string,
        };
  }
  const which = reader.exactlyOne(at, ['token', 'tokenFile'], 'token auth');
  return which === 'token'
    ? { kind: 'token', token: reader.get<string>([...at, which]) as string }
    : { kind: 'token', tokenFile: reader.filePath([...at, which]) as string };
}

function buildSources(reader: SpecReader): SourceSpec[] {
  const raw = reader.get<Raw[]>(['sources']) ?? [{}];
  return raw.map((_, index) => {
    const at: Segment[] = ['sources', index];
    const projectId =
      reader.get<string>([...at, 'projectId']) ?? reader.envVar('INFISICAL_PROJECT_ID');
    if (projectId === undefined) {
      const where: Segment[] = reader.has(['sources']) ? [...at, 'projectId'] : ['sources'];
      reader.fail(where, 'no Infisical project: set INFISICAL_PROJECT_ID or sources[].projectId');
    }
    const path =
      reader.get<string>([...at, 'path']) ??
      reader.envVar('INFISICAL_SECRET_PATH') ??
      DEFAULTS.secretPath;
    return {
      projectId,
      environment:
        reader.get<string>([...at, 'environment']) ??
        reader.envVar('INFISICAL_ENVIRONMENT') ??
        DEFAULTS.environment,
      path: normaliseSecretPath(path),
      recursive: reader.get<boolean>([...at, 'recursive']) ?? false,
      includeImports: reader.get<boolean>([...at, 'includeImports']) ?? true,
      expandReferences: reader.get<boolean>([...at, 'expandReferences']) ?? true,
    };
  });
}

function buildWebhook(reader: SpecReader): WebhookSpec {
  const at: Segment[] = ['webhook'];
  const listen = reader.get<string | number>([...at, 'listen']) ?? DEFAULTS.listen;
  const spec: WebhookSpec = {
    listen: reader.convert([...at, 'listen'], () => parseListen(listen)),
    path: reader.get<string>([...at, 'path']) ?? DEFAULTS.webhookPath,
    maxAgeMs: reader.duration([...at, 'maxAge'], DEFAULTS.maxAge),
    allowUnsigned: reader.get<boolean>([...at, 'allowUnsigned']) ?? false,
    payloadValues:
      reader.get<'apply' | 'refetch'>([...at, 'payloadValues']) ?? DEFAULTS.payloadValues,
  };
  if (spec.maxAgeMs <= 0) reader.fail([...at, 'maxAge'], 'must be longer than 0');
  const peers = buildPeers(reader, [...at, 'peers']);
  if (peers !== undefined) spec.peers = peers;
  const secret = reader.get<string>([...at, 'secret']);
  const secretFile = reader.filePath([...at, 'secretFile']);
  if (secret !== undefined && secretFile !== undefined) {
    reader.fail(at, 'webhook takes exactly one of secret, secretFile, but has both');
  }
  if (secret !== undefined) spec.secret = secret;
  else if (secretFile !== undefined) spec.secretFile = secretFile;
  else {
    const fromEnv = reader.envVar('INFISICAL_WEBHOOK_SECRET');
    if (fromEnv !== undefined) spec.secret = fromEnv;
  }
  return spec;
}

function buildEventSubscription(reader: SpecReader, at: Segment[]): EventSubscriptionSpec {
  const spec: EventSubscriptionSpec = {
    enabled: reader.get<boolean>([...at, 'enabled']) ?? false,
    heartbeatTimeoutMs: reader.duration([...at, 'heartbeatTimeout'], DEFAULTS.heartbeatTimeout),
    reconnectMinMs: reader.duration([...at, 'reconnect', 'min'], DEFAULTS.reconnectMin),
    reconnectMaxMs: reader.duration([...at, 'reconnect', 'max'], DEFAULTS.reconnectMax),
  };
  if (spec.heartbeatTimeoutMs <= 0) {
    reader.fail([...at, 'heartbeatTimeout'], 'must be longer than 0');
  }
  if (spec.reconnectMinMs <= 0 || spec.reconnectMaxMs < spec.reconnectMinMs) {
    reader.fail([...at, 'reconnect'], 'min must be longer than 0 and max at least min');
  }
  return spec;
}

/** `host`, `host:port`, `[v6]` or `[v6]:port` → a peer address. */
function parsePeerAddress(text: string): PeerAddress {
  const t = text.trim();
  const v6 = /^\[([0-9A-Fa-f:.%\w]+)\](?::(\d+))?$/.exec(t);
  const v4 = v6 ?? /^([^:[\]\s]+)(?::(\d+))?$/.exec(t);
  const bareV6 = v4 ?? (/^[0-9A-Fa-f:]+$/.test(t) && t.includes(':') ? [t, t] : null);
  if (bareV6 === null) {
    throw new Error(`"${t}" is not host, host:port, [v6] or [v6]:port`);
  }
  const host = bareV6[1] as string;
  const portText = bareV6[2];
  if (portText === undefined) return { host };
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`port ${portText} of "${t}" is out of range 1-65535`);
  }
  return { host, port };
}

function buildPeers(reader: SpecReader, at: Segment[]): PeersSpec | undefined {
  if (!reader.has(at)) return undefined;
  const which = reader.exactlyOne(at, ['dns', 'addresses'], 'webhook.peers');
  const spec: PeersSpec = {
    timeoutMs: reader.duration([...at, 'timeout'], DEFAULTS.peersTimeout),
  };
  const port = reader.get<number>([...at, 'port']);
  if (port !== undefined) spec.port = port;
  if (which === 'dns') spec.dns = reader.get<string>([...at, 'dns']) as string;
  else {
    const raw = reader.get<string[]>([...at, 'addresses']) ?? [];
    spec.addresses = raw.map((text, i) =>
      reader.convert([...at, 'addresses', i], () => parsePeerAddress(text)),
    );
  }
  if (spec.timeoutMs <= 0) reader.fail([...at, 'timeout'], 'must be longer than 0');
  return spec;
}

function buildAdmin(reader: SpecReader, webhook: WebhookSpec): AdminSpec {
  const at: Segment[] = ['admin', 'listen'];
  const listenText = reader.get<string | number>(at) ?? DEFAULTS.adminListen;
  const listen = reader.convert(at, () => parseListen(listenText));
  const w = webhook.listen;
  const wildcard = (h: string): boolean => h === '0.0.0.0' || h === '::' || h === '';
  if (
    listen.port !== 0 &&
    listen.port === w.port &&
    (listen.host === w.host || wildcard(listen.host) || wildcard(w.host))
  ) {
    reader.fail(
      reader.has(at) ? at : ['webhook', 'listen'],
      `the admin listener (${listen.host}:${listen.port}) and the webhook listener (${w.host}:${w.port}) need different ports`,
    );
  }
  return { listen };
}
