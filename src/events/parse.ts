/**
 * Turns a webhook body into a `ChangeEvent`. Two formats:
 *
 * 1. Infisical's real webhooks (docs/infisical-api.md): `secrets.modified` names a project, an
 *    environment and a folder — no keys, no values; `test` from the "Test webhook" button; and
 *    other events (`secrets.rotation-failed`, `honey-token.triggered`, change/access requests…)
 *    that change nothing to refetch.
 * 2. The integration guide's value-carrying events `secret.created|updated|rotated|deleted`
 *    with `payload.secretKey` / `payload.secretValue`.
 *
 * Malformed bodies throw `ReloaderError('RLD_ERR_WEBHOOK', …, { details: { status: 400, reason,
 * field } })`. Messages name the field, never its value: a body may carry a secret value, and
 * even JSON.parse's own message quotes the input, so it is never passed on.
 */
import { ReloaderError } from '../errors.js';
import { normalizeSecretPath } from './match.js';

export type ValueAction = 'created' | 'updated' | 'rotated' | 'deleted';

export type ChangeEvent =
  | {
      kind: 'modified';
      projectId: string;
      environment: string;
      secretPath: string;
      timestampMs?: number;
    }
  | {
      kind: 'value';
      action: ValueAction;
      key: string;
      /** Always set, except for `deleted`. Never log it. */
      value?: string;
      projectId?: string;
      environment?: string;
      secretPath?: string;
      rotation?: boolean;
      /** The body's numeric `timestamp`, when it has one (it binds the signature to a time). */
      timestampMs?: number;
    }
  | { kind: 'test'; projectId?: string; environment?: string }
  | { kind: 'ignored'; event: string; reason: string };

/** Machine-readable cause of a 400, in `details.reason`. */
export type MalformedReason =
  | 'empty-body'
  | 'content-type'
  | 'invalid-utf8'
  | 'invalid-json'
  | 'not-object'
  | 'missing-field'
  | 'invalid-field';

function malformed(reason: MalformedReason, message: string, field?: string): ReloaderError {
  const details: Record<string, unknown> = { status: 400, reason };
  if (field !== undefined) details['field'] = field;
  return new ReloaderError('RLD_ERR_WEBHOOK', `webhook body: ${message}`, { details });
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;

/**
 * Decodes and parses a raw webhook body. Accepts a missing Content-Type, `application/json` and
 * `application/*+json` (charset, if given, must be UTF-8); the body must be strict UTF-8
 * (`TextDecoder` with `fatal: true`; a leading BOM is dropped), valid JSON and a JSON object.
 * Throws RLD_ERR_WEBHOOK (status 400) otherwise; the message never quotes the body.
 */
export function parseBody(raw: Buffer, contentType?: string): unknown {
  if (contentType !== undefined && contentType.trim() !== '') {
    const [media = '', ...params] = contentType.split(';').map((part) => part.trim());
    const charset = params
      .map((p) => /^charset\s*=\s*"?([^"]*)"?$/i.exec(p)?.[1])
      .find((c) => c !== undefined);
    if (!JSON_TYPE.test(media)) {
      throw malformed('content-type', 'Content-Type must be application/json');
    }
    if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
      throw malformed('content-type', 'Content-Type charset must be UTF-8');
    }
  }
  if (raw.length === 0) throw malformed('empty-body', 'the body is empty');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw malformed('invalid-utf8', 'the body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const at = err instanceof Error ? /position (\d+)/.exec(err.message)?.[1] : undefined;
    throw malformed(
      'invalid-json',
      `the body is not valid JSON${at ? ` (at character ${at})` : ''}`,
    );
  }
  if (!isObject(value)) throw malformed('not-object', 'the body must be a JSON object');
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

/** A required non-empty string field; throws naming `field`. */
function requireString(obj: Record<string, unknown>, name: string, field: string): string {
  const value = obj[name];
  if (value === undefined || value === null) {
    throw malformed('missing-field', `${field} is missing`, field);
  }
  if (!nonEmptyString(value)) {
    throw malformed('invalid-field', `${field} must be a non-empty string`, field);
  }
  return value;
}

/** An optional non-empty string field: absent/null → undefined; present but invalid → throws. */
function optionalString(
  obj: Record<string, unknown>,
  name: string,
  field: string,
): string | undefined {
  const value = obj[name];
  if (value === undefined || value === null) return undefined;
  if (!nonEmptyString(value)) {
    throw malformed('invalid-field', `${field} must be a non-empty string`, field);
  }
  return value;
}

/** A folder path: must start with `/`; returned normalised (no trailing `/` except the root). */
function checkPath(value: string, field: string): string {
  if (!value.startsWith('/')) throw malformed('invalid-field', `${field} must start with /`, field);
  return normalizeSecretPath(value);
}

