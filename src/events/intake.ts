/**
 * The one event intake: every change notice, whatever channel it came by, goes through here.
 *
 *   webhook / relay delivery: raw body + signature header → (1) verify → (2) parse → (3) replay
 *                             → (4) dispatch → one answer, one metric, one log line
 *   event-stream frame:       parsed change notices → (4) dispatch → one log line
 *
 * (1) The signature (HMAC of the raw body, freshness within `maxAge`) is checked against the
 *     secrets that verify now (current, and the previous one for `maxAge` after a rotation).
 *     A relayed delivery is verified exactly like a direct one: the relay header grants
 *     nothing. Unsigned deliveries pass only with `allowUnsigned`. → 401
 * (2) Parse the JSON body into a `ChangeEvent`. → 400
 * (3) A verified delivery seen before (same `t` and signature, within `maxAge`) is answered 200
 *     and does nothing.
 * (4) `test` and other Infisical events are answered 200 and logged; change notices go to the
 *     engine's `dispatch`, which only queues work, so the answer comes at once. A value event
 *     whose value is to be applied (`payloadValues: apply`) must carry a body `timestamp` equal
 *     to the signed `t` (the HMAC then binds the time, and a captured body cannot be replayed
 *     later under a fresh `t`); without it → 401.
 * A verified, new, direct delivery that changed something is marked for relay to the peers; a
 * relayed one never is (no relay loops).
 *
 * Secrecy: log lines carry names (kind, key, project, environment, path), the outcome and the
 * remote address; never the body, the value or the signature.
 */
import { hasCode } from '../errors.js';
import { toHttpError } from './http-errors.js';
import type { Logger } from '../logger.js';
import { parseBody, parseEvent, type ChangeEvent } from './parse.js';
import { ReplayCache, verifyWebhook, type VerifyFailure } from './signature.js';
import type { WebhookSecrets } from './webhook-secrets.js';

/** The header a replica adds when it relays a delivery to its peers. */
export const RELAY_HEADER = 'x-infisical-reloader-relay';

/** The channel a notice came by. */
export type Channel = 'webhook' | 'relay' | 'stream';

/** What the engine did with a change notice. */
export interface EventEffect {
  effect: 'queued' | 'ignored';
  reason?: string;
}

/** What became of one delivery, as counted in `/metrics`. */
export type EventType = 'modified' | 'value' | 'test' | 'ignored' | 'invalid';
export type EventOutcome =
  'accepted' | 'replay' | 'ignored' | 'rejected_400' | 'rejected_401' | 'rejected_413';

/** One webhook or relayed delivery, as the HTTP layer received it. */
export interface Delivery {
  body: Buffer;
  /** The `x-infisical-signature` header(s). */
  signature: string | readonly string[] | undefined;
  /** The `x-infisical-reloader-relay` header: set when a peer relayed it. */
  relayedBy?: string;
  remote?: string;
  /** When it arrived; default the intake's clock. */
  receivedAtMs?: number;
}

/** The answer to one delivery. */
export interface DeliveryAnswer {
  status: number;
  body: Record<string, unknown>;
  type: EventType;
  outcome: EventOutcome;
  /** Forward the delivery, unchanged, to the peers (set only for new, direct, verified ones). */
  relay?: { signature: string };
}

/** What the intake counts. */
export interface IntakeMetrics {
  webhookEvent(type: EventType, outcome: EventOutcome): void;
}

export interface IntakeOptions {
  secrets: WebhookSecrets;
  maxAgeMs: number;
  allowUnsigned: boolean;
  payloadValues: () => 'apply' | 'refetch';
  /** Queues the work a change notice asks for; must only queue. */
  dispatch: (event: ChangeEvent, meta: { receivedAtMs: number; channel: Channel }) => EventEffect;
  logger: Logger;
  metrics: IntakeMetrics;
  now?: () => number;
}

/** Result of a signature check; `verified` is absent when an unsigned delivery was allowed. */
export type AuthResult =
  | { ok: true; verified?: { timestampMs: number; signature: string } }
  | { ok: false; reason: VerifyFailure | 'no-secret' };

/** Names-only summary of an event for the log line (never `value`). */
function describe(event: ChangeEvent): Record<string, unknown> {
  switch (event.kind) {
    case 'modified':
      return {
        projectId: event.projectId,
        environment: event.environment,
        secretPath: event.secretPath,
      };
    case 'value':
      return {
        action: event.action,
        key: event.key,
        environment: event.environment,
        secretPath: event.secretPath,
        rotation: event.rotation,
      };
    case 'test':
      return { projectId: event.projectId, environment: event.environment };
    case 'ignored':
      return { event: event.event, reason: event.reason };
  }
}

export class EventIntake {
  private readonly replays: ReplayCache;
  private readonly resyncReplays: ReplayCache;
  private readonly now: () => number;

  constructor(private readonly opts: IntakeOptions) {
    this.replays = new ReplayCache({ maxAgeMs: opts.maxAgeMs });
    this.resyncReplays = new ReplayCache({ maxAgeMs: opts.maxAgeMs });
    this.now = opts.now ?? Date.now;
    if (opts.allowUnsigned) {
      opts.logger.warn(
        { route: 'webhook', signed: opts.secrets.configured },
        'webhook.allowUnsigned is on: unsigned deliveries are accepted (local experiments only)',
      );
    }
  }

