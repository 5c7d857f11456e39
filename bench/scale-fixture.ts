/**
 * The scale fixture shared by bench 4 (in-process) and bench 5 (the daemon as a child process):
 * 10,000 secrets in one folder and 500 targets, each with one template file that reads 20 keys.
 *
 * Why 500 targets of one file each, not one target of 500 files: a target is the unit of
 * re-rendering (its files are committed and reloaded as a set), so "only the dependents
 * re-render" can only be observed with one template per target — which is also how a real
 * deployment looks (one config file per app). Target `t` reads keys `16t … 16t+19`: neighbours
 * share 4 keys, so a key read by two templates exists (e.g. S00017: t000 and t001), a key read
 * by one exists (S00008), and keys above S08003 are read by none.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomValue, specHeader } from './lib.js';

export const SECRETS = 10_000;
export const TEMPLATES = 500;
export const KEYS_PER_TEMPLATE = 20;
export const STRIDE = 16;

export const keyName = (i: number): string => `S${String(i).padStart(5, '0')}`;
export const targetName = (t: number): string => `t${String(t).padStart(3, '0')}`;

/** Key indexes template `t` reads. */
export function keysOf(t: number): number[] {
  return Array.from({ length: KEYS_PER_TEMPLATE }, (_, j) => t * STRIDE + j);
}

/** Templates that read key `k`: those with 16t ≤ k ≤ 16t + 19. */
export function dependentsOf(k: number): number[] {
  const out: number[] = [];
  const first = Math.max(0, Math.ceil((k - KEYS_PER_TEMPLATE + 1) / STRIDE));
  const last = Math.min(TEMPLATES - 1, Math.floor(k / STRIDE));
  for (let t = first; t <= last; t += 1) out.push(t);
  return out;
}

/** The output of template `t` for `secrets`, exactly as the template renders it. */
export function renderExpected(t: number, secrets: ReadonlyMap<string, string>): string {
  let out = '';
  for (let j = 0; j < KEYS_PER_TEMPLATE; j += 1) {
    const name = keyName(t * STRIDE + j);
    out += `${name}=${secrets.get(name) ?? ''}\n`;
  }
  return out;
}

export function scaleSecrets(): Map<string, string> {
  const secrets = new Map<string, string>();
  for (let i = 0; i < SECRETS; i += 1) secrets.set(keyName(i), randomValue(32));
  return secrets;
}

/**
 * Write `tpl/tNNN.hbs` and `reloader.yaml` into `dir` (outputs go to `dir/out/tNNN.conf`);
 * returns the spec text and path.
 */
export async function writeScaleFixture(
  dir: string,
  infisicalUrl: string,
  wait = '{ min: 0ms, max: 0ms }',
): Promise<{ specFile: string; specYaml: string; outDir: string }> {
  await mkdir(join(dir, 'tpl'), { recursive: true });
  await mkdir(join(dir, 'out'), { recursive: true });
  const targets: string[] = [];
  for (let t = 0; t < TEMPLATES; t += 1) {
    const body = keysOf(t)
      .map((k) => `${keyName(k)}={{secrets.${keyName(k)}}}\n`)
      .join('');
    await writeFile(join(dir, 'tpl', `${targetName(t)}.hbs`), body);
    targets.push(
      `  - name: ${targetName(t)}\n    files:\n      - template: tpl/${targetName(t)}.hbs\n        destination: out/${targetName(t)}.conf\n`,
    );
  }
  const specYaml = specHeader(infisicalUrl, wait) + targets.join('');
  const specFile = join(dir, 'reloader.yaml');
  await writeFile(specFile, specYaml);
  return { specFile, specYaml, outDir: join(dir, 'out') };
}
