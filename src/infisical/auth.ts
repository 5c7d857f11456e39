/**
 * The access-token lifecycle (docs/infisical-api.md): one login shared by every caller,
 * renewals at `renewAt` × TTL, a fresh login before the max TTL ends, and one re-login when
 * Infisical rejects the token mid-flight.
 *
 * Lifecycle of a grant (the only timer of the whole reloader):
 *
 * 1. log in (kubernetes: re-read the service-account token file; universal: re-read the client
 *    secret file) — lazily, on the first `token()`; concurrent callers share the one login;
 * 2. with TTL = 0 the token never expires: no timer at all;
 * 3. otherwise the token is usable until `effectiveExpiry = min(obtained + TTL, login + maxTTL)`
 *    (maxTTL counts from the ORIGINAL login and is never extended; 0 = no max), and the next
 *    step is due at `obtained + renewAt × (effectiveExpiry − obtained)`;
 * 4. at that point, if `now + TTL` (plus a margin of a tenth of the TTL, at most 1 s) would
 *    pass `login + maxTTL` the server would refuse a renew
 *    ("past its Max TTL"), so log in again; else renew, and ALWAYS keep the token the renew
 *    returned (new servers sign a new JWT);
 * 5. a renew refused with a non-retryable error (401 …) falls back to a fresh login;
 * 6. a step that fails on the network/5xx/429 (after the client's own retries) is retried after
 *    a jittered exponential backoff (1 s doubling, capped at 30 s) — or a login when the token has
 *    expired in the meantime; never a tight loop.
 *
 * Static `token` auth is never renewed; a `tokenFile` is re-read at every `token()` call so an
 * operator can replace the file without a restart (cheap: tokens are fetched per refetch, not
 * per request).
 */
import { readFileSync } from 'node:fs';
import { ReloaderError, hasCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Scrubber } from '../secrets/scrubber.js';
import { Backoff, type BackoffPolicy } from '../util/backoff.js';
import { backgroundTimers, MAX_TIMER_MS, type Timers } from '../util/timers.js';
import { codeSuffix } from '../util/os-error.js';
import type { AuthSpec } from '../config/types.js';
import type { InfisicalClient, TokenGrant } from './client.js';

/**
 * Keep clear of the max-TTL edge: the server counts it from its own record, written a little
 * after our login started, and sees the renew a little after we decide. Without a margin a
 * renew decided at exactly `maxEnd − TTL` can arrive past it and be refused. A tenth of the TTL,
 * at most 1 s (nothing, next to real TTLs of hours or days).
 */
function maxTtlMargin(ttlMs: number): number {
  return Math.min(1000, ttlMs / 10);
}

/** JWT `exp` granularity: tokens are signed with whole-second `iat`/`exp`. */
const EXP_GRANULARITY_MS = 1000;

/** What `onChange` receives after every successful login or renew. */
export interface TokenChange {
  /** Effective expiry (ms since epoch); undefined when the token never expires. */
  expiresAtMs: number | undefined;
  kind: 'login' | 'renew';
}

/** Construction options of {@link TokenManager}; `timers` exists for fake-clock tests. */
export interface TokenManagerOptions {
  client: Pick<InfisicalClient, 'loginKubernetes' | 'loginUniversal' | 'renew' | 'revoke'>;
  auth: AuthSpec;
  /** Fraction of the TTL after which the token is renewed (0 < renewAt < 1). */
  renewAt: number;
  logger: Logger;
  /** Clock and timers; default Node's, unref'd (a renewal timer never holds a process open). */
  timers?: Timers;
  /** Called after each login/renew: the metrics layer records the expiry. */
  onChange?: (info: TokenChange) => void;
  /** The runtime's scrubber: the token and the credentials read are held in it. */
  scrubber: Scrubber;
  /** Backoff after a failed lifecycle step (default 1 s doubling to 30 s, ±20 %). */
  backoff?: BackoffPolicy;
}

interface Current {
  token: string;
  /** When this grant's TTL started (login or renew). */
  obtainedAtMs: number;
  /** When the original login of this chain happened: maxTTL counts from here. */
  loginAtMs: number;
  ttlMs: number;
  maxTtlMs: number;
  generation: number;
}

/**
 * Owns the access token. `token()` / `withToken()` for callers, `start()` / `stop()` for the
 * renewal timers. Errors: `RLD_ERR_AUTH` (login refused, credential file unreadable — the
 * message names the path, never the content), plus the client's codes.
 */
export class TokenManager {
  private readonly opts: TokenManagerOptions;
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly scrubber: Scrubber;
  private readonly backoff: Backoff;
  private current: Current | undefined;
  private loginInFlight: Promise<Current> | undefined;
  private generation = 0;
  private started = false;
  private timer: unknown;

