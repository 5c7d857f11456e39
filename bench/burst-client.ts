/**
 * The burst's client, in a worker thread so that its own CPU (undici, pacing) does not share
 * the daemon's event loop: sends the pre-signed deliveries at an even pace over `spreadMs`, on a
 * pool of keep-alive connections, and reports when the last one was sent (epoch ms, fractional).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Pool } from 'undici';

interface Job {
  origin: string;
  path: string;
  deliveries: Array<{ body: string; header: string }>;
  spreadMs: number;
  connections: number;
}

const job = workerData as Job;
const pool = new Pool(job.origin, { connections: job.connections });
const abs = (): number => performance.timeOrigin + performance.now();

async function send(d: { body: string; header: string }): Promise<number> {
  const res = await pool.request({
    method: 'POST',
    path: job.path,
    headers: { 'content-type': 'application/json', 'x-infisical-signature': d.header },
    body: d.body,
  });
  await res.body.dump();
  return res.statusCode;
}

const n = job.deliveries.length;
const pending: Promise<number>[] = [];
const t0 = performance.now();
let sent = 0;
while (sent < n) {
  const due = Math.min(n, Math.floor(((performance.now() - t0) / job.spreadMs) * n) + 1);
  while (sent < due) pending.push(send(job.deliveries[sent++] as { body: string; header: string }));
  await new Promise((r) => setTimeout(r, 1));
}
const lastSentAt = abs();
const sendMs = performance.now() - t0;
const statuses = await Promise.all(pending);
const answeredMs = performance.now() - t0;
await pool.close();
parentPort?.postMessage({
  lastSentAt,
  sendMs,
  answeredMs,
  accepted: statuses.filter((s) => s === 200).length,
});
