/**
 * The Event Subscriptions channel: one server-sent event stream from Infisical per project of
 * the sources, so every replica hears every change by itself (Infisical Enterprise).
 *
 *   (1) open `POST /v1/events/subscribe/project-events` with the current access token (a
 *       rejected token means one fresh login and one retry), registering `secret:create`,
 *       `secret:update`, `secret:delete` and `secret:import-mutation` for each source's
 *       environment and path (`<path>/**` for a recursive source; more than 10 registrations
 *       collapse to one per event without conditions — the refetch still matches the sources);
 *   (2) once it answers 200, refetch the project's sources: Infisical keeps no history, so
 *       whatever changed while the stream was down is fetched now;
 *   (3) each frame names folders and keys, never values: it goes to the event intake, which
 *       refetches the matching sources, exactly like a `secrets.modified` webhook;
 *   (4) no byte (a ping included; Infisical pings every 15 s) for `heartbeatTimeout`, the
 *       stream ending, or an `event: error` frame (Infisical re-checks the token and the
 *       permissions every 60 s): reconnect after a jittered backoff (1 s doubling to 60 s by
 *       default; it starts over once a stream has lived for a heartbeat period);
 *   (5) 400 (plan restriction), 403 (permission) and 429 (5 streams per identity and project):
 *       one clear log line with Infisical's message, the channel shown as unavailable in
 *       `/status` and `/metrics`, retried with backoff up to 1 h; webhooks keep working and
 *       readiness is not affected;
 *   (6) a renewed or new access token opens a new stream first and closes the old one when the
 *       new one answers, so a renewal leaves no gap.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { EventSubscriptionSpec, SourceSpec } from '../config/types.js';
import { asReloaderError, InfisicalHttpError } from '../errors.js';
import type { ChangeEvent } from '../events/parse.js';
import { readStreamFrame, type StreamChange } from '../events/stream-frame.js';
import type { InfisicalSession } from '../infisical/session.js';
import type { TransportResponse } from '../infisical/transport.js';
import type { Logger } from '../logger.js';
import { Backoff } from '../util/backoff.js';
import { realTimers, type Timers } from '../util/timers.js';

/** Where the channel stands, for `/status` and `/metrics`. */
export type StreamState = 'connecting' | 'connected' | 'reconnecting' | 'unavailable' | 'stopped';

const EVENTS = ['secret:create', 'secret:update', 'secret:delete', 'secret:import-mutation'];
const MAX_REGISTRATIONS = 10;
const UNAVAILABLE_MAX_MS = 3_600_000;

export interface SubscriptionMetrics {
  streamState(projectId: string, state: StreamState): void;
  streamFrame(projectId: string, outcome: 'change' | 'ping' | 'error'): void;
  streamConnect(projectId: string, outcome: 'ok' | 'failed' | 'unavailable'): void;
}

export interface EventSubscriptionOptions {
  projectId: string;
  /** The configured sources of this project. */
  sources: readonly SourceSpec[];
  session: Pick<InfisicalSession, 'client' | 'tokens'>;
  spec: EventSubscriptionSpec;
  /** Hands the change notices of a frame to the event intake. */
  ingest: (events: ChangeEvent[], meta: Record<string, unknown>) => void;
  /** Called after every (re)connect: refetch this project's sources. */
  onConnected: () => void;
  logger: Logger;
  metrics: SubscriptionMetrics;
  timers?: Timers;
}

/** The registrations for a project's sources (rule 1). */
export function registrationsFor(sources: readonly SourceSpec[]): Array<Record<string, unknown>> {
  const conditions = new Map<string, { environmentSlug: string; secretPath: string }>();
  for (const s of sources) {
    const secretPath = s.recursive ? (s.path === '/' ? '/**' : `${s.path}/**`) : s.path;
    conditions.set(`${s.environment}\u0000${secretPath}`, {
      environmentSlug: s.environment,
      secretPath,
    });
  }
  const all = [...conditions.values()].flatMap((c) =>
    EVENTS.map((event) => ({ event, conditions: c })),
  );
  if (all.length <= MAX_REGISTRATIONS) return all;
  const envs = [...new Set(sources.map((s) => s.environment))];
  const perEnv = envs.flatMap((environmentSlug) =>
    EVENTS.map((event) => ({ event, conditions: { environmentSlug, secretPath: '/**' } })),
  );
  if (perEnv.length <= MAX_REGISTRATIONS) return perEnv;
  return EVENTS.map((event) => ({ event }));
}

interface Connection {
  abort: AbortController;
  openedAtMs: number;
}

