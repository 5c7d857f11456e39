/**
 * The options of `SecretSubscriber`: the `infisical`, `sources`, `webhook`, `admin` and
 * `defaults` blocks of reloader.yaml as plain objects (same names, same defaults), or the path
 * of a reloader.yaml, or nothing (the guide's environment variables).
 */
import type { DestinationStream } from 'pino';

/** A duration as reloader.yaml writes it: `200ms`, `2s`, `5m`. */
export type Duration = string;

export interface KubernetesAuthOptions {
  /** Machine identity ID; default `$INFISICAL_IDENTITY_ID`. */
  identityId?: string;
  /** Service-account token file, re-read at every login. */
  tokenPath?: string;
}

export type AuthOptions =
  | { kubernetes: KubernetesAuthOptions | null }
  | { universal: { clientId: string; clientSecret: string } }
  | { universal: { clientId: string; clientSecretFile: string } }
  | { token: { token: string } }
  | { token: { tokenFile: string } };

export interface InfisicalOptions {
  /** API base URL ending in `/api`; default `$INFISICAL_API_URL`. */
  url?: string;
  /** Exactly one method; default kubernetes. */
  auth?: AuthOptions;
  /** Renew the access token when this fraction of its TTL has passed (default 0.8). */
  renewAt?: number;
  /** Extra CA bundle (PEM) for TLS to Infisical. */
  caFile?: string;
  /** Per-request timeout (default `10s`). */
  timeout?: Duration;
  /** Infisical Event Subscriptions (Enterprise): one stream per project of the sources. */
  eventSubscription?: {
    enabled?: boolean;
    heartbeatTimeout?: Duration;
    reconnect?: { min?: Duration; max?: Duration };
  };
}

export interface SourceOptions {
  /** Default `$INFISICAL_PROJECT_ID`. */
  projectId?: string;
  /** Environment slug; default `$INFISICAL_ENVIRONMENT`, else `dev`. */
  environment?: string;
  /** Secret path; default `$INFISICAL_SECRET_PATH`, else `/`. */
  path?: string;
  recursive?: boolean;
  includeImports?: boolean;
  expandReferences?: boolean;
}

export interface WebhookOptions {
  /** `host:port`, `[::]:port`, `:port` or a port; default `0.0.0.0:8080`. */
  listen?: string | number;
  /** Default `/infisical/webhook`. */
  path?: string;
  /** Signing secret; default `$INFISICAL_WEBHOOK_SECRET`. */
  secret?: string;
  secretFile?: string;
  maxAge?: Duration;
  /** Local experiments only. */
  allowUnsigned?: boolean;
  payloadValues?: 'apply' | 'refetch';
  /** Relay each verified delivery to the other replicas. */
  peers?: { dns?: string; addresses?: string[]; port?: number; timeout?: Duration };
}

export interface AdminOptions {
  /** `host:port`, `[::]:port`, `:port` or a port; default `0.0.0.0:9090`. */
  listen?: string | number;
}

export interface SubscriberOptions {
  /**
   * Path of a reloader.yaml to take `infisical`, `sources`, `webhook`, `admin` and `defaults`
   * from (its `targets`, when present, are ignored). Exclusive with the blocks below.
   */
  config?: string;
  infisical?: InfisicalOptions;
  sources?: SourceOptions[];
  /** The webhook listener; `false` opens none (event subscriptions only). */
  webhook?: WebhookOptions | false;
  /** The admin listener (`/healthz`, `/readyz`, `/metrics`, `/status`); opened only when given. */
  admin?: AdminOptions;
  /** `wait` coalesces bursts: one call per key after `min` of quiet, at most `max` after the first. */
  defaults?: { wait?: { min?: Duration; max?: Duration } };
  /** Environment for defaults and `${VAR}`; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** pino level of the subscriber's own JSON log lines (stderr); default `info`. */
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Where the log lines go; default stderr. */
  logDestination?: DestinationStream;
}
