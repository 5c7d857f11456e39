/**
 * `verify`: after the reload, prove that the app took it. A reload that exits 0 is not proof —
 * PostgreSQL's `pg_ctl reload` exits 0 and keeps serving the old certificate when it cannot
 * load the new one. Three kinds:
 *
 *  - `tls`: one fresh handshake with `address` (SNI `serverName`; `startTls: postgres` sends
 *    PostgreSQL's SSLRequest first); the certificate served must be byte for byte the one the
 *    target rendered;
 *  - `http`: a GET of `url` must answer `status`;
 *  - `command`: argv run without a shell must exit 0.
 *
 * Each attempt is bounded by `timeout`; up to `attempts` attempts, `interval` apart (an app may
 * take a moment to apply a reload: nginx's old worker still answers for a while). `runVerify`
 * never throws: the outcome is a value whose `detail` is one line of names, statuses and
 * certificate fingerprints — never a value (command output is scrubbed).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { VerifySpec } from '../config/types.js';
import type { Scrubber } from '../secrets/scrubber.js';
import { realTimers, sleep, type Timers } from '../util/timers.js';
import { runCommand } from './command.js';
import { describeUrl, httpReload } from './http.js';

export interface VerifyOutcome {
  ok: boolean;
  /** Attempts made (1 … attempts). */
  attempts: number;
  /** One line about the last attempt. */
  detail: string;
}

export interface VerifyOptions {
  /** DER of the certificate a `tls` verify expects (the rendered leaf). */
  expectedCertificate?: Buffer;
  scrubber: Scrubber;
  cwd?: string;
  timers?: Timers;
}

/** PostgreSQL's SSLRequest: length 8, code 80877103. */
const PG_SSL_REQUEST = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);

function fingerprint(der: Buffer): string {
  try {
    return new X509Certificate(der).fingerprint256.slice(0, 23);
  } catch {
    return '(unreadable)';
  }
}

/** The DER of the certificate served at host:port (after PostgreSQL's SSLRequest if asked). */
export function servedCertificate(
  spec: Pick<Extract<VerifySpec, { kind: 'tls' }>, 'host' | 'port' | 'serverName' | 'startTls'>,
  timeoutMs: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let socket: Socket | undefined;
    const timer = setTimeout(() => {
      socket?.destroy();
      reject(new Error(`no TLS handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket?.destroy();
      reject(err);
    };
    const handshake = (raw?: Socket): void => {
      const tls = tlsConnect({
        ...(raw ? { socket: raw } : { host: spec.host, port: spec.port }),
        servername: spec.serverName ?? (/^[\d.:]+$/.test(spec.host) ? undefined : spec.host),
        rejectUnauthorized: false, // we compare the certificate itself, not its trust chain
        session: undefined,
      });
      socket = tls;
      tls.once('secureConnect', () => {
        clearTimeout(timer);
        const raw = tls.getPeerCertificate().raw;
        tls.destroy();
        if (raw === undefined) reject(new Error('the server sent no certificate'));
        else resolve(raw);
      });
      tls.once('error', fail);
    };
    if (spec.startTls !== 'postgres') {
      handshake();
      return;
    }
    const plain = netConnect({ host: spec.host, port: spec.port });
    socket = plain;
    plain.once('error', fail);
    plain.once('connect', () => plain.write(PG_SSL_REQUEST));
    plain.once('data', (answer: Buffer) => {
      if (answer[0] !== 0x53) {
        fail(new Error('PostgreSQL refused SSL (SSLRequest answered N: is ssl on?)'));
        return;
      }
      plain.removeListener('error', fail);
      handshake(plain);
    });
  });
}

async function attempt(
  spec: VerifySpec,
  opts: VerifyOptions,
): Promise<{ ok: boolean; detail: string }> {
  switch (spec.kind) {
    case 'tls': {
      const where = `${spec.host}:${spec.port}`;
      const expected = opts.expectedCertificate;
      if (expected === undefined) {
        return { ok: false, detail: `tls ${where}: the target renders no certificate to compare` };
      }
      try {
        const served = await servedCertificate(spec, spec.timeoutMs);
        if (served.equals(expected)) {
          return { ok: true, detail: `tls ${where} serves the rendered certificate` };
        }
        return {
          ok: false,
          detail: `tls ${where} serves certificate ${fingerprint(served)}…, not the rendered ${fingerprint(expected)}…`,
        };
      } catch (err) {
        const code = (err as { code?: string }).code;
        return { ok: false, detail: `tls ${where}: ${code ?? (err as Error).message}` };
      }
    }
    case 'http': {
      const res = await httpReload({ url: spec.url, method: 'GET', timeoutMs: spec.timeoutMs });
      const what = `GET ${describeUrl(spec.url)}`;
      if (res.status === spec.status) return { ok: true, detail: `${what} answered ${res.status}` };
      return {
        ok: false,
        detail:
          res.status === null ? res.detail : `${what} answered ${res.status}, not ${spec.status}`,
      };
    }
    case 'command': {
      const res = await runCommand(spec.command, {
        timeoutMs: spec.timeoutMs,
        ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
      });
      const argv0 = spec.command[0] ?? '';
      if (res.ok) return { ok: true, detail: `${argv0} exited 0` };
      const why = res.timedOut
        ? `timed out after ${spec.timeoutMs} ms`
        : res.exitCode !== null
          ? `exited ${res.exitCode}`
          : `could not run`;
      const tail = opts.scrubber.scrub(res.stderrTail.trim().split('\n').at(-1) ?? '');
      return { ok: false, detail: `${argv0} ${why}${tail ? `: ${tail.slice(0, 200)}` : ''}` };
    }
  }
}

/** Run `spec` until an attempt passes or `attempts` are spent; see the module comment. */
export async function runVerify(spec: VerifySpec, opts: VerifyOptions): Promise<VerifyOutcome> {
  let last = { ok: false, detail: 'not run' };
  for (let n = 1; n <= spec.attempts; n++) {
    if (n > 1) await sleep(spec.intervalMs, undefined, opts.timers ?? realTimers);
    last = await attempt(spec, opts);
    if (last.ok) return { ok: true, attempts: n, detail: last.detail };
  }
  return { ok: false, attempts: spec.attempts, detail: last.detail };
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** The DER of the first PEM certificate in `text`, if any. */
export function firstCertificate(text: string): Buffer | undefined {
  const block = PEM_CERT.exec(text)?.[0];
  if (block === undefined) return undefined;
  try {
    return new X509Certificate(block).raw;
  } catch {
    return undefined;
  }
}
