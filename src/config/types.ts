/**
 * The resolved, validated, frozen form of reloader.yaml. `config/load.ts` builds it:
 * `${VAR}` substituted, durations turned into milliseconds, modes into numbers, relative paths
 * made absolute against the spec file's folder, defaults applied. Every other module takes
 * these types and never sees raw YAML.
 */

/** Where a node came from in reloader.yaml, for error messages. */
export interface Origin {
  yamlPath: string;
  line: number;
}

export type AuthSpec =
  | {
      kind: 'kubernetes';
      identityId: string;
      /** Re-read at every login: projected service-account tokens rotate. */
      tokenPath: string;
    }
  | {
      kind: 'universal';
      clientId: string;
      /** Exactly one of these two is set. The secret itself is never logged. */
      clientSecret?: string;
      clientSecretFile?: string;
    }
  | {
      kind: 'token';
      /** Exactly one of these two is set. A static token is never renewed. */
      token?: string;
      tokenFile?: string;
    };

export interface InfisicalSpec {
  /** Base URL ending in `/api` (no trailing slash), e.g. `http://infisical:8080/api`. */
  url: string;
  auth: AuthSpec;
  /** Renew when this fraction of the TTL has passed (0 < renewAt < 1). */
  renewAt: number;
  caFile?: string;
  /** Per-request timeout. */
  timeoutMs: number;
  /** Infisical Event Subscriptions: one stream per project of the sources. */
  eventSubscription: EventSubscriptionSpec;
}

export interface EventSubscriptionSpec {
  enabled: boolean;
  /** Reconnect when no frame (ping included) arrived for this long. */
  heartbeatTimeoutMs: number;
  /** Jittered backoff between reconnects. */
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

export interface SourceSpec {
  projectId: string;
  environment: string;
  /** Normalised: leading slash, no trailing slash except for the root `/`. */
  path: string;
  recursive: boolean;
  includeImports: boolean;
  expandReferences: boolean;
}

export interface ListenSpec {
  host: string;
  port: number;
}

export interface WebhookSpec {
  listen: ListenSpec;
  path: string;
  /** Exactly one of secret / secretFile, unless allowUnsigned. */
  secret?: string;
  secretFile?: string;
  maxAgeMs: number;
  allowUnsigned: boolean;
  payloadValues: 'apply' | 'refetch';
  /** Relay each verified delivery to the other replicas. */
  peers?: PeersSpec;
}

/** One peer address; `port` undefined means `PeersSpec.port`. */
export interface PeerAddress {
  host: string;
  port?: number;
}

export interface PeersSpec {
  /** Exactly one of dns / addresses. */
  dns?: string;
  addresses?: PeerAddress[];
  /** Port of the peers' webhook listener (default: this replica's webhook port). */
  port?: number;
  timeoutMs: number;
}

export interface AdminSpec {
  listen: ListenSpec;
}

export interface WaitSpec {
  minMs: number;
  maxMs: number;
}

export interface FileSpec {
  /** Absolute path of a template file, or undefined when `contents` is inline. */
  template?: string;
  /** Inline template text. */
  contents?: string;
  /** Absolute destination path. */
  destination: string;
  /** Numeric file mode, e.g. 0o600. */
  mode: number;
  uid?: number;
  gid?: number;
  createDirs: boolean;
  /** `base64`: the rendered text is decoded and the bytes are written. */
  encoding?: 'base64';
  /** False: a change to this file alone is written but triggers no reload (absent: true). */
  reloadOnChange?: boolean;
  /** A PKCS#12 keystore built from these inline templates (instead of template/contents). */
  pkcs12?: Pkcs12Spec;
  origin: Origin;
}

/** Inline templates of a PKCS#12 keystore's parts. The password is never logged. */
export interface Pkcs12Spec {
  certificate: string;
  key: string;
  chain?: string;
  password: string;
  friendlyName?: string;
}

/** A check that the app took the reload, run after it; failures roll the set back. */
export type VerifySpec = {
  /** Per attempt. */
  timeoutMs: number;
  attempts: number;
  /** Pause before each further attempt. */
  intervalMs: number;
} & (
  | {
      kind: 'tls';
      host: string;
      port: number;
      serverName?: string;
      startTls?: 'postgres';
      /** Destination holding the expected certificate; default: found among the files. */
      certificate?: string;
    }
  | { kind: 'http'; url: string; status: number }
  | { kind: 'command'; command: string[] }
);

export interface CommandSpec {
  /** argv, run without a shell. */
  command: string[];
  timeoutMs: number;
}

export type ReloadSpec =
  | {
      kind: 'signal';
      /** Signal name without the SIG prefix, e.g. `HUP`. */
      signal: string;
      /** Exactly one of pid / pidFile / processName. */
      pid?: number;
      pidFile?: string;
      processName?: string;
      timeoutMs: number;
    }
  | { kind: 'command'; command: string[]; timeoutMs: number }
  | {
      kind: 'http';
      url: string;
      method: string;
      headers?: Record<string, string>;
      timeoutMs: number;
    };

export interface TargetSpec {
  name: string;
  files: FileSpec[];
  check?: CommandSpec;
  reload?: ReloadSpec;
  /** `set`: the files are swapped as a whole through a `..data` symlink. */
  atomic?: 'set';
  verify?: VerifySpec;
  wait: WaitSpec;
  origin: Origin;
}

export interface ReloaderSpec {
  /** Absolute path of the spec file it was loaded from. */
  file: string;
  /** Folder of the spec file: relative template paths resolve against it. */
  dir: string;
  infisical: InfisicalSpec;
  sources: SourceSpec[];
  webhook: WebhookSpec;
  admin: AdminSpec;
  defaults: { mode: number; wait: WaitSpec };
  targets: TargetSpec[];
}
