import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { createRedactor } from '../../src/template/context.js';
import { compileTemplate } from '../../src/template/index.js';
import { ReloaderError } from '../../src/errors.js';

/** Values no legitimate message contains; each failing render below has one of them at hand. */
const CANARY = 'CANARY-7f3a9c-value';
const SHORT = 'q9'; // a short secret value is redacted from foreign text too
const ENV_CANARY = 'ENVCANARY-0b1d2e3f';

const secrets = new Map<string, string>([
  ['BAD_B64', `${CANARY}!!`],
  ['BAD_UTF8', Buffer.from([0xc3, 0x28, 0xa0, 0xa1]).toString('base64')],
  ['SURROGATE', `${CANARY}\ud800`],
  ['NEWLINE', `${CANARY}\n${CANARY}`],
  ['TEXT', CANARY],
  ['SHORT', SHORT],
]);
const env = { TOKENISH: ENV_CANARY };

/** Every text an error can reach a log, /status or a trace through. */
function everyText(err: ReloaderError): string {
  return [
    err.message,
    String(err),
    err.stack ?? '',
    JSON.stringify(err.toJSON()),
    JSON.stringify(err.details),
    inspect(err, { depth: 10 }),
  ].join('\n');
}

const failing: Array<[string, string]> = [
  ['base64Decode of a bad value', '{{base64Decode secrets.BAD_B64}}'],
  ['base64Decode to non-UTF-8 bytes', '{{base64Decode secrets.BAD_UTF8}}'],
  ['urlEncode of a lone surrogate', '{{urlEncode secrets.SURROGATE}}'],
  ['quote of a multiline value', '{{quote secrets.NEWLINE}}'],
  ['indent with a value as width', '{{indent secrets.TEXT secrets.TEXT}}'],
  ['a value used as a key name', '{{secret secrets.TEXT}}'],
  ['a value used as a lookup field', '{{lookup target secrets.TEXT}}'],
  ['a path through a value', '{{secrets.TEXT.length.x}}'],
  ['a property of a value', '{{secrets.TEXT.foo}}'],
  ['each item property', '{{#each secrets}}{{this.foo}}{{/each}}'],
  ['a property of an env value', '{{#each env}}{{this.foo}}{{/each}}'],
  ['a property of a short value', '{{secrets.SHORT.foo}}'],
  ['a missing key after reading values', '{{secrets.TEXT}}{{secrets.NOPE}}'],
];

describe('no secret value in any template error (canaries)', () => {
  for (const [label, source] of failing) {
    it(label, () => {
      let caught: unknown;
      try {
        compileTemplate('canary.hbs', source).render({ secrets, env, target: { name: 't' } });
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof ReloaderError, `expected a ReloaderError, got ${String(caught)}`);
      assert.ok(['RLD_ERR_RENDER', 'RLD_ERR_MISSING_KEY'].includes(caught.code), caught.code);
      assert.match(caught.message, /^template "canary\.hbs"/);
      const text = everyText(caught);
      assert.ok(!text.includes(CANARY), `canary leaked:\n${text}`);
      assert.ok(!text.includes(ENV_CANARY), `env canary leaked:\n${text}`);
      assert.ok(!/'q9'|"q9"| q9$/m.test(text), `short value leaked:\n${text}`);
    });
  }

  it('a failing helper is named in the message and details', () => {
    try {
      compileTemplate('c', 'x\n{{urlEncode secrets.SURROGATE}}').render({
        secrets,
        env,
        target: { name: 't' },
      });
      assert.fail('should have thrown');
    } catch (err) {
      assert.ok(err instanceof ReloaderError);
      assert.equal(err.details.helper, 'urlEncode');
      assert.equal(err.details.line, 2);
      assert.match(err.message, /^template "c" line 2: helper "urlEncode" failed: URI malformed$/);
    }
  });
});

describe('createRedactor', () => {
  const ctx = {
    secrets: new Map([
      ['a', 'abc'],
      ['b', 'abcdef'],
      ['c', 'x.y*z'],
      ['e', ''],
    ]),
    env: { SHORT: 'on', LONG: 'longer-than-8', UNSET: undefined },
    target: { name: 't' },
  };
  const redact = createRedactor(ctx);

  it('replaces every secret value, longest first, in one pass', () => {
    assert.equal(redact('abcdef abc x.y*z xxyyz'), '[redacted] [redacted] [redacted] xxyyz');
  });

  it('replaces long env values but leaves short ones', () => {
    assert.equal(redact('longer-than-8 on'), '[redacted] on');
  });

  it('does not re-match inside its own replacement', () => {
    const r = createRedactor({
      secrets: new Map([
        ['k', 'e'],
        ['j', 'red'],
      ]),
      env: {},
      target: { name: 't' },
    });
    assert.equal(r('e red'), '[redacted] [redacted]');
  });

  it('is the identity when there is nothing to redact', () => {
    const r = createRedactor({ secrets: new Map(), env: {}, target: { name: 't' } });
    assert.equal(r('anything'), 'anything');
  });
});