  constructor(opts: TokenManagerOptions) {
    this.opts = opts;
    this.timers = opts.timers ?? backgroundTimers;
    this.now = () => this.timers.now();
    this.scrubber = opts.scrubber;
    this.backoff = new Backoff(opts.backoff ?? { baseMs: 1000, maxMs: 30_000 });
  }

  /** A usable access token: the current one, or a (shared) fresh login. */
  async token(): Promise<string> {
    if (this.opts.auth.kind === 'token') return this.staticToken();
    const cur = this.current;
    if (cur !== undefined && !this.expired(cur)) return cur.token;
    return (await this.login()).token;
  }

  /**
   * Runs `fn` with a token. When `fn` fails with `RLD_ERR_TOKEN` (expired/revoked: 401, or 403
   * TokenError), the token is dropped, one fresh login is made (shared with concurrent callers
   * that hit the same rejection) and `fn` is tried once more. A static token is re-read instead.
   */
  async withToken<T>(fn: (token: string) => Promise<T>): Promise<T> {
    const first = await this.token();
    try {
      return await fn(first);
    } catch (err) {
      if (!hasCode(err, 'RLD_ERR_TOKEN')) throw err;
      if (this.opts.auth.kind === 'token') {
        const again = this.staticToken();
        if (again === first) throw err;
        return fn(again);
      }
      this.opts.logger.info({ code: err.code }, 'access token rejected; logging in again');
      const cur = this.current;
      let next: string;
      if (cur !== undefined && cur.token !== first && !this.expired(cur)) next = cur.token;
      else {
        if (cur?.token === first) this.current = undefined;
        next = (await this.login()).token;
      }
      return fn(next);
    }
  }

  /** Arms the renewal timers (after the first login, or now if a token is already held). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.schedule();
  }

  /** Cancels the timers; the held token stays usable until it expires. */
  stop(): void {
    this.started = false;
    this.clearTimer();
  }

  /** Effective expiry of the held token (ms since epoch); undefined if none or never. */
  expiresAtMs(): number | undefined {
    const cur = this.current;
    return cur === undefined ? undefined : this.effectiveExpiry(cur);
  }

