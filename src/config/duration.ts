/**
 * Durations in reloader.yaml are strings with a unit — `250ms`, `5s`, `2m`, `1h`, `7d` — or a
 * compound of them such as `1h30m` (the Go / consul-template habit). A bare number is refused:
 * `timeout: 10` could mean seconds or milliseconds, and guessing wrong is a silent outage.
 */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
type Unit = keyof typeof UNIT_MS;

/** One `<number><unit>` part; `ms` is tried before `m` and `s` by the alternation order. */
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/** What a valid duration looks like, for error messages. */
export const DURATION_HINT =
  'use a number with a unit: 250ms, 5s, 2m, 1h, 7d, or a compound such as 1h30m';

/**
 * Parses a duration string into whole milliseconds (fractions are rounded: `1.5s` → 1500).
 * Throws a plain `Error` whose message never repeats more than the input: the caller (the spec
 * loader) turns it into a SpecError with file, YAML path and line.
 */
export function parseDuration(text: string): number {
  if (typeof text !== 'string') throw new Error(`duration must be a string; ${DURATION_HINT}`);
  if (/^\d+(\.\d+)?$/.test(text)) {
    throw new Error(`duration "${text}" has no unit; ${DURATION_HINT}`);
  }
  let total = 0;
  let index = 0;
  PART.lastIndex = 0;
  while (index < text.length) {
    PART.lastIndex = index;
    const match = PART.exec(text);
    if (match === null) break;
    total += Number(match[1]) * UNIT_MS[match[2] as Unit];
    index = PART.lastIndex;
  }
  if (text.length === 0 || index !== text.length) {
    throw new Error(`invalid duration "${text}"; ${DURATION_HINT}`);
  }
  return Math.round(total);
}

/**
 * Formats milliseconds as the shortest compound duration that `parseDuration` reads back to the
 * same value (`5400000` → `1h30m`, `1500` → `1s500ms`, `0` → `0ms`). Used in logs and messages.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0)
    throw new Error('formatDuration needs a finite, non-negative number');
  let rest = Math.round(ms);
  if (rest === 0) return '0ms';
  let out = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const size = UNIT_MS[unit];
    const count = Math.floor(rest / size);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * size;
    }
  }
  return out;
}
