/**
 * Self-signed certificates (openssl CLI), TLS probes (node:tls) and nginx as a real process,
 * following a recipe measured on a 2-core Debian machine: everything under one temp dir, `-e` for the early
 * error log, stop with SIGQUIT to the master, and a reload only verified once the old worker
 * has exited.
 */
import { connect as tlsConnect } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { waitFor } from '../helpers/harness.js';
import { childrenOf, run, spawnCollect, stopPid, type Spawned } from './process.js';

// ---------------------------------------------------------------- certificates and TLS

export interface SelfSigned {
  cert: string;
  key: string;
  /** The base64 lines of the private key: canaries that must never reach a log. */
  keyLines: string[];
}

/**
 * A self-signed certificate with CN=`name`, valid one day, from the openssl CLI: a P-256 key,
 * or RSA-2048 with `kind: 'rsa'`.
 */
export async function selfSigned(
  dir: string,
  name: string,
  kind: 'ec' | 'rsa' = 'ec',
): Promise<SelfSigned> {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  const keyArgs =
    kind === 'rsa'
      ? ['-newkey', 'rsa:2048']
      : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  const res = await run('openssl', [
    'req',
    '-x509',
    ...keyArgs,
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  assert.equal(res.code, 0, `openssl req failed: ${res.stderr}`);
  const key = await readFile(keyFile, 'utf8');
  const cert = await readFile(certFile, 'utf8');
  const keyLines = key.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'));
  return { cert, key, keyLines };
}

export interface PeerCert {
  cn: string;
  fingerprint256: string;
}

/**
 * One fresh TLS handshake with 127.0.0.1:`port` (no session reuse, no verification: the certs
 * are self-signed) and the subject CN and SHA-256 fingerprint of the certificate served.
 */
export function tlsPeer(port: number, timeoutMs = 2000): Promise<PeerCert> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TLS handshake with 127.0.0.1:${port} timed out`));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const peer = socket.getPeerCertificate();
      socket.end();
      const cn = peer.subject?.CN;
      resolve({
        cn: Array.isArray(cn) ? cn.join(',') : (cn ?? ''),
        fingerprint256: peer.fingerprint256,
      });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}

/** Subject CN served on `port`. */
export async function tlsSubject(port: number): Promise<string> {
  return (await tlsPeer(port)).cn;
}

/** SHA-256 fingerprint (colon-separated hex) of the certificate served on `port`. */
export async function tlsFingerprint(port: number): Promise<string> {
  return (await tlsPeer(port)).fingerprint256;
}

// ---------------------------------------------------------------- nginx

export interface Nginx {
  /** The master's pid (nginx runs in the foreground as our child: `daemon off`). */
  pid: number;
  proc: Spawned;
  /** `nginx -p D -e D/logs/error.log -c D/nginx.conf`: the argv prefix for -t and friends. */
  argv: string[];
}

/**
 * The nginx.conf of a test: everything under `dir` (pid, error log, temp paths), one worker
 * (so "the old worker is gone" means "one child"), and the rendered server block included.
 */
export function nginxConf(dir: string, include: string): string {
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log notice;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path ${dir}/tmp/client_body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    include ${include};
}
`;
}

/** The argv prefix that points nginx at `dir` without touching /etc/nginx or /var/log/nginx. */
export function nginxArgv(nginx: string, dir: string): string[] {
  return [nginx, '-p', `${dir}/`, '-e', `${dir}/logs/error.log`, '-c', `${dir}/nginx.conf`];
}

/**
 * Start nginx in the foreground (`daemon off`) as our child, wait for its pid file and for
 * `port` to answer a TLS handshake. Stopped in `t.after` with SIGQUIT to the master (not
 * `nginx -s quit`, which fails while the files are torn), waiting for it to exit.
 */
export async function startNginx(
  t: TestContext,
  nginx: string,
  dir: string,
  port: number,
): Promise<Nginx> {
  const argv = nginxArgv(nginx, dir);
  const proc = spawnCollect(argv[0] as string, [...argv.slice(1), '-g', 'daemon off;']);
  t.after(async () => {
    if (proc.child.pid !== undefined) await stopPid(proc.child.pid, 'SIGQUIT', 5000);
    await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 2000))]);
  });
  const pid = await waitFor(
    async () => {
      if (proc.child.exitCode !== null) {
        throw new Error(`nginx exited ${proc.child.exitCode}: ${proc.output()}`);
      }
      const text = await readFile(join(dir, 'nginx.pid'), 'utf8').catch(() => '');
      return Number(text.trim()) || undefined;
    },
    { what: 'nginx to write its pid file', timeoutMs: 10_000 },
  );
  assert.equal(pid, proc.child.pid, 'the pid file names the master we started');
  await waitFor(() => tlsPeer(port).then(() => true), {
    what: `nginx to answer TLS on 127.0.0.1:${port}`,
    timeoutMs: 10_000,
  });
  return { pid, proc, argv };
}

/**
 * Wait until the nginx master has exactly one worker and it is not `oldWorker`: right after a
 * reload the old worker can still accept a connection and serve the OLD certificate,
 * so a verification must wait for it to exit. Returns the new worker's pid.
 */
export async function waitForSingleWorker(
  masterPid: number,
  oldWorker?: number,
  timeoutMs = 10_000,
): Promise<number> {
  let last: number[] = [];
  return waitFor(
    () => {
      last = childrenOf(masterPid);
      return last.length === 1 && last[0] !== oldWorker ? last[0] : undefined;
    },
    { what: `nginx master ${masterPid} to have one new worker (old ${oldWorker})`, timeoutMs },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; children: ${last.join(',')}`);
  });
}
