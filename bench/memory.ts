/**
 * Bench 5: memory. The daemon runs as a child process (the built CLI, `run --config`), so its
 * RSS is its own; the baseline is a bare `node -e "setInterval(()=>{},1000)"` started the same way
 * (same node, `--expose-gc --import gc-preload`, same environment). Each is read from
 * /proc/<pid>/status after settling and two full GCs.
 *
 * Idle: the one-target spec of bench 1, ready and settled. After (4): the scale fixture (10,000
 * secrets, 500 targets) after its first full render and the 30 key changes of bench 4.
 */
import { join } from 'node:path';
import { request } from 'undici';
import { startLocalInfisical } from '../src/dev/local-infisical.js';
import { writeFile, mkdir } from 'node:fs/promises';
import {
  benchMain,
  figure,
  log,
  mainJs,
  now,
  randomValue,
  seed,
  sender,
  signed,
  specHeader,
  tempDir,
  valueEvent,
} from './lib.js';
import { settledRss, spawnNode, waitUntil, type Proc } from './procs.js';
import { SECRETS, TEMPLATES, keyName, scaleSecrets, writeScaleFixture } from './scale-fixture.js';

async function startCliDaemon(specFile: string): Promise<{ proc: Proc; origin: string }> {
  const proc = spawnNode([mainJs, 'run', '--config', specFile], { gc: true });
  const origin = await waitUntil(
    () => /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(proc.stderr())?.[1],
    'the daemon to listen',
    60_000,
  );
  const admin = /"admin":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(proc.stderr())?.[1] ?? origin;
  await waitUntil(
    async () => {
      const res = await request(`${admin}/readyz`);
      await res.body.dump();
      return res.statusCode === 200;
    },
    'the daemon to be ready',
    120_000,
  );
  return { proc, origin };
}

benchMain(async () => {
  const started = now();
  const tmp = await tempDir();
  const secrets = scaleSecrets();
  const local = await startLocalInfisical({ seed: seed(secrets), webhookDelayMs: 0 });

  log('bare node');
  const bare = spawnNode(['-e', 'setInterval(()=>{},1000)'], { gc: true });
  await waitUntil(() => bare.child.pid, 'bare node to start');
  const bareRss = await settledRss(bare);
  await bare.kill();

  log('idle daemon (one target, a folder of 10 secrets)');
  const smallSecrets = new Map([...secrets].slice(0, 10));
  const smallLocal = await startLocalInfisical({ seed: seed(smallSecrets), webhookDelayMs: 0 });
  const small = join(tmp.dir, 'small');
  await mkdir(join(small, 'out'), { recursive: true });
  const smallSpec = join(small, 'reloader.yaml');
  await writeFile(
    smallSpec,
    specHeader(smallLocal.url, '{ min: 0ms, max: 0ms }') +
      `  - name: k\n    files:\n      - contents: "{{secrets.${keyName(1)}}}\\n"\n        destination: out/k.txt\n`,
  );
  const idle = await startCliDaemon(smallSpec);
  const idleRss = await settledRss(idle.proc);
  await idle.proc.kill();
  await smallLocal.close();

  log(`scale daemon (${SECRETS} secrets, ${TEMPLATES} targets)`);
  const fixture = await writeScaleFixture(join(tmp.dir, 'scale'), local.url);
  const t0 = now();
  const scale = await startCliDaemon(fixture.specFile);
  const readyMs = now() - t0;
  const readyRss = await settledRss(scale.proc, 500);
  const client = sender(scale.origin);
  for (let i = 0; i < 30; i += 1) {
    const t = (i * 37 + 11) % (TEMPLATES - 1);
    const k = i < 20 ? t * 16 + 17 : i < 25 ? t * 16 + 8 : SECRETS - 1 - i;
    const status = await client.send(
      '/infisical/webhook',
      signed(valueEvent(keyName(k), randomValue(32))),
    );
    if (status !== 200) throw new Error(`webhook answered ${status}`);
  }
  await client.close();
  const afterRss = await settledRss(scale.proc);
  await scale.proc.kill();
  await local.close();
  await tmp.remove();

  return {
    id: 5,
    title: 'Memory (RSS of the daemon as a child process)',
    durationMs: now() - started,
    figures: [
      figure('idle RSS, one target, 10 secrets', idleRss.rssMiB, 'MiB', {
        baseline: { name: 'bare node, same flags', value: bareRss.rssMiB },
        target: '≤ 1.5× bare node',
        met: idleRss.rssMiB <= 1.5 * bareRss.rssMiB,
      }),
      figure('RSS after (4): 10,000 secrets, 500 targets, 30 changes', afterRss.rssMiB, 'MiB', {
        baseline: { name: 'bare node, same flags', value: bareRss.rssMiB },
        target: '< 100 MiB',
        met: afterRss.rssMiB < 100,
      }),
      figure('RSS right after the first full render of (4)', readyRss.rssMiB, 'MiB'),
      figure('peak RSS (VmHWM) during (4)', afterRss.hwmMiB, 'MiB'),
    ],
    notes: [
      `RSS read from /proc/<pid>/status after settling and two global.gc() (node --expose-gc, SIGUSR2 from a preload, same for all); the scale daemon was ready after ${readyMs.toFixed(0)} ms`,
    ],
  };
});
