/**
 * Event Subscriptions on the local server: `POST /api/v1/events/subscribe/project-events`,
 * answered the way Infisical's `event-router.ts` and `event-sse-stream.ts` do
 * (docs/infisical-api.md):
 *
 *   (1) auth: an identity token (401 "Token missing");
 *   (2) body `{ projectId, register: [{ event, conditions?: { environmentSlug, secretPath } }] }`
 *       with 1–10 entries; `environmentSlug` required inside `conditions`, `secretPath`
 *       default `/` (a glob) → 422 with zod's issues;
 *   (3) the licence feature `eventSubscriptions` → 400 "plan restriction" when it is off;
 *   (4) project membership → 403; the `secret-events` permission for each registration →
 *       403 `PermissionDenied` with `details { action, environmentSlug, secretPath }`;
 *   (5) 5 or more open streams for the identity and project → 429 `RateLimitExceeded`;
 *   (6) 200 `text/event-stream` (`Cache-Control: no-cache`, `Connection: keep-alive`,
 *       `X-Accel-Buffering: no`); a `secret-manager` frame for each published change that a
 *       registration matches (event name, environment, path glob), keys only, never values;
 *       `event: ping` with no data every `pingIntervalMs` (15 s);
 *   (7) every `recheckIntervalMs` (60 s) the token (which counts one use) and the permissions
 *       are checked again; a failure sends `event: error` and closes the stream.
 *
 * Switches for tests and `dev`: `licensed` (off → the plan-restriction answer), `deny(identity)`
 * (the permission check fails), `mute()` (no pings and no frames, to exercise a client's
 * heartbeat deadline), `dropAll()` (the server closes every stream).
 */
import type { ServerResponse } from 'node:http';
import picomatch from 'picomatch';
import type { FastifyInstance } from 'fastify';
import {
  badRequest,
  forbidden,
  InfisicalApiError,
  validationFailure,
  type ZodIssue,
} from './api-error.js';
import { requireIdentity, requireProject, type ServerState } from './state.js';
import type { AccessTokenRecord } from './tokens.js';

/** The events a stream can register. */
export const STREAM_EVENTS = [
  'secret:create',
  'secret:update',
  'secret:delete',
  'secret:import-mutation',
] as const;
export type StreamEvent = (typeof STREAM_EVENTS)[number];

/** The permission action Infisical checks for each event. */
const ACTIONS: Record<StreamEvent, string> = {
  'secret:create': 'subscribe-on-created',
  'secret:update': 'subscribe-on-updated',
  'secret:delete': 'subscribe-on-deleted',
  'secret:import-mutation': 'subscribe-on-import-mutations',
};

const MAX_STREAMS = 5;
const PLAN_RESTRICTION =
  'Failed to use event subscriptions due to plan restriction. Upgrade plan to access event subscriptions.';

/** One change to publish to the streams. */
export interface PublishedChange {
  projectId: string;
  environment: string;
  secretPath: string;
  event: StreamEvent;
  /** Keys of the secrets that changed (none for an import mutation). */
  secrets: Array<{ secretId: string; secretKey: string }>;
}

interface Registration {
  event: StreamEvent;
  environmentSlug?: string;
  secretPath?: string;
}

interface Stream {
  projectId: string;
  identityId: string;
  token: string;
  registrations: Registration[];
  res: ServerResponse;
  timers: NodeJS.Timeout[];
}

/** The test and `dev` controls of the event streams. */
export interface EventStreams {
  /** The licence feature `eventSubscriptions` (default on). */
  licensed: boolean;
  /** Make the permission check fail (at open and at the next re-check) for `identityId`. */
  deny(identityId: string): void;
  allow(identityId: string): void;
  /** Stop writing pings and frames to the open streams (until `unmute`). */
  mute(): void;
  unmute(): void;
  /** Close every open stream from the server side; returns how many were closed. */
  dropAll(): number;
  /** Streams open now. */
  readonly open: number;
  /** Frames written so far (change frames only). */
  readonly framesSent: number;
}

