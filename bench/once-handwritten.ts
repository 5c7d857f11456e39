/**
 * Bench 6's hand-written `--once`: a fresh process doing the least a careful tool must do for the
 * same job — one universal-auth login and one listing over node:http, read the 50 templates,
 * substitute `{{secrets.KEY}}` (a missing key is an error), and write each output durably
 * (temp file, write, fsync, rename, directory fsync), 16 at a time like `--once`. Node built-ins
 * only, nothing else loaded, no spec, no validation, no lock, no log: the floor the reloader's
 * own cold start is compared with.
 * Usage: node dist/bench/once-handwritten.js <apiUrl> <clientId> <clientSecret> <projectId> <env>
 *        <templateDir> <outDir> <count>
 */
import { request } from 'node:http';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeDurably } from './durable.js';

const [url, clientId, clientSecret, projectId, environment, tplDir, outDir, count] =
  process.argv.slice(2) as [string, string, string, string, string, string, string, string];

function call(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`${path}: HTTP ${res.statusCode}`));
        else resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const login = (await call(
  'POST',
  '/v1/auth/universal-auth/login',
  { 'content-type': 'application/json' },
  JSON.stringify({ clientId, clientSecret }),
)) as { accessToken: string };
const query = new URLSearchParams({
  projectId,
  environment,
  secretPath: '/',
  include_imports: 'true',
  expandSecretReferences: 'true',
});
const listing = (await call('GET', `/v4/secrets?${query}`, {
  authorization: `Bearer ${login.accessToken}`,
})) as { secrets: Array<{ secretKey: string; secretValue: string }> };
const secrets = new Map(listing.secrets.map((s) => [s.secretKey, s.secretValue]));

await mkdir(outDir, { recursive: true });
const n = Number(count);
let next = 0;
async function worker(): Promise<void> {
  while (next < n) {
    const t = next++;
    const template = await readFile(join(tplDir, `o${t}.hbs`), 'utf8');
    const output = template.replace(/\{\{secrets\.(\w+)\}\}/g, (_m, key: string) => {
      const value = secrets.get(key);
      if (value === undefined) throw new Error(`o${t}: missing key ${key}`);
      return value;
    });
    await writeDurably(join(outDir, `o${t}.conf`), output);
  }
}
await Promise.all(Array.from({ length: Math.min(16, n) }, worker));