  /** Revokes the held token (best effort at shutdown) and forgets it. */
  async revoke(): Promise<void> {
    const cur = this.current;
    this.current = undefined;
    this.clearTimer();
    if (cur !== undefined) await this.opts.client.revoke(cur.token);
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  private effectiveExpiry(cur: Current): number | undefined {
    const ttlEnd = cur.ttlMs > 0 ? cur.obtainedAtMs + cur.ttlMs : undefined;
    const maxEnd = cur.maxTtlMs > 0 ? cur.loginAtMs + cur.maxTtlMs : undefined;
    if (ttlEnd === undefined) return maxEnd;
    return maxEnd === undefined ? ttlEnd : Math.min(ttlEnd, maxEnd);
  }

  private expired(cur: Current): boolean {
    const exp = this.effectiveExpiry(cur);
    return exp !== undefined && this.now() >= exp;
  }

  /** (3) When the next step of the held grant is due; undefined = nothing to do. */
  private dueAt(cur: Current): number | undefined {
    if (cur.ttlMs === 0) return undefined; // (2)
    const exp = this.effectiveExpiry(cur) ?? cur.obtainedAtMs + cur.ttlMs;
    const span = exp - cur.obtainedAtMs;
    const due = cur.obtainedAtMs + this.opts.renewAt * span;
    // A JWT's `exp` counts whole seconds from a truncated `iat`, so a TTL-bound token can die up
    // to 1 s before obtained + TTL. With real TTLs (minutes to days) renewAt × span is far
    // earlier; with a TTL of a few seconds, act at least that second early (never earlier than
    // half the span). The max TTL is counted from the server's record in ms: no slack there.
    if (exp !== cur.obtainedAtMs + cur.ttlMs) return due;
    const latest = cur.obtainedAtMs + Math.max(span - EXP_GRANULARITY_MS, span / 2);
    return Math.min(due, latest);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(at: number): void {
    this.clearTimer();
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at - this.now()));
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      if (this.now() < at)
        this.arm(at); // a long delay re-armed in steps
      else void this.step();
    }, delay);
  }

  private schedule(): void {
    if (!this.started || this.opts.auth.kind === 'token') return;
    const cur = this.current;
    if (cur === undefined) return;
    const due = this.dueAt(cur);
    if (due === undefined) this.clearTimer();
    else this.arm(due);
  }

  private retryLater(err: unknown, what: string): void {
    const delay = this.backoff.next();
    this.opts.logger.warn(
      { err, retryInMs: delay, failures: this.backoff.attempts },
      `token ${what} failed; retrying later`,
    );
    if (this.started) this.arm(this.now() + delay);
  }

  /** (4)–(6) One scheduled step: renew, or log in when renewing can no longer help. */
  private async step(): Promise<void> {
    if (!this.started) return;
    const cur = this.current;
    const maxEnd = cur && cur.maxTtlMs > 0 ? cur.loginAtMs + cur.maxTtlMs : undefined;
    const mustLogin =
      cur === undefined ||
      this.expired(cur) ||
      (maxEnd !== undefined && this.now() + cur.ttlMs + maxTtlMargin(cur.ttlMs) > maxEnd);
    if (mustLogin) {
      this.current = cur !== undefined && this.expired(cur) ? undefined : cur;
      try {
        await this.login(true);
      } catch (err) {
        this.retryLater(err, 'login');
      }
      return;
    }
    const t0 = this.now();
    let grant: TokenGrant;
    try {
      grant = await this.opts.client.renew(cur.token);
    } catch (err) {
      if (hasCode(err, 'RLD_ERR_INFISICAL_NETWORK', 'RLD_ERR_INFISICAL_TIMEOUT') || isBusy(err)) {
        this.retryLater(err, 'renew');
        return;
      }
      this.opts.logger.info({ err }, 'token renew refused; logging in again'); // (5)
      try {
        await this.login(true);
      } catch (loginErr) {
        this.retryLater(loginErr, 'login');
      }
      return;
    }
    if (this.current?.generation !== cur.generation) return; // a login replaced it meanwhile
    this.backoff.reset();
    this.apply(grant, t0, cur.loginAtMs, 'renew');
  }

  // ---- login --------------------------------------------------------------------------------

  /** Logs in, sharing one in-flight login between callers. `fresh` forces a new one. */
  private login(fresh = false): Promise<Current> {
    if (this.loginInFlight) return this.loginInFlight;
    const cur = this.current;
    if (!fresh && cur !== undefined && !this.expired(cur)) return Promise.resolve(cur);
    const p = this.doLogin().finally(() => {
      if (this.loginInFlight === p) this.loginInFlight = undefined;
    });
    this.loginInFlight = p;
    return p;
  }

  private async doLogin(): Promise<Current> {
    const auth = this.opts.auth;
    const t0 = this.now();
    let grant: TokenGrant;
    if (auth.kind === 'kubernetes') {
      const jwt = readCredential(auth.tokenPath, 'service-account token');
      this.scrubber.hold('service-account-token', jwt);
      grant = await this.opts.client.loginKubernetes(auth.identityId, jwt);
    } else if (auth.kind === 'universal') {
      const secret =
        auth.clientSecretFile !== undefined
          ? readCredential(auth.clientSecretFile, 'client secret')
          : (auth.clientSecret ?? '');
      this.scrubber.hold('client-secret', secret);
      grant = await this.opts.client.loginUniversal(auth.clientId, secret);
    } else {
      throw new ReloaderError('RLD_ERR_INTERNAL', 'static token auth does not log in');
    }
    this.backoff.reset();
    return this.apply(grant, t0, t0, 'login');
  }

  private apply(
    grant: TokenGrant,
    obtainedAtMs: number,
    loginAtMs: number,
    kind: 'login' | 'renew',
  ): Current {
    const cur: Current = {
      token: grant.accessToken,
      obtainedAtMs,
      loginAtMs,
      ttlMs: grant.expiresInS * 1000,
      maxTtlMs: grant.maxTtlS * 1000,
      generation: ++this.generation,
    };
    this.scrubber.hold('access-token', cur.token);
    this.current = cur;
    const expiresAtMs = this.effectiveExpiry(cur);
    this.opts.logger.info(
      { kind, expiresAt: expiresAtMs === undefined ? null : new Date(expiresAtMs).toISOString() },
      kind === 'login' ? 'logged in to Infisical' : 'access token renewed',
    );
    this.opts.onChange?.({ expiresAtMs, kind });
    this.schedule();
    return cur;
  }

  private staticToken(): string {
    const auth = this.opts.auth;
    if (auth.kind !== 'token') throw new ReloaderError('RLD_ERR_INTERNAL', 'not a static token');
    const token =
      auth.tokenFile !== undefined
        ? readCredential(auth.tokenFile, 'access token')
        : (auth.token ?? '');
    if (token === '') throw new ReloaderError('RLD_ERR_AUTH', 'the static access token is empty');
    this.scrubber.hold('access-token', token);
    return token;
  }
}

/** 5xx and 429 answers to renew: Infisical is busy, not refusing the token. */
function isBusy(err: unknown): boolean {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === 'number' && (status === 429 || status >= 500);
}

/** Reads and trims a credential file; errors name the path and the reason, never the content. */
function readCredential(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ReloaderError(
      'RLD_ERR_AUTH',
      `cannot read the ${what} file ${path}${codeSuffix(err)}`,
      { cause: err, details: { path } },
    );
  }
  const value = text.trim();
  if (value === '')
    throw new ReloaderError('RLD_ERR_AUTH', `the ${what} file ${path} is empty`, {
      details: { path },
    });
  return value;
}