export interface EventStreamOptions {
  pingIntervalMs?: number;
  recheckIntervalMs?: number;
  licensed?: boolean;
}

/** The streams and their publisher; `register` adds the route. */
export class EventStreamHub implements EventStreams {
  licensed: boolean;
  private readonly streams = new Set<Stream>();
  private readonly denied = new Set<string>();
  private muted = false;
  private frames = 0;
  private readonly pingMs: number;
  private readonly recheckMs: number;

  constructor(opts: EventStreamOptions = {}) {
    this.licensed = opts.licensed ?? true;
    this.pingMs = opts.pingIntervalMs ?? 15_000;
    this.recheckMs = opts.recheckIntervalMs ?? 60_000;
  }

  deny(identityId: string): void {
    this.denied.add(identityId);
  }

  allow(identityId: string): void {
    this.denied.delete(identityId);
  }

  mute(): void {
    this.muted = true;
  }

  unmute(): void {
    this.muted = false;
  }

  get open(): number {
    return this.streams.size;
  }

  get framesSent(): number {
    return this.frames;
  }

  dropAll(): number {
    const n = this.streams.size;
    for (const s of [...this.streams]) this.close(s);
    return n;
  }

  /** Ends every stream (server shutdown). */
  closeAll(): void {
    this.dropAll();
  }

  /** (6) Writes a `secret-manager` frame to every stream a registration of which matches. */
  publish(change: PublishedChange): void {
    const time = new Date().toISOString();
    const payload =
      change.event === 'secret:import-mutation'
        ? { secretPath: change.secretPath, environment: change.environment }
        : change.secrets.map((s) => ({
            secretId: s.secretId,
            secretKey: s.secretKey,
            secretPath: change.secretPath,
            environment: change.environment,
          }));
    const data = JSON.stringify({
      datacontenttype: 'application/json',
      type: 'secret-manager',
      source: 'infisical',
      time,
      data: { specversion: 1, event: change.event, payload },
    });
    for (const s of this.streams) {
      if (s.projectId !== change.projectId || this.muted) continue;
      const match = s.registrations.some(
        (r) =>
          r.event === change.event &&
          (r.environmentSlug === undefined || r.environmentSlug === change.environment) &&
          (r.secretPath === undefined ||
            picomatch.isMatch(change.secretPath, r.secretPath, { strictSlashes: false })),
      );
      if (!match) continue;
      this.frames++;
      s.res.write(`id: ${time}\nevent: secret-manager\ndata: ${data}\n\n`);
    }
  }

  /** Registers the route on the local server. */
  register(app: FastifyInstance, state: ServerState): void {
    app.post('/api/v1/events/subscribe/project-events', async (req, reply) => {
      const record = requireIdentity(state, req); // (1)
      const { projectId, registrations } = readBody(req.body); // (2)
      if (!this.licensed) throw badRequest(PLAN_RESTRICTION); // (3)
      requireProject(state, record, projectId); // (4)
      this.checkPermissions(record, registrations);
      const open = [...this.streams].filter(
        (s) => s.projectId === projectId && s.identityId === record.identityId,
      ).length;
      if (open >= MAX_STREAMS) {
        // (5)
        throw new InfisicalApiError(
          429,
          'RateLimitExceeded',
          'Too many open event streams for this identity and project',
        );
      }
      // (6)
      const token = String(req.headers.authorization ?? '').slice(7);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.flushHeaders();
      const stream: Stream = {
        projectId,
        identityId: record.identityId,
        token,
        registrations,
        res,
        timers: [],
      };
      this.streams.add(stream);
      stream.timers.push(
        setInterval(() => {
          if (!this.muted) res.write('event: ping\n\n');
        }, this.pingMs),
        setInterval(() => this.recheck(stream, state), this.recheckMs),
      );
      // The response's `close` is the connection's end (the request's own `close` fires as
      // soon as its body has been read).
      res.on('close', () => this.close(stream));
    });
  }

