/**
 * The engine's link to Infisical: one client and one token manager per spec, and the fetch of
 * a set of sources (one list request per source, in parallel, each through `withToken` so an
 * expired or revoked token leads to exactly one fresh login and one retry).
 */
import type { ReloaderSpec, SourceSpec } from '../config/types.js';
import { TokenManager } from '../infisical/auth.js';
import { InfisicalClient } from '../infisical/client.js';
import type { Logger } from '../logger.js';
import type { SecretMap } from '../secrets/snapshot.js';

export interface InfisicalSession {
  client: InfisicalClient;
  tokens: TokenManager;
  close(): Promise<void>;
}

/** Build the client and token manager for `spec.infisical` (no network until first use). */
export function openSession(
  spec: ReloaderSpec,
  logger: Logger,
  onTokenExpiry?: (expiresAtMs: number | undefined) => void,
): InfisicalSession {
  const client = new InfisicalClient({
    baseUrl: spec.infisical.url,
    timeoutMs: spec.infisical.timeoutMs,
    caFile: spec.infisical.caFile,
    logger: logger.child({ component: 'infisical' }),
  });
  const tokens = new TokenManager({
    client,
    auth: spec.infisical.auth,
    renewAt: spec.infisical.renewAt,
    logger: logger.child({ component: 'token' }),
    onChange: onTokenExpiry ? (info) => onTokenExpiry(info.expiresAtMs) : undefined,
  });
  return {
    client,
    tokens,
    async close() {
      tokens.stop();
      await client.close();
    },
  };
}

/** Fetch the given sources (by index) in parallel; rejects with the first failure. */
export async function fetchSources(
  session: InfisicalSession,
  sources: readonly SourceSpec[],
  indexes: Iterable<number> = sources.keys(),
): Promise<Map<number, SecretMap>> {
  const wanted = [...new Set(indexes)];
  const listings = await Promise.all(
    wanted.map(async (index) => {
      const source = sources[index];
      if (!source) throw new RangeError(`no source ${index}`);
      const listing = await session.tokens.withToken((token) =>
        session.client.listSecrets(source, token),
      );
      return [index, listing.secrets] as const;
    }),
  );
  return new Map(listings);
}