export class EventSubscription {
  private state: StreamState = 'stopped';
  private readonly timers: Timers;
  private readonly reconnect: Backoff;
  private readonly unavailable: Backoff;
  private current: Connection | undefined;
  private retryTimer: unknown;
  private heartbeatTimer: unknown;
  private stopped = true;
  private lastFrameAt: string | undefined;
  private connectedAt: string | undefined;
  private lastError: { code: string; message: string; status?: number } | undefined;
  private reconnects = 0;
  private switching = false;

  constructor(private readonly opts: EventSubscriptionOptions) {
    this.timers = opts.timers ?? realTimers;
    this.reconnect = new Backoff({
      baseMs: opts.spec.reconnectMinMs,
      maxMs: opts.spec.reconnectMaxMs,
    });
    this.unavailable = new Backoff({
      baseMs: opts.spec.reconnectMinMs,
      maxMs: Math.max(opts.spec.reconnectMaxMs, UNAVAILABLE_MAX_MS),
    });
  }

  /** Opens the stream (and keeps it open until `stop`). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.setState('connecting');
    void this.connect();
  }

  /** Closes the stream and cancels reconnects. */
  stop(): void {
    this.stopped = true;
    this.clearTimers();
    this.current?.abort.abort();
    this.current = undefined;
    this.setState('stopped');
  }

  /** A new access token: open a new stream with it, then close the old one (rule 6). */
  tokenChanged(): void {
    if (this.stopped || this.state !== 'connected' || this.switching) return;
    this.switching = true;
    void this.connect(true).finally(() => {
      this.switching = false;
    });
  }

  /** For `/status`: names, times and outcomes only. */
  status(): Record<string, unknown> {
    return {
      projectId: this.opts.projectId,
      state: this.state,
      connectedAt: this.connectedAt,
      lastFrameAt: this.lastFrameAt,
      reconnects: this.reconnects,
      lastError: this.lastError,
    };
  }

  get connectionState(): StreamState {
    return this.state;
  }

  private setState(state: StreamState): void {
    this.state = state;
    this.opts.metrics.streamState(this.opts.projectId, state);
  }

  private clearTimers(): void {
    if (this.retryTimer !== undefined) this.timers.clearTimeout(this.retryTimer);
    if (this.heartbeatTimer !== undefined) this.timers.clearTimeout(this.heartbeatTimer);
    this.retryTimer = undefined;
    this.heartbeatTimer = undefined;
  }

  /** (1)–(2); `replacing`: make-before-break for a new token (rule 6). */
  private async connect(replacing = false): Promise<void> {
    if (this.stopped) return;
    const { client, tokens } = this.opts.session;
    const abort = new AbortController();
    const body = { projectId: this.opts.projectId, register: registrationsFor(this.opts.sources) };
    let res: TransportResponse;
    try {
      res = await tokens.withToken((token) => client.openEventStream(body, token, abort.signal));
    } catch (err) {
      abort.abort();
      if (this.stopped) return;
      if (replacing) {
        // The old stream goes on; the next renewal, or its own end, tries again.
        this.opts.logger.warn(
          { err: asReloaderError(err) },
          'event stream: could not switch to the new token',
        );
        return;
      }
      this.failed(err);
      return;
    }
    if (this.stopped) {
      abort.abort();
      return;
    }
    const previous = this.current;
    const conn: Connection = { abort, openedAtMs: this.timers.now() };
    this.current = conn;
    previous?.abort.abort();
    this.lastError = undefined;
    this.unavailable.reset();
    this.connectedAt = new Date(this.timers.now()).toISOString();
    this.setState('connected');
    this.opts.metrics.streamConnect(this.opts.projectId, 'ok');
    this.opts.logger.info(
      { projectId: this.opts.projectId, replacing, registrations: body.register.length },
      replacing ? 'event stream reopened with the new access token' : 'event stream connected',
    );
    // (2) nothing is replayed: what changed while disconnected is fetched now (a switch to a
    // new token overlaps the old stream, so it misses nothing)
    if (!replacing) this.opts.onConnected();
    this.armHeartbeat(conn);
    void this.read(conn, res);
  }

