import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { out, renderError } from './fixtures.js';

const pem = generateKeyPairSync('ec', {
  namedCurve: 'prime256v1',
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
}).privateKey;

describe('secret', () => {
  it('returns the value of a key given by name', () => {
    assert.equal(out('{{secret "A"}}', { secrets: { A: 'x y' } }), 'x y');
  });

  it('takes a key name computed at render time, e.g. from env', () => {
    assert.equal(out('{{secret env.WHICH}}', { secrets: { B: 'b' }, env: { WHICH: 'B' } }), 'b');
    const err = renderError('{{secret env.WHICH}}', { env: { WHICH: 'C' } }, 'RLD_ERR_MISSING_KEY');
    assert.equal(err.details.key, 'C');
  });

  it('never echoes a computed key name that is a secret value', () => {
    const err = renderError('{{secret secrets.A}}', { secrets: { A: 'B' } }, 'RLD_ERR_MISSING_KEY');
    assert.equal(err.details.key, '[redacted]');
    assert.doesNotMatch(err.message, /"B"/);
  });

  it('rejects a key that is not a name', () => {
    renderError('{{secret true}}', {}, 'RLD_ERR_RENDER');
  });
});

describe('default and secretOr', () => {
  it('default keeps a present, non-empty value of any kind', () => {
    assert.equal(
      out('{{default secrets.A "f"}} {{default 0 "f"}} {{default false "f"}}', {
        secrets: { A: ' ' },
      }),
      '  0 false',
    );
  });

  it('default falls back on undefined, null and the empty string', () => {
    assert.equal(
      out('{{default secrets.NO "f"}}{{default null "g"}}{{default "" "h"}}', {}),
      'fgh',
    );
  });

  it('default may fall back to another secret, and to an empty string', () => {
    assert.equal(
      out('{{default secrets.NEW secrets.OLD}}[{{default secrets.NO ""}}]', {
        secrets: { OLD: 'old' },
      }),
      'old[]',
    );
  });

  it('secretOr rejects a non-name key', () => {
    renderError('{{secretOr null "x"}}', {}, 'RLD_ERR_RENDER');
  });
});

describe('base64 and base64Decode', () => {
  it('encodes UTF-8 text', () => {
    assert.equal(
      out('{{base64 secrets.A}}', { secrets: { A: 'user:päss' } }),
      Buffer.from('user:päss').toString('base64'),
    );
    assert.equal(out('[{{base64 secrets.E}}]', { secrets: { E: '' } }), '[]');
  });

  it('block form encodes the rendered block (HTTP basic auth)', () => {
    assert.equal(
      out('{{#base64}}{{secrets.U}}:{{secrets.P}}{{/base64}}', { secrets: { U: 'u', P: 'p' } }),
      Buffer.from('u:p').toString('base64'),
    );
  });

  it('decodes standard, URL-safe, unpadded and line-wrapped base64', () => {
    const text = 'hello ✓ world??>>';
    const std = Buffer.from(text).toString('base64');
    const url = Buffer.from(text).toString('base64url');
    const wrapped = std.replace(/(.{8})/g, '$1\n');
    for (const enc of [std, url, std.replace(/=+$/, ''), wrapped]) {
      assert.equal(out('{{base64Decode secrets.A}}', { secrets: { A: enc } }), text, enc);
    }
  });

  it('rejects text that is not base64, and bytes that are not UTF-8', () => {
    for (const bad of ['not base64!', 'QUJD=QUJD', 'A', 'QUJDRA===', '****']) {
      const err = renderError(
        '{{base64Decode secrets.A}}',
        { secrets: { A: bad } },
        'RLD_ERR_RENDER',
      );
      assert.match(err.message, /helper "base64Decode": the value is not valid base64/, bad);
      assert.equal(err.details.helper, 'base64Decode');
    }
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80]).toString('base64');
    const err = renderError(
      '{{base64Decode secrets.A}}',
      { secrets: { A: binary } },
      'RLD_ERR_RENDER',
    );
    assert.match(err.message, /not UTF-8 text/);
  });

  it('a PEM key survives base64 → base64Decode unchanged, through a second template too', () => {
    const encoded = out('{{base64 secrets.KEY}}', { secrets: { KEY: pem } });
    assert.doesNotMatch(encoded, /\n/);
    assert.equal(out('{{base64Decode secrets.KEY_B64}}', { secrets: { KEY_B64: encoded } }), pem);
    assert.equal(out('{{base64Decode (base64 secrets.KEY)}}', { secrets: { KEY: pem } }), pem);
  });

  it('round-trips any well-formed unicode text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
        assert.equal(out('{{base64Decode (base64 secrets.S)}}', { secrets: { S: s } }), s);
      }),
      { numRuns: 200 },
    );
  });
});

