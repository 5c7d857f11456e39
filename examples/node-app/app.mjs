// A Node service that takes a rotated PostgreSQL credential without a restart, with the
// integration guide's three calls: subscribe, start, get.
//
// It holds one `pg` pool built from DATABASE_URL. When Infisical changes DATABASE_URL, the
// subscriber calls back once with the new value: the app opens a new pool, proves it with one
// query, switches to it, and drains the old one (the queries already queued on it finish, then
// its connections close). Every query is served throughout.
//
//   GET /query   runs `select current_user, now()` through the pool in use
//   GET /status  the pool generation and when it last switched (never the URL)
//
// Options come from the guide's environment variables (INFISICAL_API_URL,
// INFISICAL_PROJECT_ID, ...) or, when RELOADER_CONFIG is set, from that file (here:
// subscriber.yaml next to this file: the reloader.yaml format without targets). PORT (default
// 3000) and HOST (default 127.0.0.1) set the app's own listener.
import { createServer } from 'node:http';
import pg from 'pg';
import { SecretSubscriber } from 'infisical-reloader';

const KEY = 'DATABASE_URL';

/** A pool that can be replaced while queries run. */
class RotatingPool {
  generation = 0;
  switchedAt = undefined;

  constructor(url) {
    this.pool = this.open(url);
  }

  open(url) {
    this.generation += 1;
    const pool = new pg.Pool({
      connectionString: url,
      max: 5,
      // connections opened before a password change stay authenticated: keep them open
      idleTimeoutMillis: 0,
      application_name: `node-app-gen-${this.generation}`,
    });
    pool.on('error', (err) => console.error(`pool error: ${err.code ?? err.message}`));
    return pool;
  }

  query(text, params) {
    return this.pool.query(text, params);
  }

  /** Open, prove, switch, drain. A new URL that does not work keeps the old pool. */
  async rotate(url) {
    const next = this.open(url);
    try {
      await next.query('select 1');
    } catch (err) {
      await next.end().catch(() => {});
      this.generation -= 1;
      throw new Error(
        `the new ${KEY} does not connect (${err.code ?? 'error'}); keeping the old pool`,
      );
    }
    const old = this.pool;
    this.pool = next;
    this.switchedAt = new Date().toISOString();
    // pg's end() serves no request still waiting for a connection: let those finish first
    while (old.waitingCount > 0) await new Promise((r) => setTimeout(r, 10));
    await old.end();
  }

  end() {
    return this.pool.end();
  }
}

const subscriber = new SecretSubscriber();
let pool;
subscriber.subscribe(KEY, async (_key, newValue) => {
  if (newValue === undefined) {
    console.error(`${KEY} was deleted; keeping the pool in use`);
    return;
  }
  await pool.rotate(newValue);
  console.log(`pool switched to generation ${pool.generation}`);
});
await subscriber.start();
const url = subscriber.get(KEY);
if (url === undefined) {
  console.error(`${KEY} is not in the configured Infisical source`);
  await subscriber.stop();
  process.exit(1);
}
pool = new RotatingPool(url);

const server = createServer(async (req, res) => {
  const reply = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.url === '/status') {
    return reply(200, { generation: pool.generation, switchedAt: pool.switchedAt });
  }
  if (req.url === '/query') {
    try {
      const { rows } = await pool.query('select current_user as "user", now() as at');
      return reply(200, { ...rows[0], generation: pool.generation });
    } catch (err) {
      return reply(503, { error: err.code ?? 'query failed' });
    }
  }
  reply(404, { error: 'not found' });
});
server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}`);
});

const shutdown = async () => {
  server.close();
  await subscriber.stop();
  await pool.end();
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