  /** (3)–(4): read frames until the stream ends, then reconnect unless replaced or stopped. */
  private async read(conn: Connection, res: TransportResponse): Promise<void> {
    let ended = 'the stream ended';
    let errorFrame = false;
    const parser = createParser({
      onEvent: (msg: EventSourceMessage) => {
        if (this.current !== conn) return;
        if (msg.event === 'ping') {
          this.opts.metrics.streamFrame(this.opts.projectId, 'ping');
          return;
        }
        if (msg.event === 'error') {
          errorFrame = true;
          this.opts.metrics.streamFrame(this.opts.projectId, 'error');
          conn.abort.abort();
          return;
        }
        this.opts.metrics.streamFrame(this.opts.projectId, 'change');
        this.frame(readStreamFrame(msg.data), msg.id);
      },
    });
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body) {
        if (this.current !== conn) break;
        this.lastFrameAt = new Date(this.timers.now()).toISOString();
        this.armHeartbeat(conn);
        parser.feed(decoder.decode(chunk, { stream: true }));
      }
    } catch (err) {
      ended = conn.abort.signal.aborted ? 'closed' : `read failed: ${asReloaderError(err).message}`;
    }
    if (errorFrame) ended = 'Infisical sent event: error (its token or permission check failed)';
    if (this.current !== conn || this.stopped) return; // replaced, or stopping
    conn.abort.abort();
    this.current = undefined;
    if (this.heartbeatTimer !== undefined) this.timers.clearTimeout(this.heartbeatTimer);
    // A stream that lived through a heartbeat period was healthy: back to the first delay.
    if (this.timers.now() - conn.openedAtMs >= this.opts.spec.heartbeatTimeoutMs) {
      this.reconnect.reset();
    }
    this.scheduleReconnect(ended);
  }

  private frame(changes: StreamChange[], id: string | undefined): void {
    const events: ChangeEvent[] = [];
    for (const c of changes) {
      const sources = this.opts.sources.filter(
        (s) => c.environment === undefined || s.environment === c.environment,
      );
      if (c.secretPath !== undefined && c.environment !== undefined) {
        events.push({
          kind: 'modified',
          projectId: this.opts.projectId,
          environment: c.environment,
          secretPath: c.secretPath,
        });
      } else {
        for (const s of sources) {
          events.push({
            kind: 'modified',
            projectId: this.opts.projectId,
            environment: s.environment,
            secretPath: s.path,
          });
        }
      }
    }
    const keys = changes.map((c) => c.key).filter((k): k is string => k !== undefined);
    this.opts.ingest(events, {
      projectId: this.opts.projectId,
      frameId: id,
      event: changes[0]?.event,
      ...(keys.length > 0 && keys.length <= 20 ? { keys } : { keyCount: keys.length }),
    });
  }

  private armHeartbeat(conn: Connection): void {
    if (this.heartbeatTimer !== undefined) this.timers.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = this.timers.setTimeout(() => {
      this.heartbeatTimer = undefined;
      if (this.current !== conn || this.stopped) return;
      this.opts.logger.warn(
        { projectId: this.opts.projectId, timeoutMs: this.opts.spec.heartbeatTimeoutMs },
        'event stream: no frame within the heartbeat timeout; reconnecting',
      );
      conn.abort.abort();
    }, this.opts.spec.heartbeatTimeoutMs);
  }

  /** (5) or a plain failure: say why once, and retry later. */
  private failed(err: unknown): void {
    const error = asReloaderError(err, 'RLD_ERR_INFISICAL_NETWORK');
    const status = error instanceof InfisicalHttpError ? error.status : undefined;
    this.lastError = {
      code: error.code,
      message: error.message,
      ...(status !== undefined ? { status } : {}),
    };
    const refused = status === 400 || status === 403 || status === 429;
    if (refused && error.code !== 'RLD_ERR_TOKEN') {
      const wasUnavailable = this.state === 'unavailable';
      this.setState('unavailable');
      this.opts.metrics.streamConnect(this.opts.projectId, 'unavailable');
      const delay = this.unavailable.next();
      const level = wasUnavailable ? 'debug' : 'warn';
      this.opts.logger[level](
        { projectId: this.opts.projectId, err: error, retryInMs: delay },
        'event stream unavailable (webhooks keep working)',
      );
      this.retryLater(delay);
      return;
    }
    this.opts.metrics.streamConnect(this.opts.projectId, 'failed');
    this.scheduleReconnect(error.message);
  }

  private scheduleReconnect(why: string): void {
    this.setState('reconnecting');
    this.reconnects++;
    const delay = this.reconnect.next();
    this.opts.logger.warn(
      { projectId: this.opts.projectId, reason: why, retryInMs: delay },
      'event stream lost; reconnecting (a refetch follows)',
    );
    this.retryLater(delay);
  }

  private retryLater(delay: number): void {
    if (this.stopped) return;
    if (this.retryTimer !== undefined) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, delay);
  }
}
