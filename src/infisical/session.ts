/**
 * One link to Infisical: a client and its token manager, built from the spec's `infisical`
 * block. Everything that talks to Infisical (the secret sync, the event stream, the library)
 * goes through a session, and an engine gets its sessions from a `SessionFactory` — a
 * constructor field, so tests and the library can build them differently.
 *
 * `openSession` does the one piece of I/O a session needs before use — reading `caFile` — and
 * fails with a coded error when it cannot, so a SIGHUP with a bad `caFile` is refused before
 * anything is swapped in. Nothing goes on the network until the first call.
 */
import { readFile } from 'node:fs/promises';
import type { InfisicalSpec, SourceSpec } from '../config/types.js';
import { ReloaderError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Scrubber } from '../secrets/scrubber.js';
import type { SecretMap } from '../secrets/snapshot.js';
import { codeSuffix } from '../util/os-error.js';
import type { Timers } from '../util/timers.js';
import { TokenManager } from './auth.js';
import { InfisicalClient } from './client.js';
import { createTransport, type Transport } from './transport.js';

/** A client and the token manager that logs it in. */
export interface InfisicalSession {
  readonly client: InfisicalClient;
  readonly tokens: TokenManager;
  /** The API base URL, for messages and `/status`. */
  readonly baseUrl: string;
  /** One listing of `source` (with a fresh login and one retry on a rejected token). */
  listSource(source: SourceSpec): Promise<SecretMap>;
  /** Stops the token timers, aborts in-flight requests, closes connections. */
  close(): Promise<void>;
}

/** What a session is built with, besides the spec. */
export interface SessionDeps {
  logger: Logger;
  scrubber: Scrubber;
  /** Called after every login and renew with the token's expiry (metrics, /status). */
  onTokenChange?: (expiresAtMs: number | undefined) => void;
  /** Clock and timers of the token lifecycle (tests). */
  timers?: Timers;
  /** How requests are sent; default a `createTransport` trusting `caFile`. */
  transport?: Transport;
}

/** Builds sessions; `openSession` is the default. */
export type SessionFactory = (spec: InfisicalSpec, deps: SessionDeps) => Promise<InfisicalSession>;

/** Reads `caFile` (when set) and builds the session. Rejects with RLD_ERR_INFISICAL_NETWORK. */
export const openSession: SessionFactory = async (spec, deps) => {
  let transport = deps.transport;
  if (transport === undefined) {
    let ca: string | undefined;
    if (spec.caFile !== undefined) {
      try {
        ca = await readFile(spec.caFile, 'utf8');
      } catch (err) {
        throw new ReloaderError(
          'RLD_ERR_INFISICAL_NETWORK',
          `cannot read infisical.caFile ${spec.caFile}${codeSuffix(err)}`,
          { cause: err, details: { caFile: spec.caFile } },
        );
      }
    }
    transport = createTransport({ ca });
  }
  return sessionOf(spec, deps, transport, deps.transport === undefined);
};

function sessionOf(
  spec: InfisicalSpec,
  deps: SessionDeps,
  transport: Transport,
  ownsTransport: boolean,
): InfisicalSession {
  const client = new InfisicalClient({
    baseUrl: spec.url,
    timeoutMs: spec.timeoutMs,
    transport,
    scrubber: deps.scrubber,
    logger: deps.logger.child({ component: 'infisical' }),
  });
  const tokens = new TokenManager({
    client,
    auth: spec.auth,
    renewAt: spec.renewAt,
    logger: deps.logger.child({ component: 'token' }),
    scrubber: deps.scrubber,
    timers: deps.timers,
    onChange: deps.onTokenChange ? (info) => deps.onTokenChange?.(info.expiresAtMs) : undefined,
  });
  return {
    client,
    tokens,
    baseUrl: client.baseUrl,
    async listSource(source) {
      const listing = await tokens.withToken((token) => client.listSecrets(source, token));
      return listing.secrets;
    },
    async close() {
      tokens.stop();
      await client.close();
      if (ownsTransport) await transport.close();
    },
  };
}
