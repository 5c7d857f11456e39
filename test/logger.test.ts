import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Scrubber, createLogger } from '../src/logger.js';
import { ReloaderError } from '../src/errors.js';

function capture(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      text
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test('credential fields are redacted by name at any depth the paths cover', () => {
  const out = capture();
  const log = createLogger({ destination: out.stream, scrubber: new Scrubber() });
  log.info(
    {
      accessToken: 'tok-123456',
      nested: { jwt: 'jwt-abcdef', clientSecret: 'cs-987654' },
      secretValue: 'v-13579',
    },
    'login',
  );
  const [line] = out.lines();
  assert.equal(line?.accessToken, '[redacted]');
  assert.deepEqual(line?.nested, { jwt: '[redacted]', clientSecret: '[redacted]' });
  assert.equal(line?.secretValue, '[redacted]');
});

test('known secret values are scrubbed from messages, fields and errors; short values are left alone', () => {
  const scrub = new Scrubber();
  scrub.add('hunter2-canary');
  scrub.add('on');
  const out = capture();
  const log = createLogger({ destination: out.stream, scrubber: scrub });
  log.warn(
    { detail: 'stderr said hunter2-canary', list: ['x hunter2-canary'] },
    'value hunter2-canary leaked?',
  );
  log.error(
    {
      err: new ReloaderError('RLD_ERR_RENDER', 'helper failed on hunter2-canary', {
        details: { target: 't' },
      }),
    },
    'render failed',
  );
  const text = JSON.stringify(out.lines());
  assert.ok(!text.includes('hunter2-canary'));
  assert.match(text, /stderr said \[redacted\]/);
  assert.match(text, /"code":"RLD_ERR_RENDER"/);
  assert.match(text, /"target":"t"/);
  assert.equal(
    scrub.scrub('turn it on'),
    'turn it on',
    'values shorter than 4 characters are not scrubbed',
  );
});

test('an error keeps its message and the code of its cause, never the cause message', () => {
  const out = capture();
  const log = createLogger({ destination: out.stream, scrubber: new Scrubber() });
  const cause = Object.assign(new Error('connect ECONNREFUSED with some body text'), {
    code: 'ECONNREFUSED',
  });
  log.error(
    { err: new ReloaderError('RLD_ERR_INFISICAL_NETWORK', 'Infisical unreachable', { cause }) },
    'fetch failed',
  );
  const [line] = out.lines();
  const err = line?.err as Record<string, unknown>;
  assert.equal(err.message, 'Infisical unreachable');
  assert.equal(err.causeCode, 'ECONNREFUSED');
  assert.ok(!JSON.stringify(line).includes('some body text'));
});
