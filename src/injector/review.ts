/**
 * AdmissionReview (`admission.k8s.io/v1`) in, AdmissionReview out. Pure: the body's bytes and
 * the injector's config → what to answer. The answer echoes the request's `uid` (the API
 * server drops an answer without it) and carries the patch base64-encoded with
 * `patchType: JSONPatch`; a review that does not parse, or lacks `request.uid`, is a 400 with
 * the reason, never a 5xx.
 */
import type { InjectorConfig } from './config.js';
import { mutate, type MutationResult } from './mutate.js';

export const API_VERSION = 'admission.k8s.io/v1';

export type ReviewAnswer =
  | { status: 200; body: Record<string, unknown>; result: MutationResult }
  | { status: 400; body: { error: string; reason: string } };

const bad = (reason: string): ReviewAnswer => ({
  status: 400,
  body: { error: 'malformed AdmissionReview', reason },
});

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The answer to one review body. CREATE and UPDATE of an object are mutated; any other
 * operation (DELETE, CONNECT) is allowed unchanged.
 */
export function answerReview(
  body: Buffer | string,
  config: Readonly<InjectorConfig>,
): ReviewAnswer {
  let review: unknown;
  try {
    review = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    return bad('the body is not JSON');
  }
  if (!isObj(review)) return bad('the body is not a JSON object');
  if (review['apiVersion'] !== API_VERSION || review['kind'] !== 'AdmissionReview') {
    return bad(`expected apiVersion ${API_VERSION} and kind AdmissionReview`);
  }
  const request = review['request'];
  if (!isObj(request)) return bad('request is missing');
  const uid = request['uid'];
  if (typeof uid !== 'string' || uid === '') return bad('request.uid is missing');
  const operation = request['operation'];
  const namespace = typeof request['namespace'] === 'string' ? request['namespace'] : undefined;
  const result: MutationResult =
    (operation === 'CREATE' || operation === 'UPDATE') && request['object'] !== undefined
      ? mutate({ object: request['object'], namespace, config })
      : { allowed: true, patch: [], reason: 'not-asked' };
  const response: Record<string, unknown> = { uid, allowed: result.allowed };
  if (!result.allowed) {
    response['status'] = { code: 400, reason: 'BadRequest', message: result.message };
  } else if (result.patch.length > 0) {
    response['patchType'] = 'JSONPatch';
    response['patch'] = Buffer.from(JSON.stringify(result.patch), 'utf8').toString('base64');
  }
  return {
    status: 200,
    body: { apiVersion: API_VERSION, kind: 'AdmissionReview', response },
    result,
  };
}
