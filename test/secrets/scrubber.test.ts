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
