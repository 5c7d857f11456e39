/**
 * The one place that reads system error codes (`ENOENT`, `ECONNREFUSED`, `EPERM`,
 * `UND_ERR_*`) off errors, which Node and undici attach as `code` — sometimes on the error
 * itself, sometimes on its `cause`.
 */

/** The string `code` of `err`, or of its `cause` when `err` has none; undefined otherwise. */
export function errorCode(err: unknown): string | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const own = (err as { code?: unknown }).code;
  if (typeof own === 'string') return own;
  const cause = (err as { cause?: unknown }).cause;
  if (cause !== null && typeof cause === 'object') {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** True when `err` (or its cause) carries one of `codes`. */
export function hasErrorCode(err: unknown, ...codes: string[]): boolean {
  const code = errorCode(err);
  return code !== undefined && codes.includes(code);
}

/** ` (CODE)` for messages, or '' when `err` has no code: "cannot read /x (EACCES)". */
export function codeSuffix(err: unknown): string {
  const code = errorCode(err);
  return code === undefined ? '' : ` (${code})`;
}
