/**
 * The secret-reading routes of the local server (docs/infisical-api.md): `GET /api/v3/secrets/raw`,
 * `GET /api/v3/secrets/raw/:secretName`, `GET /api/v4/secrets`, `GET /api/v4/secrets/:secretName`.
 *
 * Each handler follows its Infisical router step by step: (1) auth (401 "Token missing"),
 * (2) query validation in schema order (422), (3) project id / environment checks with the
 * router's own 400 messages, (4) project membership (403), (5) the service call in `listing.ts`.
 *
 * Query booleans are only "true"/"false". Only `include_imports` is read; the camelCase
 * `includeImports` (sent by the newest CLI and by the SDK's `getSecret`) is ignored, as Infisical
 * strips it.
 *
 * `v4: false` (an older server) leaves the v4 routes out: they answer fastify's 404.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest, notFound } from './api-error.js';
import { getSecretByName, listSecrets } from './listing.js';
import { requireIdentity, requireProject, type ServerState } from './state.js';
import { Validator } from './validate.js';

const SECRET_TYPES = ['shared', 'personal'] as const;

/** `metadataFilter` as Infisical parses it: `key=a,value=b|key=c,value=d`; true when non-empty. */
function metadataFilter(v: Validator): boolean {
  const raw = v.string('metadataFilter', true);
  if (!raw) return false;
  let count = 0;
  for (const pair of raw.split('|')) {
    const parts = pair.split(/[,=]/);
    let key = '';
    let value = '';
    for (let i = 0; i < parts.length; i += 2) {
      const id = (parts[i] ?? '').trim().toLowerCase();
      const val = parts[i + 1]?.trim() ?? '';
      if (id === 'key' && val) key = val;
      else if (id === 'value' && val) value = val;
    }
    if (key && value) count += 1;
  }
  if (count > 10) {
    v.issues.push({
      code: 'custom',
      message: 'You can only filter by up to 10 metadata fields',
      path: ['metadataFilter'],
    });
  }
  return count > 0;
}

function includeImports(v: Validator): boolean {
  return v.bool('include_imports', false);
}

function tagSlugs(v: Validator): string[] {
  const raw = v.string('tagSlugs', true);
  return raw ? raw.split(',').map((s) => s.trim()) : [];
}

/** v3's `extractProjectIdFromSlug`: an id wins, else a slug, else 400. */
function projectIdFrom(state: ServerState, id: string | undefined, slug: string | undefined) {
  if (id) return id;
  if (!slug) throw badRequest('You must provide projectSlug or workspaceId');
  const project = state.store.projectBySlug(slug);
  if (!project) throw notFound(`No project found with slug ${slug}`);
  return project.id;
}

function secretName(req: FastifyRequest): string {
  return String((req.params as Record<string, unknown>).secretName ?? '').trim();
}

/** The query fields of the single-secret routes (v3 and v4), in validation order. */
function getQuery(v: Validator) {
  return {
    path: v.secretPath(),
    version: v.optionalNumber('version'),
    type: v.enumValue('type', SECRET_TYPES, 'shared'),
    viewSecretValue: v.bool('viewSecretValue', true),
    expand: v.bool('expandSecretReferences', false),
    includeImports: includeImports(v),
  };
}

/** The query fields `GET /v3/secrets/raw` and `GET /v4/secrets` share, in validation order. */
function listQuery(v: Validator) {
  return {
    path: v.secretPath(),
    viewSecretValue: v.bool('viewSecretValue', true),
    expand: v.bool('expandSecretReferences', false),
    recursive: v.bool('recursive', false),
    includeImports: includeImports(v),
    tagSlugs: tagSlugs(v),
  };
}

/** Register the four secret routes (two without `v4`). */
export function registerSecretRoutes(
  app: FastifyInstance,
  state: ServerState,
  opts: { v4: boolean },
): void {
  app.get('/api/v3/secrets/raw', async (req) => {
    const record = requireIdentity(state, req);
    const v = new Validator(req.query, 'query');
    const metadata = metadataFilter(v);
    const workspaceId = v.string('workspaceId', true);
    const workspaceSlug = v.string('workspaceSlug', true);
    const environment = v.string('environment', true);
    const options = listQuery(v);
    v.done();
    const projectId = projectIdFrom(state, workspaceId, workspaceSlug);
    if (!environment) throw badRequest('Missing project id or environment');
    const project = requireProject(state, record, projectId);
    return listSecrets(state.store, { project, environment, ...options, metadataFilter: metadata });
  });

  if (opts.v4)
    app.get('/api/v4/secrets', async (req) => {
      const record = requireIdentity(state, req);
      const v = new Validator(req.query, 'query');
      const metadata = metadataFilter(v);
      const projectId = v.string('projectId', true);
      const environment = v.string('environment', true);
      const options = listQuery(v);
      v.done();
      if (!projectId || !environment) throw badRequest('Missing project id or environment');
      const project = requireProject(state, record, projectId);
      return listSecrets(state.store, {
        project,
        environment,
        ...options,
        metadataFilter: metadata,
      });
    });

  app.get('/api/v3/secrets/raw/:secretName', async (req) => {
    const record = requireIdentity(state, req);
    const v = new Validator(req.query, 'query');
    const workspaceId = v.string('workspaceId', true);
    const workspaceSlug = v.string('workspaceSlug', true);
    const environment = v.string('environment', true);
    const options = getQuery(v);
    v.done();
    const projectId = projectIdFrom(state, workspaceId, workspaceSlug);
    if (!environment) throw badRequest('Missing environment');
    const project = requireProject(state, record, projectId);
    const secret = getSecretByName(state.store, {
      project,
      environment,
      secretName: secretName(req),
      ...options,
    });
    return { secret };
  });

  if (opts.v4)
    app.get('/api/v4/secrets/:secretName', async (req) => {
      const record = requireIdentity(state, req);
      const v = new Validator(req.query, 'query');
      const projectId = v.string('projectId');
      const environment = v.string('environment', true);
      const options = getQuery(v);
      v.done();
      if (!environment) throw badRequest('Missing environment');
      if (!projectId) throw badRequest('You must provide  workspaceId');
      const project = requireProject(state, record, projectId);
      const secret = getSecretByName(state.store, {
        project,
        environment,
        secretName: secretName(req),
        ...options,
      });
      return { secret };
    });
}
