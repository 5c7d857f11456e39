/**
 * Reads one Event Subscriptions frame (the `data` of an `event: secret-manager` server-sent
 * event) into the folders that changed. Pure; never throws.
 *
 * A frame names keys, never values: `data.payload` is one object or an array of
 * `{ secretId, secretKey, secretPath?, environment }` (an import mutation names only
 * `secretPath` and `environment`). Field names moved across Infisical versions (`event_type` →
 * `eventType` → `event`), so the reading is lenient: whatever is not there is left out, and the
 * caller refetches more rather than less.
 */

/** One folder change named by a frame; absent fields mean "any". */
export interface StreamChange {
  event?: string;
  environment?: string;
  secretPath?: string;
  key?: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * The changes a frame's `data` text names. A frame that is not JSON, or names nothing usable,
 * gives one change with no fields (refetch every source of the project).
 */
export function readStreamFrame(data: string): StreamChange[] {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return [{}];
  }
  if (!isObject(value)) return [{}];
  // The envelope ({ type, time, data: { event, payload } }) or the inner object itself.
  const inner = isObject(value['data']) ? value['data'] : value;
  const event = str(inner['event']) ?? str(inner['eventType']) ?? str(inner['event_type']);
  const raw = inner['payload'];
  const items = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  const changes: StreamChange[] = [];
  for (const item of items) {
    if (!isObject(item)) continue;
    const change: StreamChange = {};
    if (event !== undefined) change.event = event;
    const environment = str(item['environment']) ?? str(item['environmentSlug']);
    if (environment !== undefined) change.environment = environment;
    const secretPath = str(item['secretPath']);
    if (secretPath !== undefined && secretPath.startsWith('/')) change.secretPath = secretPath;
    const key = str(item['secretKey']);
    if (key !== undefined) change.key = key;
    changes.push(change);
  }
  return changes.length > 0 ? changes : [event === undefined ? {} : { event }];
}
