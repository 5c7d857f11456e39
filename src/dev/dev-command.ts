/**
 * `infisical-reloader dev`: the whole loop on one machine, for a newcomer.
 *
 *   (1) load the spec and compile its templates (errors exit 2);
 *   (2) start the local Infisical-compatible server seeded from the secrets file, with an
 *       identity that has Kubernetes auth for the spec's identityId;
 *   (3) mint a service-account token into a private temp file and point the spec's
 *       `infisical` block at the local server with Kubernetes auth — the real login path;
 *   (4) generate a webhook secret, run the daemon, and register a hook (path glob `/**`) for
 *       every project/environment the spec reads;
 *   (5) watch the secrets file: each save replaces the changed folders in the local server,
 *       which fires the real signed `secrets.modified` webhook after Infisical's ~1 s delay.
 */
import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fail, loadSpecFor, runtimeFor, type CliIo, type ParsedArgs } from '../cli/context.js';
import type { ReloaderSpec } from '../config/types.js';
import { compileTargets } from '../engine/targets.js';
import { defaultSecretsFile, loadSeedForSpec } from './render-command.js';
import { startLocalInfisical, type LocalInfisical } from './local-infisical.js';
import type { Seed } from './seed.js';

const DEV_NAMESPACE = 'default';
const DEV_SERVICE_ACCOUNT = 'reloader';

/** Add the dev identity and make sure every source's project/environment/folder exists. */
export function prepareSeed(seed: Seed, spec: ReloaderSpec, identityId: string): Seed {
  const projects = seed.projects.map((p) => ({
    ...p,
    environments: p.environments.map((e) => ({ ...e, folders: [...e.folders] })),
  }));
  for (const source of spec.sources) {
    let project = projects.find((p) => p.id === source.projectId);
    if (!project) {
      project = {
        id: source.projectId,
        name: source.projectId,
        slug: source.projectId,
        environments: [],
      };
      projects.push(project);
    }
    let env = project.environments.find((e) => e.slug === source.environment);
    if (!env) {
      env = { slug: source.environment, name: source.environment, folders: [] };
      project.environments.push(env);
    }
    if (!env.folders.some((f) => f.path === source.path)) {
      env.folders.push({ path: source.path, secrets: {}, imports: [] });
    }
  }
  const identities = seed.identities.filter((i) => i.id !== identityId);
  identities.push({
    id: identityId,
    name: 'infisical-reloader (dev)',
    kubernetes: {
      allowedNamespaces: DEV_NAMESPACE,
      allowedNames: DEV_SERVICE_ACCOUNT,
      allowedAudience: '',
    },
  });
  return { ...seed, projects, identities };
}

/** Push the differences between two seeds into the server, one change per changed folder. */
export function applySeedChanges(local: LocalInfisical, before: Seed, after: Seed): number {
  const folders = (seed: Seed) => {
    const out = new Map<string, Record<string, string>>();
    for (const p of seed.projects) {
      for (const e of p.environments) {
        for (const f of e.folders) out.set(JSON.stringify([p.id, e.slug, f.path]), f.secrets);
      }
    }
    return out;
  };
  const old = folders(before);
  const next = folders(after);
  let changed = 0;
  for (const [key, secrets] of next) {
    if (JSON.stringify(old.get(key) ?? {}) === JSON.stringify(secrets)) continue;
    const [projectId, environment, path] = JSON.parse(key) as [string, string, string];
    local.replaceFolder({ projectId, environment, path, secrets });
    changed++;
  }
  for (const key of old.keys()) {
    if (next.has(key)) continue;
    const [projectId, environment, path] = JSON.parse(key) as [string, string, string];
    local.replaceFolder({ projectId, environment, path, secrets: {} });
    changed++;
  }
  return changed;
}

/** Watch `file` (through its folder: editors replace files on save) and call `onChange`. */
function watchFile(file: string, onChange: () => void): FSWatcher {
  let timer: NodeJS.Timeout | undefined;
  return watch(dirname(file), (_event, name) => {
    if (name !== null && name !== basename(file)) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, 50);
  });
}

