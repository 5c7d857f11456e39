/**
 * One child logger per (logger, target), made once and reused by every pass of that target.
 *
 * A pino child serialises its bindings when it is created; making one per pass (runner) and
 * another per commit put two of them, ≈ 0.03 ms, on the path of every webhook, and the second
 * one repeated the `target` key in each line. Entries live as long as their parent logger
 * (a WeakMap): a spec reloaded on SIGHUP with other target names does not keep old ones alive
 * beyond the logger they hang from, and a logger has at most one entry per target name.
 */
import type { Logger } from '../logger.js';

const children = new WeakMap<Logger, Map<string, Logger>>();

/** `parent.child({ target })`, the same object on every call for the same pair. */
export function targetLogger(parent: Logger, target: string): Logger {
  let byTarget = children.get(parent);
  if (byTarget === undefined) {
    byTarget = new Map();
    children.set(parent, byTarget);
  }
  let child = byTarget.get(target);
  if (child === undefined) {
    child = parent.child({ target });
    byTarget.set(target, child);
  }
  return child;
}
