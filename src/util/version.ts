/**
 * The package's own version, read from the nearest `package.json` named `infisical-reloader`
 * above this module: found from `src/util/` (tsx, tests), from `dist/src/util/` (the build) and
 * from an installed package (`node_modules/infisical-reloader/dist/src/util/`).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The version string, or `0.0.0` when no package.json is found (never throws). */
export function packageVersion(): string {
  if (cached !== undefined) return cached;
  cached = '0.0.0';
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'infisical-reloader' && typeof pkg.version === 'string') {
        cached = pkg.version;
        break;
      }
    } catch {
      // no package.json here: keep walking up
    }
    dir = dirname(dir);
  }
  return cached;
}
