import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scrubber } from '../../src/secrets/scrubber.js';

test('a held credential is censored while held and forgotten when its slot moves on', () => {
  const s = new Scrubber();
  s.hold('access-token', 'tok-first-1111');
  assert.equal(s.scrub('a tok-first-1111 b'), 'a [redacted] b');
  s.hold('access-token', 'tok-second-2222');
  assert.equal(s.scrub('a tok-first-1111 b'), 'a tok-first-1111 b', 'the old token is forgotten');
  assert.equal(s.scrub('a tok-second-2222 b'), 'a [redacted] b');
  s.release('access-token');
  assert.equal(s.scrub('a tok-second-2222 b'), 'a tok-second-2222 b');
  assert.equal(s.size, 0, 'nothing left in the index');
});

test('a value that is also a secret value stays censored after its slot is released', () => {
  const s = new Scrubber();
  s.add('shared-value-3333');
  s.hold('webhook-secret', 'shared-value-3333');
  s.release('webhook-secret');
  assert.equal(s.scrub('x shared-value-3333'), 'x [redacted]');
  // and a credential held in two slots survives the release of one
  s.hold('a', 'twice-held-4444');
  s.hold('b', 'twice-held-4444');
  s.release('a');
  assert.equal(s.scrub('twice-held-4444'), '[redacted]');
  s.release('b');
  assert.equal(s.scrub('twice-held-4444'), 'twice-held-4444');
});

test('renewing a token 1,000 times keeps one token in the index, and the prefix index stays exact', () => {
  const s = new Scrubber();
  for (let i = 0; i < 1000; i++) s.add(`secret-value-${i.toString().padStart(4, '0')}`);
  for (let i = 0; i < 1000; i++) s.hold('access-token', `eyJtoken.${i}.sig-abcdef`);
  assert.equal(s.size, 1001);
  assert.equal(s.scrub('eyJtoken.999.sig-abcdef'), '[redacted]');
  assert.equal(s.scrub('eyJtoken.998.sig-abcdef'), 'eyJtoken.998.sig-abcdef');
  assert.equal(s.scrub('v=secret-value-0500;'), 'v=[redacted];');
});

test('two runtimes never see each other’s values', () => {
  const a = new Scrubber();
  const b = new Scrubber();
  a.add('only-in-a-5555');
  assert.equal(b.scrub('only-in-a-5555'), 'only-in-a-5555');
});

test('owned fields: a client address or the Infisical URL that equals some secret is still printed; any other shape or field is scrubbed', async () => {
  const { createLogger } = await import('../../src/logger.js');
  const { Writable } = await import('node:stream');
  const { ReloaderError } = await import('../../src/errors.js');
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const scrubber = new Scrubber();
  // Secret values that happen to look like what the reloader prints about itself.
  scrubber.addAll(['127.0.0.1', 'http://127.0.0.1:8080/api', 'hunter2-password']);
  const logger = createLogger({ destination, scrubber });
  logger.info({ route: 'webhook', status: 200, remote: '127.0.0.1' }, 'event accepted');
  logger.warn(
    {
      infisical: 'http://127.0.0.1:8080/api',
      err: new ReloaderError('RLD_ERR_INFISICAL_NETWORK', 'connection failed', {
        details: { baseUrl: 'http://127.0.0.1:8080/api' },
      }),
    },
    'fetch failed',
  );
  logger.info(
    { remote: 'hunter2-password', infisical: 'http://x/?q=hunter2-password', other: '127.0.0.1' },
    'from 127.0.0.1',
  );
  const [accepted, failed, hostile] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(accepted?.['remote'], '127.0.0.1', 'a client address is the reloader’s own field');
  assert.equal(failed?.['infisical'], 'http://127.0.0.1:8080/api');
  assert.equal(
    (failed?.['err'] as Record<string, unknown>)['baseUrl'],
    'http://127.0.0.1:8080/api',
  );
  assert.equal(hostile?.['remote'], '[redacted]', 'not an IP address: scrubbed');
  assert.equal(hostile?.['infisical'], 'http://x/?q=[redacted]', 'a URL with a query: scrubbed');
  assert.equal(hostile?.['other'], '[redacted]', 'any other field: scrubbed');
  assert.equal(hostile?.['msg'], 'from [redacted]', 'message text: scrubbed');
});
