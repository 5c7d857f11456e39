/**
 * Infisical's project webhooks (docs/infisical-api.md), reproduced for the local server:
 *
 * 1. a change in (project, env, folder) queues one job keyed
 *    `secret-webhook-<env>-<projectId>-<secretPath>` that runs after `delayMs`; while a job with
 *    that key exists (delayed *or running*, BullMQ's jobId semantics) further changes are dropped,
 *    so a burst becomes one delivery;
 * 2. when the job runs, folders that import the changed folder or reference it with
 *    `${env.path.KEY}` get their own change (Infisical's integration-sync fan-out), at most
 *    5 levels deep, each folder once per chain;
 * 3. every hook of that project + env whose `secretPath` glob matches
 *    (`picomatch.isMatch(path, glob, {strictSlashes: false})`) is POSTed in parallel:
 *    body `JSON.stringify({event, project: {...}, timestamp})`, `Content-Type: application/json`,
 *    `x-infisical-signature: t=<timestamp>;<hex hmac-sha256(body, secretKey)>` only with a key,
 *    15 s timeout, redirects not followed;
 * 4. a failed delivery (non-2xx, network error, timeout) is recorded and never retried.
 */
import { createHmac, randomUUID } from 'node:crypto';
import picomatch from 'picomatch';
import { request } from 'undici';
import { ReloaderError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { FolderRef } from './store.js';

const TIMEOUT_MS = 15_000;
const MAX_SYNC_DEPTH = 5;

export interface WebhookHook {
  id: string;
  projectId: string;
  environment: string;
  secretPath: string;
  url: string;
  secretKey?: string;
  type: 'general';
}

export interface Delivery {
  hookId: string;
  url: string;
  event: string;
  /** HTTP status when an answer came back (2xx = success). */
  status?: number;
  /** Set when the delivery failed (non-2xx, network, timeout). */
  error?: string;
  body: string;
  headers: Record<string, string>;
  atMs: number;
}

/** What the dispatcher needs to know about the data. */
export interface WebhookContext {
  projectName(projectId: string): string | undefined;
  /** Folders that import or reference (`environment`, `path`). */
  dependents(projectId: string, environment: string, path: string): FolderRef[];
}

interface Chain {
  seen: Set<string>;
  depth: number;
}

/** The hooks of one server, their pending jobs, and the record of every delivery. */
export class WebhookDispatcher {
  readonly deliveries: Delivery[] = [];
  private readonly hooks = new Map<string, WebhookHook>();
  private readonly jobs = new Map<string, NodeJS.Timeout | 'running'>();
  private readonly running = new Set<Promise<void>>();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly abort = new AbortController();

  constructor(
    private readonly options: { delayMs: number; context: WebhookContext; logger: Logger },
  ) {}

  /** Register a hook; the caller has checked that the project and environment exist. */
  add(hook: Omit<WebhookHook, 'id' | 'type'>): WebhookHook {
    const full: WebhookHook = { ...hook, id: randomUUID(), type: 'general' };
    this.hooks.set(full.id, full);
    return full;
  }

  /** A change happened in (`projectId`, `environment`, `path`): schedule its job (1). */
  changed(projectId: string, environment: string, path: string, chain?: Chain): void {
    const key = `secret-webhook-${environment}-${projectId}-${path}`;
    if (this.jobs.has(key) || this.abort.signal.aborted) return;
    const c = chain ?? { seen: new Set([`${environment}-${path}`]), depth: 1 };
    const timer = setTimeout(() => {
      this.jobs.set(key, 'running');
      this.track(this.runJob(projectId, environment, path, c).finally(() => this.jobs.delete(key)));
    }, this.options.delayMs);
    this.jobs.set(key, timer);
  }

  /** POST the `test` event to one hook (Infisical's "Test webhook" button) and wait for it. */
  async sendTest(id: string): Promise<void> {
    const hook = this.hooks.get(id);
    if (!hook) throw new ReloaderError('RLD_ERR_USAGE', `local Infisical: no webhook ${id}`);
    const job = this.deliver(hook, 'test', hook.secretPath);
    this.track(job);
    await job;
  }

  /** Resolve once no job is delayed or running (fails after `timeoutMs` naming what is left). */
  flush(timeoutMs = 30_000): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const left = [...this.jobs.keys()].join(', ') || `${this.running.size} running deliveries`;
        reject(
          new ReloaderError(
            'RLD_ERR_INTERNAL',
            `webhooks not flushed after ${timeoutMs} ms: ${left}`,
          ),
        );
      }, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Drop delayed jobs, abort running deliveries and wait for them to settle. */
  async close(): Promise<void> {
    this.abort.abort();
    for (const job of this.jobs.values()) if (job !== 'running') clearTimeout(job);
    this.jobs.clear();
    await Promise.allSettled([...this.running]);
    this.notifyIdle();
  }

  private async runJob(projectId: string, environment: string, path: string, chain: Chain) {
    if (chain.depth < MAX_SYNC_DEPTH) {
      for (const dep of this.options.context.dependents(projectId, environment, path)) {
        const depKey = `${dep.environment}-${dep.path}`;
        if (chain.seen.has(depKey)) continue;
        chain.seen.add(depKey);
        this.changed(projectId, dep.environment, dep.path, {
          seen: chain.seen,
          depth: chain.depth + 1,
        }); // (2)
      }
    }
    const hooks = [...this.hooks.values()].filter(
      (h) =>
        h.projectId === projectId &&
        h.environment === environment &&
        picomatch.isMatch(path, h.secretPath, { strictSlashes: false }),
    );
    await Promise.allSettled(hooks.map((h) => this.deliver(h, 'secrets.modified', path))); // (3)
  }

  private async deliver(hook: WebhookHook, event: string, secretPath: string): Promise<void> {
    const { context, logger } = this.options;
    const { projectId, environment } = hook;
    const payload = {
      event,
      project: {
        workspaceId: projectId,
        projectId,
        projectName: context.projectName(projectId),
        environment,
        secretPath,
      },
      timestamp: Date.now(),
    };
    const body = JSON.stringify(payload);
    const headers: Record<string, string> = {
      accept: 'application/json, text/plain, */*',
      'content-type': 'application/json',
    };
    if (hook.secretKey) {
      const sig = createHmac('sha256', hook.secretKey).update(body).digest('hex');
      headers['x-infisical-signature'] = `t=${payload.timestamp};${sig}`;
    }
    const delivery: Delivery = {
      hookId: hook.id,
      url: hook.url,
      event,
      body,
      headers,
      atMs: Date.now(),
    };
    try {
      const signal = AbortSignal.any([AbortSignal.timeout(TIMEOUT_MS), this.abort.signal]);
      const res = await request(hook.url, {
        method: 'POST',
        headers,
        body,
        signal,
        headersTimeout: TIMEOUT_MS,
        bodyTimeout: TIMEOUT_MS,
      });
      await res.body.dump();
      delivery.status = res.statusCode;
      if (res.statusCode < 200 || res.statusCode >= 300) {
        delivery.error = `Request failed with status code ${res.statusCode}`;
      }
    } catch (err) {
      delivery.error = err instanceof Error ? err.message : String(err); // (4) not retried
    }
    this.deliveries.push(delivery);
    logger.debug(
      { hookId: hook.id, event, secretPath, status: delivery.status, error: delivery.error },
      'local infisical: webhook delivered',
    );
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => {
      this.running.delete(p);
      this.notifyIdle();
    });
  }

  private isIdle(): boolean {
    return this.jobs.size === 0 && this.running.size === 0;
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
