/**
 * Small, pure checks and conversions for single spec values (modes, listen addresses, secret
 * paths, signals, URLs). Each returns the converted value or throws a plain `Error` whose message
 * is the problem; `build.ts` turns it into a SpecError with file, YAML path and line.
 */
import { constants } from 'node:os';

/** `"0600"`, `"600"`, `"0o640"` → 0o600 / 0o600 / 0o640. The schema already checked the form. */
export function parseMode(text: string): number {
  const match = /^(?:0o)?([0-7]{3,4})$/.exec(text);
  if (match === null) throw new Error(`invalid mode "${text}"; use an octal string such as "0600"`);
  return Number.parseInt(match[1] as string, 8);
}

/**
 * `0.0.0.0:8080`, `[::]:8080`, `127.0.0.1:0`, `:8080` (all IPv4 interfaces) or a bare port
 * (number or text) → `{ host, port }`. Port 0 is allowed: the OS picks one (tests, `dev`).
 */
export function parseListen(value: string | number): { host: string; port: number } {
  const text = String(value).trim();
  const match =
    /^(\d+)$/.exec(text) ??
    /^\[([0-9A-Fa-f:.%\w]+)\]:(\d+)$/.exec(text) ??
    /^([^:[\]\s]*):(\d+)$/.exec(text);
  if (match === null) {
    throw new Error('listen must be host:port, [ipv6]:port, :port or a port number');
  }
  const host = match.length === 2 ? '' : (match[1] as string);
  const port = Number(match[match.length - 1]);
  if (!Number.isInteger(port) || port > 65535)
    throw new Error(`listen port ${port} is out of range 0-65535`);
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** Infisical secret path: leading `/`, no trailing `/`, no empty segments; the root is `/`. */
export function normaliseSecretPath(text: string): string {
  const segments = text.split('/').filter((s) => s !== '');
  return '/' + segments.join('/');
}

/** `HUP`, `SIGHUP`, `hup` → `HUP`; anything node cannot send is refused. */
export function parseSignal(text: string): string {
  const name = text.toUpperCase().replace(/^SIG/, '');
  if (!Object.prototype.hasOwnProperty.call(constants.signals, `SIG${name}`)) {
    throw new Error(`unknown signal "${text}" (e.g. HUP, USR1, TERM)`);
  }
  return name;
}

/** An http(s) URL; `stripSlash` removes trailing slashes (base URLs such as `.../api`). */
export function parseHttpUrl(text: string, stripSlash = false): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error('must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error('must be an absolute http:// or https:// URL');
  }
  return stripSlash ? text.replace(/\/+$/, '') : text;
}

/** Recursively freezes plain objects and arrays; returns the same value, typed as readonly. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}