describe('json', () => {
  it('prints a string as a JSON string literal', () => {
    const v = 'a "quoted"\nline\\ and ✓ \u0001';
    // `}}}` would close a triple-stash: JSON templates need a space before the final brace.
    const rendered = out('{"password": {{json secrets.P}} }', { secrets: { P: v } });
    assert.deepEqual(JSON.parse(rendered), { password: v });
  });

  it('prints literals, target and the whole secrets map (sorted keys)', () => {
    assert.equal(
      out('{{json 5}} {{json true}} {{json target}}', { target: 'pg' }),
      '5 true {"name":"pg"}',
    );
    assert.equal(out('{{json secrets}}', { secrets: { b: '2', a: '1' } }), '{"a":"1","b":"2"}');
  });

  it('block form quotes the rendered block', () => {
    assert.equal(
      out('{{#json}}{{secrets.U}}:{{secrets.P}}{{/json}}', { secrets: { U: 'u', P: 'p"' } }),
      '"u:p\\""',
    );
  });

  it('refuses the whole context', () => {
    renderError('{{json this}}', {}, 'RLD_ERR_RENDER');
  });

  it('keys such as __proto__ come out as plain keys', () => {
    assert.equal(out('{{json secrets}}', { secrets: { ['__proto__']: 'x' } }), '{"__proto__":"x"}');
  });
});