  /** (7) */
  private recheck(stream: Stream, state: ServerState): void {
    try {
      const record = state.tokens.authenticate(state.tokens.verify(stream.token));
      requireProject(state, record, stream.projectId);
      this.checkPermissions(record, stream.registrations);
    } catch (err) {
      const message = err instanceof Error ? err.message : 'check failed';
      stream.res.write(`event: error\ndata: ${JSON.stringify({ message })}\n\n`);
      this.close(stream);
    }
  }

  private checkPermissions(record: AccessTokenRecord, registrations: Registration[]): void {
    if (!this.denied.has(record.identityId)) return;
    const first = registrations[0] as Registration;
    throw forbidden('You are not allowed to subscribe on secret-events', 'PermissionDenied', {
      action: ACTIONS[first.event],
      environmentSlug: first.environmentSlug,
      secretPath: first.secretPath ?? '/',
    });
  }

  private close(stream: Stream): void {
    if (!this.streams.delete(stream)) return;
    for (const t of stream.timers) clearInterval(t);
    if (!stream.res.writableEnded) stream.res.end();
  }
}

/** (2) The body, validated like Infisical's zod schema. */
function readBody(body: unknown): { projectId: string; registrations: Registration[] } {
  const issues: ZodIssue[] = [];
  const invalid = (path: (string | number)[], expected: string, value: unknown): void => {
    const received =
      value === undefined
        ? 'undefined'
        : Array.isArray(value)
          ? 'array'
          : value === null
            ? 'null'
            : typeof value;
    issues.push({
      code: 'invalid_type',
      expected,
      received,
      path,
      message: received === 'undefined' ? 'Required' : `Expected ${expected}, received ${received}`,
    });
  };
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    invalid([], 'object', body);
    throw validationFailure(issues);
  }
  const b = body as Record<string, unknown>;
  const projectId = typeof b['projectId'] === 'string' ? b['projectId'].trim() : '';
  if (typeof b['projectId'] !== 'string') invalid(['projectId'], 'string', b['projectId']);
  const registrations: Registration[] = [];
  const register = b['register'];
  if (!Array.isArray(register)) invalid(['register'], 'array', register);
  else {
    if (register.length < 1 || register.length > 10) {
      issues.push({
        code: register.length < 1 ? 'too_small' : 'too_big',
        ...(register.length < 1 ? { minimum: 1 } : { maximum: 10 }),
        type: 'array',
        inclusive: true,
        exact: false,
        message:
          register.length < 1
            ? 'Array must contain at least 1 element(s)'
            : 'Array must contain at most 10 element(s)',
        path: ['register'],
      });
    }
    register.forEach((item: unknown, i) => {
      if (typeof item !== 'object' || item === null) {
        invalid(['register', i], 'object', item);
        return;
      }
      const r = item as Record<string, unknown>;
      const event = r['event'];
      if (typeof event !== 'string' || !(STREAM_EVENTS as readonly string[]).includes(event)) {
        issues.push({
          received: event,
          code: 'invalid_enum_value',
          options: [...STREAM_EVENTS],
          path: ['register', i, 'event'],
          message: `Invalid enum value. Expected ${STREAM_EVENTS.map((e) => `'${e}'`).join(' | ')}, received '${String(event)}'`,
        });
        return;
      }
      const reg: Registration = { event: event as StreamEvent };
      const conditions = r['conditions'];
      if (conditions !== undefined) {
        if (typeof conditions !== 'object' || conditions === null) {
          invalid(['register', i, 'conditions'], 'object', conditions);
          return;
        }
        const c = conditions as Record<string, unknown>;
        if (typeof c['environmentSlug'] !== 'string') {
          invalid(['register', i, 'conditions', 'environmentSlug'], 'string', c['environmentSlug']);
          return;
        }
        reg.environmentSlug = c['environmentSlug'];
        reg.secretPath = typeof c['secretPath'] === 'string' ? c['secretPath'] : '/';
      }
      registrations.push(reg);
    });
  }
  if (issues.length > 0) throw validationFailure(issues);
  return { projectId, registrations };
}
