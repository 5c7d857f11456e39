/**
 * `infisical-reloader render`: print what the targets would contain, from a local secrets file,
 * with no network, no writes and no reloads. The secrets file has the `dev` seed
 * format (a flat `KEY: value` map for the first source, or the full `projects:` form).
 *
 * Each source is listed from the seed exactly as the local Infisical-compatible server would
 * answer it (imports, references, recursive folders), then merged by the same code the real
 * client uses, so `render` shows what the daemon will write.
 */
import { join } from 'node:path';
import { fail, loadSpecFor, type CliIo, type ParsedArgs } from '../cli/context.js';
import type { ReloaderSpec, SourceSpec } from '../config/types.js';
import { compileTargets, renderTarget } from '../engine/targets.js';
import { ReloaderError } from '../errors.js';
import { contentHash } from '../output/commit.js';
import { parseSecretListing } from '../infisical/listing.js';
import { Scrubber } from '../secrets/scrubber.js';
import { SecretSnapshot, type SecretMap } from '../secrets/snapshot.js';
import { listSecrets } from './listing.js';
import { loadSeedFile, type Seed } from './seed.js';
import { SecretStore } from './store.js';

/** The default secrets file: `secrets.yaml` next to the spec. */
export function defaultSecretsFile(spec: ReloaderSpec): string {
  return join(spec.dir, 'secrets.yaml');
}

/** Load a seed whose flat form lands in the spec's first source. */
export async function loadSeedForSpec(spec: ReloaderSpec, file: string): Promise<Seed> {
  const first = spec.sources[0];
  return loadSeedFile(
    file,
    first ? { projectId: first.projectId, environment: first.environment, path: first.path } : {},
  );
}

/** List one source from a seed store, the way the local server answers `GET /v3/secrets/raw`. */
export function listFromStore(store: SecretStore, source: SourceSpec): SecretMap {
  const project = store.projects.get(source.projectId);
  if (!project || !store.env(source.projectId, source.environment)) return new Map();
  const body = listSecrets(store, {
    project,
    environment: source.environment,
    path: source.path,
    recursive: source.recursive,
    includeImports: source.includeImports,
    expand: source.expandReferences,
    viewSecretValue: true,
    tagSlugs: [],
    metadataFilter: false,
  });
  return parseSecretListing(body, { route: 'seed', requestedPath: source.path }).secrets;
}

export async function runRenderCommand(args: ParsedArgs, io: CliIo): Promise<number> {
  const scrubber = new Scrubber();
  try {
    const spec = await loadSpecFor(args, io);
    const targets = await compileTargets(spec);
    const selected = args.target ? targets.filter((t) => t.spec.name === args.target) : targets;
    if (selected.length === 0) {
      throw new ReloaderError('RLD_ERR_USAGE', `no target named "${args.target}" in ${spec.file}`);
    }
    const seed = await loadSeedForSpec(spec, args.secrets ?? defaultSecretsFile(spec));
    const store = new SecretStore(seed);
    const snapshot = new SecretSnapshot(spec.sources.length);
    snapshot.replace(new Map(spec.sources.map((s, i) => [i, listFromStore(store, s)])));
    scrubber.addAll(snapshot.merged.values());
    for (const target of selected) {
      const rendered = renderTarget(target, snapshot.merged, io.env);
      for (const file of rendered.files) {
        io.stdout.write(
          `==> ${target.spec.name}: ${file.spec.destination} (mode ${file.spec.mode.toString(8).padStart(4, '0')})\n`,
        );
        const text =
          typeof file.contents === 'string'
            ? file.contents
            : `(${file.contents.length} bytes of binary data, sha256 ${contentHash(file.contents)})`;
        io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      }
    }
    return 0;
  } catch (err) {
    return fail(io, err, 'RLD_ERR_RENDER', scrubber);
  }
}