/** Infisical events that carry no change to refetch, with the reason logged for each. */
const KNOWN_IGNORED: Readonly<Record<string, string>> = {
  'secrets.rotation-failed': 'a rotation failed in Infisical; no secret changed',
  'honey-token.triggered': 'honey token alert; no secret changed',
  'secrets.change-request.modified':
    'change request activity; a merge also sends secrets.modified for the folder',
  'secrets.access-request.modified': 'access request activity; no secret changed',
  'secrets.reminder-expired': 'secret reminder; no secret changed',
};

const VALUE_EVENTS: Readonly<Record<string, ValueAction>> = {
  'secret.created': 'created',
  'secret.updated': 'updated',
  'secret.rotated': 'rotated',
  'secret.deleted': 'deleted',
};

/** Longest event name echoed back in an `ignored` result (it comes from the sender). */
const MAX_EVENT_NAME = 100;

/**
 * Classifies a JSON-parsed webhook body. `secrets.modified` (and `secret.modified`, the spelling
 * of Infisical's docs page) needs `project.environment` and `project.projectId` (or the older
 * `project.workspaceId`), and a `project.secretPath` starting with `/`; a numeric `timestamp` is
 * kept. Value events need `payload.secretKey` and, except for `deleted`, a string
 * `payload.secretValue` (empty allowed); `payload.projectId|environment|secretPath` are optional
 * and, when present, must be valid. `test` never fails on its optional fields. Any other event
 * string is `ignored` with a reason. Throws RLD_ERR_WEBHOOK (status 400) for malformed bodies.
 */
export function parseEvent(body: unknown): ChangeEvent {
  if (!isObject(body)) throw malformed('not-object', 'the body must be a JSON object');
  const event = requireString(body, 'event', 'event');

  if (event === 'secrets.modified' || event === 'secret.modified') {
    const project = body['project'];
    if (project === undefined || project === null) {
      throw malformed('missing-field', 'project is missing', 'project');
    }
    if (!isObject(project))
      throw malformed('invalid-field', 'project must be an object', 'project');
    const projectId =
      optionalString(project, 'projectId', 'project.projectId') ??
      optionalString(project, 'workspaceId', 'project.workspaceId');
    if (projectId === undefined) {
      throw malformed('missing-field', 'project.projectId is missing', 'project.projectId');
    }
    const environment = requireString(project, 'environment', 'project.environment');
    const secretPath = checkPath(
      requireString(project, 'secretPath', 'project.secretPath'),
      'project.secretPath',
    );
    const ts = body['timestamp'];
    return {
      kind: 'modified',
      projectId,
      environment,
      secretPath,
      ...(typeof ts === 'number' && Number.isFinite(ts) ? { timestampMs: ts } : {}),
    };
  }

  const action = VALUE_EVENTS[event];
  if (action !== undefined) {
    const payload = body['payload'];
    if (payload === undefined || payload === null) {
      throw malformed('missing-field', 'payload is missing', 'payload');
    }
    if (!isObject(payload))
      throw malformed('invalid-field', 'payload must be an object', 'payload');
    const key = requireString(payload, 'secretKey', 'payload.secretKey');
    const raw = payload['secretValue'];
    let value: string | undefined;
    if (action !== 'deleted') {
      if (raw === undefined || raw === null) {
        throw malformed('missing-field', 'payload.secretValue is missing', 'payload.secretValue');
      }
      if (typeof raw !== 'string') {
        throw malformed(
          'invalid-field',
          'payload.secretValue must be a string',
          'payload.secretValue',
        );
      }
      value = raw;
    }
    const projectId = optionalString(payload, 'projectId', 'payload.projectId');
    const environment = optionalString(payload, 'environment', 'payload.environment');
    const rawPath = optionalString(payload, 'secretPath', 'payload.secretPath');
    const secretPath = rawPath === undefined ? undefined : checkPath(rawPath, 'payload.secretPath');
    const rotation = payload['rotation'];
    const ts = body['timestamp'];
    return {
      kind: 'value',
      action,
      key,
      ...(value !== undefined ? { value } : {}),
      ...(projectId !== undefined ? { projectId } : {}),
      ...(environment !== undefined ? { environment } : {}),
      ...(secretPath !== undefined ? { secretPath } : {}),
      ...(typeof rotation === 'boolean' ? { rotation } : {}),
      ...(typeof ts === 'number' && Number.isFinite(ts) ? { timestampMs: ts } : {}),
    };
  }

  if (event === 'test') {
    const project = isObject(body['project']) ? body['project'] : {};
    const projectId = [project['projectId'], project['workspaceId']].find(nonEmptyString);
    const environment = nonEmptyString(project['environment']) ? project['environment'] : undefined;
    return {
      kind: 'test',
      ...(projectId !== undefined ? { projectId } : {}),
      ...(environment !== undefined ? { environment } : {}),
    };
  }

  const name = event.length > MAX_EVENT_NAME ? `${event.slice(0, MAX_EVENT_NAME)}…` : event;
  return { kind: 'ignored', event: name, reason: KNOWN_IGNORED[event] ?? 'unknown event type' };
}
