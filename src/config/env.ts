/**
 * `${VAR}` / `${VAR:-default}` substitution for reloader.yaml. Applied by the spec
 * loader to every string scalar, from an env object passed in (never read from `process.env`
 * here, so tests and `SIGHUP` reloads see exactly the environment they were given).
 *
 * Rules, shell-like but smaller:
 * - `${NAME}` — the value of NAME; unset → an error naming NAME (a set-but-empty NAME gives '');
 * - `${NAME:-text}` — the value of NAME, or `text` when NAME is unset or empty (no nesting:
 *   `text` ends at the first `}` and is taken literally);
 * - `$${` — a literal `${` (so templates or scripts can keep their own `${...}`);
 * - any other `$` is kept as is.
 *
 * Secrecy: a problem is described by the variable's name only, never by its value.
 */

export type EnvLike = Readonly<Record<string, string | undefined>>;

/** The result of expanding one string. `names` lists the variables read, in order. */
export type Expansion =
  | { ok: true; value: string; names: string[]; substituted: boolean }
  | {
      ok: false;
      problem: string;
      /** Unset variables (every one in `text`), when that is the problem. */ missing?: string[];
    };

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([^]*))?$/;

/**
 * Expands every `${...}` reference in `text` from `env`. Never throws: a malformed or unset
 * reference comes back as `{ ok: false, problem }` so the caller can attach the YAML path and
 * line. `substituted` is true when at least one reference (not just an escape) was replaced.
 */
export function expandEnv(text: string, env: EnvLike): Expansion {
  if (!text.includes('$')) return { ok: true, value: text, names: [], substituted: false };
  let out = '';
  const names: string[] = [];
  const missing: string[] = [];
  let index = 0;
  while (index < text.length) {
    if (text.startsWith('$${', index)) {
      out += '${';
      index += 3;
      continue;
    }
    if (!text.startsWith('${', index)) {
      out += text[index];
      index += 1;
      continue;
    }
    const end = text.indexOf('}', index + 2);
    if (end < 0) {
      return { ok: false, problem: 'unterminated "${" (write "$${" for a literal "${")' };
    }
    const match = REFERENCE.exec(text.slice(index + 2, end));
    if (match === null) {
      return {
        ok: false,
        problem:
          'malformed environment reference: expected ${NAME} or ${NAME:-default} (write "$${" for a literal "${")',
      };
    }
    const name = match[1] as string;
    const fallback = match[2];
    const value = env[name];
    names.push(name);
    if (fallback !== undefined) {
      out += value === undefined || value === '' ? fallback : value;
    } else if (value === undefined) {
      if (!missing.includes(name)) missing.push(name);
    } else {
      out += value;
    }
    index = end + 1;
  }
  if (missing.length > 0) {
    const list = missing.join(', ');
    return {
      ok: false,
      problem: `environment variable${missing.length > 1 ? 's' : ''} ${list} ${missing.length > 1 ? 'are' : 'is'} not set`,
      missing,
    };
  }
  return { ok: true, value: out, names, substituted: names.length > 0 };
}