describe('urlEncode, trim, lower, upper, sha256', () => {
  it('urlEncode escapes everything but the unreserved set', () => {
    assert.equal(
      out('postgres://app:{{urlEncode secrets.P}}@db/app', { secrets: { P: 'p@ss:w/rd?#&= ✓' } }),
      `postgres://app:${encodeURIComponent('p@ss:w/rd?#&= ✓')}@db/app`,
    );
  });

  it('urlEncode of a lone surrogate is a render error', () => {
    const err = renderError(
      '{{urlEncode secrets.P}}',
      { secrets: { P: 'ab\ud800cd' } },
      'RLD_ERR_RENDER',
    );
    assert.match(err.message, /helper "urlEncode" failed/);
  });

  it('trim, lower, upper work on unicode and empty values', () => {
    const ctx = { secrets: { A: '  \tÄbc Straße\n', E: '' } };
    assert.equal(
      out(
        '[{{trim secrets.A}}][{{lower secrets.A}}][{{upper (trim secrets.A)}}][{{upper secrets.E}}]',
        ctx,
      ),
      '[Äbc Straße][  \täbc straße\n][ÄBC STRASSE][]',
    );
  });

  it('sha256 is the hex digest of the UTF-8 bytes', () => {
    assert.equal(
      out('{{sha256 "abc"}}', {}),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    assert.equal(
      out('{{sha256 secrets.A}}', { secrets: { A: 'ключ' } }),
      createHash('sha256').update('ключ', 'utf8').digest('hex'),
    );
    assert.equal(
      out('{{sha256 secrets.E}}', { secrets: { E: '' } }),
      createHash('sha256').update('').digest('hex'),
    );
  });

  it('numbers and booleans are printed; objects are rejected', () => {
    assert.equal(out('{{upper true}} {{base64 12}}', {}), 'TRUE MTI=');
    const err = renderError('{{upper env}}', {}, 'RLD_ERR_RENDER');
    assert.match(err.message, /argument 1 is the env object, not a text value/);
  });
});

describe('quote (pgbouncer userlist fields)', () => {
  it('wraps in double quotes and doubles inner quotes', () => {
    assert.equal(
      out('{{quote "app"}} {{quote secrets.P}}', { secrets: { P: 'a"b""c' } }),
      '"app" "a""b""""c"',
    );
    assert.equal(out('{{quote secrets.E}}', { secrets: { E: '' } }), '""');
  });

  it('refuses a line break, which would split the userlist line', () => {
    const err = renderError('{{quote secrets.P}}', { secrets: { P: 'a\nb' } }, 'RLD_ERR_RENDER');
    assert.match(err.message, /line break/);
  });
});

describe('indent', () => {
  it('indents every non-empty line of a multiline PEM value and keeps its trailing newline', () => {
    const rendered = out('tls.key: |\n{{indent 4 secrets.KEY}}', { secrets: { KEY: pem } });
    const body = rendered.slice('tls.key: |\n'.length);
    assert.ok(body.endsWith('-----END PRIVATE KEY-----\n'));
    const lines = body.split('\n');
    assert.equal(lines.at(-1), '', 'the final newline stays, with no trailing spaces after it');
    for (const line of lines.slice(0, -1)) assert.match(line, /^ {4}\S/);
    assert.equal(body.replace(/^ {4}/gm, ''), pem);
  });

  it('leaves empty lines empty and handles CRLF and empty values', () => {
    assert.equal(
      out('{{indent 2 secrets.A}}', { secrets: { A: 'a\n\nb\r\n\r\nc' } }),
      '  a\n\n  b\r\n\r\n  c',
    );
    assert.equal(out('[{{indent 2 secrets.E}}]', { secrets: { E: '' } }), '[]');
    assert.equal(out('{{indent 0 secrets.A}}', { secrets: { A: 'a\nb' } }), 'a\nb');
  });

  it('block form indents the rendered block', () => {
    assert.equal(
      out('{{#indent 2}}a: {{secrets.A}}\nb: 2{{/indent}}', { secrets: { A: '1' } }),
      '  a: 1\n  b: 2',
    );
  });

  it('rejects a width that is not a non-negative integer', () => {
    for (const src of [
      '{{indent "4" secrets.A}}',
      '{{indent -1 secrets.A}}',
      '{{indent 1.5 secrets.A}}',
      '{{indent secrets.A secrets.A}}',
    ]) {
      const err = renderError(src, { secrets: { A: 'x' } }, 'RLD_ERR_RENDER');
      assert.match(
        err.message,
        /helper "indent": the first argument must be a number of spaces/,
        src,
      );
      assert.equal(err.details.line, 1);
    }
  });

  it('undoing the indent gives the original text back', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ maxLength: 8 }).filter((l) => !/[\n\r]/.test(l)),
          { maxLength: 6 },
        ),
        fc.nat(8),
        (lines, n) => {
          const text = lines.join('\n');
          const rendered = out(`{{indent ${n} secrets.T}}`, { secrets: { T: text } });
          const pad = ' '.repeat(n);
          const undone = rendered
            .split('\n')
            .map((l) => (l.startsWith(pad) && l !== '' ? l.slice(n) : l))
            .join('\n');
          assert.equal(undone, text);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('lookup (strict)', () => {
  it('reads secrets, env and target fields', () => {
    assert.equal(
      out('{{lookup secrets "a-b"}} {{lookup env "E"}} {{lookup target "name"}}', {
        secrets: { 'a-b': '1' },
        env: { E: '2' },
        target: 't3',
      }),
      '1 2 t3',
    );
  });

  it('a missing field is an error, not an empty string', () => {
    renderError('{{lookup target "nope"}}', {}, 'RLD_ERR_RENDER');
    renderError('{{lookup secrets.NOPE "x"}}', {}, 'RLD_ERR_MISSING_KEY');
  });

  it('works with a key taken from each', () => {
    assert.equal(
      out('{{#each secrets}}{{lookup ../secrets @key}};{{/each}}', { secrets: { a: '1', b: '2' } }),
      '1;2;',
    );
  });
});
