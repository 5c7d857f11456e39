/**
 * The webhook secrets that verify deliveries now. A rotated secret (a new `secretFile`, read on
 * SIGHUP or when the file changes) becomes the current one, and the one it replaced still
 * verifies for `maxAge`: a delivery Infisical signed just before the rotation, or one still
 * being relayed between replicas, is not refused. Every secret is held in the runtime's scrubber
 * while it verifies, and forgotten after.
 */
import type { Scrubber } from '../secrets/scrubber.js';

export class WebhookSecrets {
  private current: string | undefined;
  private previous: { secret: string; untilMs: number } | undefined;

  constructor(private readonly opts: { maxAgeMs: number; scrubber: Scrubber; now: () => number }) {}

  /**
   * Make `secret` the current one. The one it replaces verifies until `maxAge` from now.
   * Returns true when the secret changed.
   */
  set(secret: string | undefined): boolean {
    if (secret === this.current) return false;
    const old = this.current;
    this.current = secret;
    this.opts.scrubber.hold('webhook-secret', secret);
    if (old !== undefined) {
      this.previous = { secret: old, untilMs: this.opts.now() + this.opts.maxAgeMs };
      this.opts.scrubber.hold('webhook-secret-previous', old);
    }
    return true;
  }

  /** A secret is configured (deliveries can be verified). */
  get configured(): boolean {
    return this.current !== undefined;
  }

  /** The secrets that verify at `nowMs`: the current one, then the previous while it lasts. */
  candidates(nowMs: number): string[] {
    const out: string[] = [];
    if (this.current !== undefined) out.push(this.current);
    const p = this.previous;
    if (p !== undefined) {
      if (nowMs <= p.untilMs) out.push(p.secret);
      else {
        this.previous = undefined;
        this.opts.scrubber.release('webhook-secret-previous');
      }
    }
    return out;
  }
}