  /**
   * Signature check shared by the webhook and `/resync`. With `allowUnsigned`, a delivery
   * without a header (or any delivery when no secret is known) passes unverified; one that does
   * carry a header while a secret is known is still verified — a wrong secret should show.
   */
  authenticate(body: Buffer, header: Delivery['signature'], nowMs: number): AuthResult {
    const secrets = this.opts.secrets.candidates(nowMs);
    const absent = header === undefined || (Array.isArray(header) && header.length === 0);
    if (this.opts.allowUnsigned && (absent || secrets.length === 0)) return { ok: true };
    if (secrets.length === 0) return { ok: false, reason: 'no-secret' };
    let failure: VerifyFailure = 'mismatch';
    for (const secret of secrets) {
      const r = verifyWebhook(body, header, secret, { nowMs, maxAgeMs: this.opts.maxAgeMs });
      if (r.ok)
        return { ok: true, verified: { timestampMs: r.timestampMs, signature: r.signature } };
      failure = r.reason;
      if (r.reason !== 'mismatch') break; // missing, malformed, stale: another secret cannot help
    }
    return { ok: false, reason: failure };
  }

  /** `/resync` from a non-loopback client: signed like a webhook; a replay does nothing. */
  authenticateResync(body: Buffer, header: Delivery['signature']): AuthResult | 'replay' {
    const nowMs = this.now();
    const auth = this.authenticate(body, header, nowMs);
    if (!auth.ok) return auth;
    const v = auth.verified;
    if (v !== undefined && this.resyncReplays.checkAndRemember(v.signature, v.timestampMs, nowMs))
      return 'replay';
    return auth;
  }

  /** Steps (1)–(4) for one webhook or relayed delivery. Never throws for bad input. */
  ingest(delivery: Delivery): DeliveryAnswer {
    const d = { ...delivery, receivedAtMs: delivery.receivedAtMs ?? this.now() };
    const channel: Channel = d.relayedBy === undefined ? 'webhook' : 'relay';
    const base = { remote: d.remote, ...(channel === 'relay' ? { relayedBy: d.relayedBy } : {}) };
    // (1)
    const auth = this.authenticate(d.body, d.signature, d.receivedAtMs);
    if (!auth.ok) {
      return this.answer(
        401,
        { error: 'invalid signature', reason: auth.reason },
        'invalid',
        'rejected_401',
        { ...base, reason: auth.reason },
      );
    }
    // (2)
    let event: ChangeEvent;
    try {
      event = parseEvent(parseBody(d.body));
    } catch (err) {
      if (!hasCode(err, 'RLD_ERR_WEBHOOK')) throw err;
      const { status, body } = toHttpError(err);
      return this.answer(status, body, 'invalid', 'rejected_400', {
        ...base,
        reason: body.reason,
        field: body.field,
      });
    }
    const type: EventType = event.kind;
    const summary = { kind: event.kind, ...describe(event), ...base };
    // (3)
    const v = auth.verified;
    if (
      v !== undefined &&
      this.replays.checkAndRemember(v.signature, v.timestampMs, d.receivedAtMs)
    ) {
      return this.answer(200, { status: 'ignored', reason: 'replay' }, type, 'replay', summary);
    }
    // (4)
    if (event.kind === 'test') {
      return this.answer(200, { status: 'ok', event: 'test' }, type, 'accepted', summary);
    }
    if (event.kind === 'ignored') {
      const body = { status: 'ignored', reason: event.reason };
      return this.answer(200, body, type, 'ignored', summary);
    }
    if (
      event.kind === 'value' &&
      this.opts.payloadValues() === 'apply' &&
      v !== undefined &&
      event.timestampMs === undefined
    ) {
      const reason = 'unsigned-timestamp';
      return this.answer(
        401,
        {
          error: 'invalid signature',
          reason,
          hint: 'payloadValues: apply needs a body "timestamp" equal to the signature t',
        },
        'invalid',
        'rejected_401',
        { ...summary, reason },
      );
    }
    const result = this.opts.dispatch(event, { receivedAtMs: d.receivedAtMs, channel });
    if (result.effect === 'ignored') {
      const reason = result.reason ?? 'no source or target matches';
      return this.answer(200, { status: 'ignored', reason }, type, 'ignored', {
        ...summary,
        effect: reason,
      });
    }
    const answer = this.answer(200, { status: 'accepted' }, type, 'accepted', summary);
    if (channel === 'webhook' && v !== undefined) answer.relay = { signature: headerOf(d) };
    return answer;
  }

  /** Step (4) for change notices that came by the event stream (already authenticated). */
  ingestStream(events: readonly ChangeEvent[], meta: Record<string, unknown>): EventEffect[] {
    const receivedAtMs = this.now();
    return events.map((event) => {
      const effect = this.opts.dispatch(event, { receivedAtMs, channel: 'stream' });
      this.opts.logger.info(
        { channel: 'stream', kind: event.kind, ...describe(event), ...meta, effect: effect.effect },
        'event stream',
      );
      return effect;
    });
  }

  /** Counts and logs a delivery the HTTP layer refused before it reached `ingest` (400, 413). */
  rejected(status: 400 | 413, reason: unknown, remote: string | undefined): void {
    const outcome: EventOutcome = status === 413 ? 'rejected_413' : 'rejected_400';
    this.opts.metrics.webhookEvent('invalid', outcome);
    this.opts.logger.warn(
      { route: 'webhook', status, type: 'invalid', outcome, reason, remote },
      'webhook',
    );
  }

  private answer(
    status: number,
    body: Record<string, unknown>,
    type: EventType,
    outcome: EventOutcome,
    fields: Record<string, unknown>,
  ): DeliveryAnswer {
    this.opts.metrics.webhookEvent(type, outcome);
    const level = status >= 400 ? 'warn' : 'info';
    this.opts.logger[level]({ route: 'webhook', status, type, outcome, ...fields }, 'webhook');
    return { status, body, type, outcome };
  }
}

/** The one signature header of a verified delivery (verification refused several). */
function headerOf(d: Delivery): string {
  const h = d.signature;
  return (Array.isArray(h) ? h[0] : h) as string;
}
