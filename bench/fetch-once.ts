/**
 * Bench 6's "fetch alone": a fresh process that does what `--once` must do on the network — one
 * universal-auth login and one listing — with undici, and prints its timings as JSON:
 * `importMs` (loading undici), `fetchMs` (login + listing, cold connection and cold JIT).
 * Usage: node dist/bench/fetch-once.js <apiUrl> <clientId> <clientSecret> <projectId> <env>
 */
const t0 = performance.now();
const { request } = await import('undici');
const t1 = performance.now();
const [url, clientId, clientSecret, projectId, environment] = process.argv.slice(2) as string[];
const login = await request(`${url}/v1/auth/universal-auth/login`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ clientId, clientSecret }),
});
const { accessToken } = (await login.body.json()) as { accessToken: string };
const query = new URLSearchParams({
  projectId: projectId as string,
  environment: environment as string,
  secretPath: '/',
  recursive: 'false',
  include_imports: 'true',
  expandSecretReferences: 'true',
  viewSecretValue: 'true',
});
const list = await request(`${url}/v4/secrets?${query}`, {
  headers: { authorization: `Bearer ${accessToken}` },
});
const body = (await list.body.json()) as { secrets: unknown[] };
const t2 = performance.now();
process.stdout.write(
  `${JSON.stringify({ importMs: t1 - t0, fetchMs: t2 - t1, secrets: body.secrets.length })}\n`,
);
