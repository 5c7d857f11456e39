/**
 * Where the webhook secret comes from: `webhook.secret` (or `$INFISICAL_WEBHOOK_SECRET`), or
 * `webhook.secretFile`, which is read at start, on SIGHUP, and whenever the file changes —
 * Kubernetes updates a Secret volume in place (a new `..data` directory and one symlink swap),
 * so the folder is watched, not the file. A file that cannot be read, or is empty, keeps the
 * secret in use and says why. A change makes the new secret current; the previous one still
 * verifies for `maxAge` (`WebhookSecrets`).
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { WebhookSpec } from '../config/types.js';
import type { WebhookSecrets } from '../events/webhook-secrets.js';
import type { Logger } from '../logger.js';
import { codeSuffix } from '../util/os-error.js';
import { realTimers, type Timers } from '../util/timers.js';

/** How long file events settle before the file is read again. */
const SETTLE_MS = 100;

/** The secret read, or why there is none. */
export type SecretRead = { secret: string | undefined } | { problem: string };

/**
 * Reads the configured secret: `webhook.secret`, else the `secretFile`, else none (only with
 * `allowUnsigned`; without it the spec is refused earlier, by `requireWebhookSecret`). A
 * `secretFile` that cannot be read or is empty gives a `problem` (naming the file, never the
 * content): the daemon then starts anyway and refuses every delivery with 401 until the file
 * appears — a Secret mounted `optional` may come later, and the full fetch at start loses
 * nothing meanwhile.
 */
export async function readWebhookSecret(webhook: WebhookSpec): Promise<SecretRead> {
  if (webhook.secret !== undefined) return { secret: webhook.secret };
  if (webhook.secretFile === undefined) return { secret: undefined };
  let text: string;
  try {
    text = await readFile(webhook.secretFile, 'utf8');
  } catch (err) {
    return { problem: `cannot read webhook.secretFile ${webhook.secretFile}${codeSuffix(err)}` };
  }
  const secret = text.trim();
  if (secret === '') return { problem: `webhook.secretFile ${webhook.secretFile} is empty` };
  return { secret };
}

/** Watches a `secretFile` and feeds `secrets` when it changes. */
export class WebhookSecretFile {
  private watcher: FSWatcher | undefined;
  private timer: unknown;
  private readonly timers: Timers;

  constructor(
    private readonly opts: {
      webhook: WebhookSpec;
      secrets: WebhookSecrets;
      logger: Logger;
      timers?: Timers;
    },
  ) {
    this.timers = opts.timers ?? realTimers;
  }

  /** Starts watching (no-op without a secretFile). A folder that cannot be watched is logged. */
  start(): void {
    const file = this.opts.webhook.secretFile;
    if (file === undefined || this.watcher !== undefined) return;
    try {
      this.watcher = watch(dirname(file), { persistent: false }, () => this.changed());
      this.watcher.on('error', (err) =>
        this.opts.logger.warn(
          { err, file },
          'webhook.secretFile: watching stopped; SIGHUP re-reads it',
        ),
      );
    } catch (err) {
      this.opts.logger.warn(
        { err, file },
        'webhook.secretFile: cannot watch its folder; SIGHUP re-reads it',
      );
    }
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** What keeps deliveries from being verified now, for `/status`; undefined when none. */
  problem: string | undefined;

  /** Reads the secret now; true when it changed. Problems are logged and kept, never thrown. */
  async reread(): Promise<boolean> {
    const read = await readWebhookSecret(this.opts.webhook);
    if ('problem' in read) {
      const first = this.problem !== read.problem;
      this.problem = read.problem;
      const keeping = this.opts.secrets.configured
        ? 'keeping the current secret'
        : 'every delivery is refused (401) until it can be read';
      if (first)
        this.opts.logger.warn(
          { file: this.opts.webhook.secretFile },
          `${read.problem}; ${keeping}`,
        );
      return false;
    }
    this.problem = undefined;
    const had = this.opts.secrets.configured;
    const changed = this.opts.secrets.set(read.secret);
    if (changed && had) {
      this.opts.logger.info(
        { file: this.opts.webhook.secretFile },
        'webhook secret rotated; the previous one verifies for maxAge',
      );
    }
    return changed;
  }

  private changed(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      void this.reread();
    }, SETTLE_MS);
  }
}
