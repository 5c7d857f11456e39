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

test('the scrubber finds overlapping and adjacent values, prefers the longest, and copes with many values sharing a prefix', () => {
  const scrub = new Scrubber();
  scrub.addAll(['abcd-1', 'abcd-12345', 'zzzz', 'secret-value']);
  assert.equal(scrub.scrub('x abcd-12345 y'), 'x [redacted] y', 'longest match wins');
  assert.equal(scrub.scrub('abcd-1abcd-1'), '[redacted][redacted]');
  assert.equal(scrub.scrub('zzzzzzzz'), '[redacted][redacted]');
  assert.equal(scrub.scrub('no match here'), 'no match here');
  assert.equal(scrub.scrub('pre secret-value'), 'pre [redacted]');
  for (let i = 0; i < 20_000; i++) scrub.add(`value-${i}-${'x'.repeat(8)}`);
  const line = `${'a log line without any value '.repeat(10)} value-19999-xxxxxxxx`;
  assert.ok(scrub.scrub(line).endsWith(' [redacted]'));
  assert.equal(scrub.scrub('value-1-xxxxxxx'), 'value-1-xxxxxxx', 'one character short: no match');
  assert.equal(scrub.size, 20_004);
});

test('the scrubber index keeps every length of a shared prefix: the longest match wins whatever the order values arrive in', () => {
  const scrub = new Scrubber();
  // same prefix, lengths added short → long → middle, and a duplicate
  scrub.addAll(['tok-a', 'tok-abcdefgh', 'tok-abc', 'tok-abc', 'tok-b']);
  assert.equal(scrub.size, 4);
  assert.equal(scrub.scrub('[tok-abcdefgh]'), '[[redacted]]');
  assert.equal(scrub.scrub('[tok-abcdefg]'), '[[redacted]defg]', 'falls back to the next length');
  assert.equal(scrub.scrub('tok-abcde'), '[redacted]de');
  assert.equal(scrub.scrub('x tok-b'), 'x [redacted]', 'same length as another value');
  assert.equal(scrub.scrub('tok-'), 'tok-', 'a prefix alone is not a value');
  assert.equal(scrub.scrub('tok-c tok-ab'), 'tok-c [redacted]b');
  // a value longer than what is left of the text at a prefix hit
  assert.equal(scrub.scrub('end tok-abcdef'), 'end [redacted]def');
});

test('with 10,000 known values every one is still found (the start filter never skips a value)', () => {
  const s = new Scrubber();
  const values: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    // Varied lengths, shared prefixes, non-ASCII starts: the filter hashes code units.
    const v = `${i % 3 === 0 ? 'pg://' : i % 3 === 1 ? 'é✓' : ''}${i.toString(36)}-${(i * 7919).toString(16)}`;
    values.push(v);
    s.add(v);
  }
  let missed = 0;
  for (const v of values) if (s.scrub(`<${v}>`) !== '<[redacted]>') missed++;
  assert.equal(missed, 0);
  assert.equal(s.scrub('nothing secret in this line at all'), 'nothing secret in this line at all');
});