export async function runDevCommand(args: ParsedArgs, io: CliIo): Promise<number> {
  // (1)
  let spec: ReloaderSpec;
  try {
    spec = await loadSpecFor(args, io);
    await compileTargets(spec);
  } catch (err) {
    return fail(io, err, 'RLD_ERR_SPEC');
  }
  const { logger, scrubber } = runtimeFor(args, io);
  const secretsFile = args.secrets ?? defaultSecretsFile(spec);
  const identityId =
    spec.infisical.auth.kind === 'kubernetes' ? spec.infisical.auth.identityId : 'dev-identity';
  let seed: Seed;
  try {
    seed = prepareSeed(await loadSeedForSpec(spec, secretsFile), spec, identityId);
  } catch (err) {
    return fail(io, err, 'RLD_ERR_SPEC');
  }

  // (2)
  const local = await startLocalInfisical({
    port: args.port ?? 0,
    seed,
    logger: logger.child({ component: 'local-infisical' }),
  });
  const tmp = await mkdtemp(join(tmpdir(), 'infisical-reloader-dev-'));
  let watcher: FSWatcher | undefined;
  try {
    // (3)
    const tokenPath = join(tmp, 'sa-token');
    await writeFile(
      tokenPath,
      local.mintServiceAccountToken({
        namespace: DEV_NAMESPACE,
        name: DEV_SERVICE_ACCOUNT,
        expiresInS: 24 * 3600,
      }),
      { mode: 0o600 },
    );
    // (4)
    const webhookSecret = randomBytes(32).toString('hex');
    // The local server, the minted token and the generated secret replace the spec's own;
    // SIGHUP re-reads the spec and applies the same overrides again.
    const withOverrides = (base: ReloaderSpec): ReloaderSpec => ({
      ...base,
      infisical: {
        ...base.infisical,
        url: local.url,
        auth: { kind: 'kubernetes', identityId, tokenPath },
      },
      webhook: {
        ...base.webhook,
        secret: webhookSecret,
        secretFile: undefined,
        allowUnsigned: false,
      },
    });
    const devSpec = withOverrides(spec);
    const { serve } = await import('../engine/serve.js');
    return await serve({
      spec: devSpec,
      logger,
      scrubber,
      env: io.env,
      onSignal: io.onSignal,
      reloadSpec: async () => withOverrides(await loadSpecFor(args, io)),
      onListening: ({ url, admin }) => {
        const hookUrl = `${url}${spec.webhook.path}`;
        const scopes = new Set(
          spec.sources.map((s) => JSON.stringify([s.projectId, s.environment])),
        );
        for (const scope of scopes) {
          const [projectId, environment] = JSON.parse(scope) as [string, string];
          local.addWebhook({
            projectId,
            environment,
            secretPath: '/**',
            url: hookUrl,
            secretKey: webhookSecret,
          });
        }
        // (5)
        let current = seed;
        watcher = watchFile(secretsFile, () => {
          void (async () => {
            try {
              const next = prepareSeed(await loadSeedForSpec(spec, secretsFile), spec, identityId);
              const changed = applySeedChanges(local, current, next);
              current = next;
              if (changed > 0)
                logger.info(
                  { folders: changed },
                  'secrets file changed; Infisical will send a webhook',
                );
            } catch (err) {
              logger.error({ err }, 'secrets file is invalid; keeping the previous secrets');
            }
          })();
        });
        printBanner(io, spec, secretsFile, local.url, hookUrl, admin.url);
      },
    });
  } finally {
    watcher?.close();
    await local.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

function printBanner(
  io: CliIo,
  spec: ReloaderSpec,
  secretsFile: string,
  apiUrl: string,
  hookUrl: string,
  adminUrl: string,
): void {
  const rel = (p: string) => relative(process.cwd(), p) || p;
  const files = spec.targets.flatMap((t) => t.files.map((f) => rel(f.destination)));
  const lines = [
    '',
    'infisical-reloader dev',
    `  local Infisical   ${apiUrl}  (Kubernetes auth with a minted service-account token)`,
    `  webhook           ${hookUrl}  (signed; secret generated for this run)`,
    `  admin             ${adminUrl}/status  (also /readyz, /metrics, POST /resync)`,
    `  rendering         ${files.join(', ')}`,
    '',
    `  Edit ${rel(secretsFile)} and save: Infisical sends a signed webhook about 1 s later,`,
    '  the files are re-rendered and the reload runs. Ctrl-C stops.',
    '',
  ];
  io.stdout.write(`${lines.join('\n')}\n`);
}
