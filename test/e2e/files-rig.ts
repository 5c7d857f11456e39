/**
 * The daemon wired to the local Infisical for the file-format end-to-end tests: one project,
 * one folder, Kubernetes auth, a signed webhook subscribed once the daemon is ready, so
 * `rotate()` is one secret change → one webhook → one pass. The spec's `targets:` block is the
 * test's; everything else is fixed here.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { LocalInfisical } from '../../src/dev/local-infisical.js';
import { startInfisical, tempDir } from '../helpers/harness.js';
import { seedYaml, specHeader, startDaemon, type Daemon } from './daemon.js';

export interface FilesRig {
  dir: string;
  daemon: Daemon;
  local: LocalInfisical;
  /** Values that must not reach any output (the token and webhook secret included). */
  canaries: string[];
  /** Change secrets in Infisical (one webhook for the batch). */
  rotate(secrets: Record<string, string>): void;
}

const PROJECT = 'proj-files';
const ENV = 'prod';

/** Start the daemon on a spec whose `targets:` block is `targets(dir)`. */
export async function startFilesRig(
  t: TestContext,
  secrets: Record<string, string>,
  targets: (dir: string) => string,
  env: NodeJS.ProcessEnv = {},
): Promise<FilesRig> {
  const webhookSecret = `canary-files-webhook-${Math.random().toString(16).slice(2)}`;
  const local = await startInfisical(
    t,
    seedYaml({ projectId: PROJECT, environment: ENV, identityId: 'ident-files', secrets }),
    { webhookDelayMs: 20 },
  );
  const dir = await tempDir(t, 'rld-e2e-files-');
  const saToken = local.mintServiceAccountToken({ namespace: 'apps', name: 'reloader' });
  await writeFile(join(dir, 'sa-token'), saToken, { mode: 0o600 });
  await writeFile(join(dir, 'webhook-secret'), `${webhookSecret}\n`, { mode: 0o600 });
  const spec = join(dir, 'reloader.yaml');
  await writeFile(
    spec,
    `${specHeader({ url: local.url, identityId: 'ident-files', projectId: PROJECT, environment: ENV })}targets:
${targets(dir)}`,
  );
  const daemon = await startDaemon(t, spec, env);
  local.addWebhook({
    projectId: PROJECT,
    environment: ENV,
    secretPath: '/**',
    url: `${daemon.url}/infisical/webhook`,
    secretKey: webhookSecret,
  });
  let current = { ...secrets };
  return {
    dir,
    daemon,
    local,
    canaries: [webhookSecret, saToken],
    rotate(changes) {
      current = { ...current, ...changes };
      local.replaceFolder({ projectId: PROJECT, environment: ENV, path: '/', secrets: current });
    },
  };
}
