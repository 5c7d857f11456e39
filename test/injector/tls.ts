/**
 * A throwaway CA and server certificates signed by it (the openssl CLI), laid out the way the
 * kubelet writes a Secret volume: `tls.crt` and `tls.key` are symlinks into `..data`, itself a
 * symlink to a timestamped folder, and a rotation writes a new folder and swaps `..data` with
 * one rename.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../e2e/process.js';

export interface Ca {
  certFile: string;
  keyFile: string;
  cert: string;
}

async function openssl(args: string[], cwd?: string): Promise<void> {
  const res = await run('openssl', args, { cwd });
  assert.equal(res.code, 0, `openssl ${args[0]} failed: ${res.stderr}`);
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A CA valid for a day, in `dir`. */
export async function makeCa(dir: string): Promise<Ca> {
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  await openssl(
    ['req', '-x509', ...EC, '-days', '1', '-subj', '/CN=throwaway test CA'].concat([
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ]),
  );
  return { certFile, keyFile, cert: await readFile(certFile, 'utf8') };
}

/** A server certificate for 127.0.0.1 and `localhost`, CN=`name`, signed by `ca`. */
export async function issue(
  dir: string,
  ca: Ca,
  name: string,
): Promise<{ cert: string; key: string }> {
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  await openssl(['req', ...EC, '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', csrFile]);
  await writeFile(
    extFile,
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  await openssl([
    'x509',
    '-req',
    '-in',
    csrFile,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    extFile,
    '-out',
    certFile,
  ]);
  return { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
}

let generation = 0;

/**
 * Writes `files` into `dir` the kubelet way: a new `..<timestamp>` folder, a `..data_tmp`
 * symlink to it renamed over `..data`, and (the first time) one symlink per file into `..data`.
 */
export async function writeSecretVolume(dir: string, files: Record<string, string>): Promise<void> {
  generation += 1;
  const stamp = `..${Date.now()}_${generation}`;
  await mkdir(join(dir, stamp), { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    await writeFile(join(dir, stamp, name), text, { mode: 0o600 });
  }
  await symlink(stamp, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const name of Object.keys(files)) {
    await symlink(join('..data', name), join(dir, name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
}
