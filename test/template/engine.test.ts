import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { compileTemplate } from '../../src/template/index.js';
import { TemplateRenderError } from '../../src/template/engine.js';
import { out, render, renderError, compileError } from './fixtures.js';

const secrets = { DB_PASSWORD: 'pw1', 'my-key': 'dash', 'my.key': 'dot', EMPTY: '' };

describe('strict: a missing secret is an error in every access form', () => {
  const forms: Array<[string, string]> = [
    ['path', '{{secrets.NOPE}}'],
    ['triple-stash path', '{{{secrets.NOPE}}}'],
    ['secret helper', '{{secret "NOPE"}}'],
    ['with block', '{{#with secrets}}{{NOPE}}{{/with}}'],
    ['lookup', '{{lookup secrets "NOPE"}}'],
    ['@root path', '{{@root.secrets.NOPE}}'],
    ['segment literal', '{{secrets.[NOPE]}}'],
    ['value helper argument', '{{base64 secrets.NOPE}}'],
    ['value helper inside with', '{{#with secrets}}{{upper NOPE}}{{/with}}'],
    ['subexpression', '{{indent 2 (trim secrets.NOPE)}}'],
    ['inside a block helper body', '{{#base64}}user:{{secrets.NOPE}}{{/base64}}'],
    ['inside each', '{{#each secrets}}{{@key}}{{/each}}{{secrets.NOPE}}'],
    ['default with both sides missing', '{{default secrets.OTHER secrets.NOPE}}'],
    ['secretOr with a missing fallback', '{{secretOr "OTHER" secrets.NOPE}}'],
    ['a section', '{{#secrets.NOPE}}x{{/secrets.NOPE}}'],
  ];
  for (const [label, source] of forms) {
    it(label, () => {
      const err = renderError(`line one\n${source}`, { secrets }, 'RLD_ERR_MISSING_KEY');
      assert.equal(err.details.key, 'NOPE');
      assert.equal(err.details.template, 't.hbs');
      assert.equal(err.details.line, 2);
      assert.match(
        err.message,
        /^template "t\.hbs" line 2 reads secret "NOPE", which is not set in any source/,
      );
      assert.ok(err instanceof TemplateRenderError);
      assert.ok(err.keysRead.has('NOPE'), 'keysRead of a failed render names the missing key');
      assert.equal(err.exitCode, 1);
    });
  }

  it('a dotted path names the missing first segment and suggests the bracket form', () => {
    const err = renderError('{{secrets.db.password}}', { secrets }, 'RLD_ERR_MISSING_KEY');
    assert.equal(err.details.key, 'db');
    assert.match(err.message, /secrets\.\[db\.password\] or secret "db\.password"/);
  });

  it('keys with "-" and "." work through brackets, secret and lookup', () => {
    assert.equal(
      out(
        '{{secrets.[my-key]}} {{secrets.[my.key]}} {{secret "my.key"}} {{lookup secrets "my-key"}}',
        {
          secrets,
        },
      ),
      'dash dot dot dash',
    );
  });

  it('an empty value is present: it renders as empty, not as an error', () => {
    assert.equal(out('[{{secrets.EMPTY}}][{{secret "EMPTY"}}]', { secrets }), '[][]');
  });
});

describe('optional keys: #if, #unless, default and secretOr', () => {
  it('#if / #unless on a missing key are presence tests and do not throw', () => {
    const src = '{{#if secrets.OPT}}on{{else}}off{{/if}} {{#unless secrets.OPT}}unset{{/unless}}';
    assert.equal(out(src, { secrets }), 'off unset');
    assert.equal(out(src, { secrets: { OPT: 'v' } }), 'on ');
  });

  it('#if treats an empty value like a missing one', () => {
    assert.equal(out('{{#if secrets.EMPTY}}y{{else}}n{{/if}}', { secrets }), 'n');
  });

  it('#if works for bracketed keys and inside with', () => {
    assert.equal(
      out(
        '{{#if secrets.[my-key]}}y{{/if}}{{#with secrets}}{{#if OPT}}x{{else}}z{{/if}}{{/with}}',
        { secrets },
      ),
      'yz',
    );
  });

  it('default takes a missing or empty value and falls back', () => {
    assert.equal(
      out(
        '{{default secrets.OPT "x"}}|{{default secrets.EMPTY "e"}}|{{default secrets.DB_PASSWORD "d"}}',
        { secrets },
      ),
      'x|e|pw1',
    );
    assert.equal(out('{{default env.PORT "5432"}}', {}), '5432');
    assert.equal(out('{{default secrets.[opt-key] "y"}}', { secrets }), 'y');
  });

  it('secretOr reads by name, so keys with dots need no brackets', () => {
    assert.equal(
      out('{{secretOr "a.b" "fb"}} {{secretOr "my.key" "fb"}} {{secretOr "EMPTY" "e"}}', {
        secrets,
      }),
      'fb dot e',
    );
  });

  it('default (secret "X") is strict: secret throws before default runs', () => {
    renderError('{{default (secret "OPT") "x"}}', { secrets }, 'RLD_ERR_MISSING_KEY');
  });
});

describe('environment and target', () => {
  it('reads env vars and the target name', () => {
    assert.equal(
      out('{{env.HOME}} {{target.name}}', { env: { HOME: '/home/app' }, target: 'nginx-tls' }),
      '/home/app nginx-tls',
    );
  });

  it('a missing env var is RLD_ERR_MISSING_KEY naming the variable', () => {
    for (const src of ['{{env.NOPE}}', '{{lower env.NOPE}}', '{{lookup env "NOPE"}}']) {
      const err = renderError(src, { env: { SET: '1' } }, 'RLD_ERR_MISSING_KEY');
      assert.equal(err.details.env, 'NOPE', src);
      assert.equal(err.details.key, undefined);
      assert.match(err.message, /reads environment variable "NOPE", which is not set/);
    }
  });

  it('an env var whose value is undefined counts as missing', () => {
    renderError('{{env.GONE}}', { env: { GONE: undefined } }, 'RLD_ERR_MISSING_KEY');
  });

  it('an unknown top-level name or target field is a render error naming it', () => {
    const a = renderError('\n{{foo}}', {}, 'RLD_ERR_RENDER');
    assert.match(a.message, /^template "t\.hbs" line 2: "foo" is not defined/);
    assert.match(a.message, /only secrets, env and target/);
    const b = renderError('{{target.id}}', {}, 'RLD_ERR_RENDER');
    assert.match(b.message, /"id" is not defined in \{\{target\.id\}\}/);
  });

  it('prototype properties are not reachable', () => {
    renderError('{{target.constructor}}', {}, 'RLD_ERR_RENDER');
    renderError('{{lookup target "constructor"}}', {}, 'RLD_ERR_RENDER');
    renderError('{{#with target}}{{__proto__}}{{/with}}', {}, 'RLD_ERR_RENDER');
    const err = renderError('{{secrets.toString}}', { secrets }, 'RLD_ERR_MISSING_KEY');
    assert.equal(err.details.key, 'toString');
  });

  it('emitting a whole object is an error, not "[object Object]"', () => {
    for (const src of [
      '{{secrets}}',
      '{{env}}',
      '{{target}}',
      '{{this}}',
      '{{default secrets "x"}}',
    ]) {
      const err = renderError(src, { secrets }, 'RLD_ERR_RENDER');
      assert.match(err.message, /emits a whole object/, src);
    }
  });
});

describe('no escaping', () => {
  it('{{x}} and {{{x}}} both emit the value unchanged', () => {
    const v = `<&>"'\`=/\\ {{not a tag}}`;
    assert.equal(
      out('{{secrets.V}}|{{{secrets.V}}}|{{secret "V"}}', { secrets: { V: v } }),
      `${v}|${v}|${v}`,
    );
  });

  it('template text passes through verbatim, including unicode and CRLF', () => {
    const src = 'ключ = "{{secrets.V}}" ✓\r\nnext\r\n';
    assert.equal(out(src, { secrets: { V: 'значение 🔑' } }), 'ключ = "значение 🔑" ✓\r\nnext\r\n');
  });
});

describe('compile-time errors (no secrets needed)', () => {
  it('a syntax error names the template and the line', () => {
    const err = compileError('line 1\nline 2\nbad {{#if secrets.A}\n', 'nginx/tls.conf.hbs');
    assert.equal(err.details.template, 'nginx/tls.conf.hbs');
    assert.equal(err.details.line, 3);
    assert.match(err.message, /^template "nginx\/tls\.conf\.hbs" line 3: syntax error: Expecting /);
    assert.equal(err.exitCode, 2);
  });

  it('mismatched blocks name the opening line', () => {
    const err = compileError('a\n{{#if secrets.A}}\nb\n{{/unless}}');
    assert.equal(err.details.line, 2);
    assert.match(err.message, /if doesn't match unless/);
  });

  it('an unknown (misspelt) helper fails at compile time with the list of helpers', () => {
    const err = compileError('ok\n{{bas64 secrets.A}}');
    assert.equal(err.details.line, 2);
    assert.match(
      err.message,
      /unknown helper "bas64" \(known: base64, base64Decode, bcrypt, default,/,
    );
    compileError('{{#eachh secrets}}{{/eachh}}');
    compileError('{{upper (lowr secrets.A)}}');
  });

  it('log, partials and decorators are not available', () => {
    assert.match(compileError('{{log secrets.A}}').message, /unknown helper "log"/);
    assert.match(compileError('{{> header}}').message, /partials/);
    assert.match(compileError('{{#> layout}}x{{/layout}}').message, /partials/);
    assert.match(compileError('{{* deco}}').message, /decorators/);
  });

  it('wrong arity or form of a helper fails at compile time', () => {
    assert.match(
      compileError('{{indent secrets.A}}').message,
      /helper "indent" takes 2 argument\(s\) as \{\{indent\}\}, got 1/,
    );
    assert.match(compileError('{{secret}}').message, /helper "secret" takes 1/);
    assert.match(compileError('{{default secrets.A}}').message, /helper "default" takes 2/);
    assert.match(
      compileError('{{#secret "A"}}x{{/secret}}').message,
      /cannot be used as \{\{#secret\}\}/,
    );
    assert.match(compileError('{{#base64}}a{{else}}b{{/base64}}').message, /has no \{\{else\}\}/);
    assert.match(compileError('{{upper secrets.A x=1}}').message, /no name=value options/);
    assert.match(compileError('{{if secrets.A}}').message, /is a block helper/);
    assert.match(
      compileError('{{#if secrets.A secrets.B}}{{/if}}').message,
      /exactly one argument, got 2/,
    );
  });

  it('a block parameter spelt like a helper is a value, not a helper call', () => {
    const src = '{{#each secrets as |upper key|}}{{key}}={{upper}};{{/each}}{{upper "x"}}';
    assert.equal(out(src, { secrets: { A: 'a' } }), 'A=a;X');
    assert.match(
      compileError('{{#each secrets as |v|}}{{json}}{{/each}}').message,
      /"json" takes 1/,
    );
  });

  it('an inverse section is strict too: use #unless for "not set"', () => {
    renderError('{{^secrets.OPT}}unset{{/secrets.OPT}}', {}, 'RLD_ERR_MISSING_KEY');
    assert.equal(out('{{#unless secrets.OPT}}unset{{/unless}}', {}), 'unset');
  });

  it('compiles a template without rendering it (validate needs no secrets)', () => {
    const t = compileTemplate('x', '{{secrets.ANYTHING}} {{env.WHATEVER}}');
    assert.equal(t.name, 'x');
  });
});

describe('isolation from the global Handlebars', () => {
  const global = createRequire(import.meta.url)('handlebars') as typeof import('handlebars');
  global.registerHelper('leak', () => 'LEAKED');
  global.registerHelper('upper', () => 'LEAKED');
  global.registerPartial('p', 'LEAKED');
  after(() => {
    global.unregisterHelper('leak');
    global.unregisterHelper('upper');
    global.unregisterPartial('p');
  });

  it('a helper registered globally is unknown here', () => {
    assert.match(compileError('{{leak secrets.A}}').message, /unknown helper "leak"/);
  });

  it('a global helper with the same name as ours does not replace ours', () => {
    assert.equal(out('{{upper secrets.A}}', { secrets: { A: 'abc' } }), 'ABC');
  });

  it('a global partial is not visible', () => {
    compileError('{{> p}}');
  });
});

describe('determinism and scale', () => {
  it('rendering the same template twice gives identical output and key sets', () => {
    const t = compileTemplate(
      'x',
      '{{#each secrets}}{{@key}}={{sha256 this}}\n{{/each}}{{json secrets}}',
    );
    const ctx = {
      secrets: new Map([
        ['B', '2'],
        ['A', '1'],
        ['C', '3'],
      ]),
      env: {},
      target: { name: 'n' },
    };
    const a = t.render(ctx);
    const b = t.render(ctx);
    assert.equal(a.output, b.output);
    assert.deepEqual([...a.keysRead].sort(), [...b.keysRead].sort());
    assert.ok(a.output.startsWith('A='), 'each iterates keys in sorted order');
  });

  it('each iterates in sorted key order, whatever order the sources listed them in', () => {
    const src = '{{#each secrets}}{{@key}},{{/each}}';
    const ctx = (pairs: Array<[string, string]>) => ({
      secrets: new Map(pairs),
      env: {},
      target: { name: 'n' },
    });
    const t = compileTemplate('x', src);
    const one = t.render(
      ctx([
        ['b', '1'],
        ['a', '2'],
        ['c', '3'],
      ]),
    ).output;
    const two = t.render(
      ctx([
        ['c', '3'],
        ['a', '2'],
        ['b', '1'],
      ]),
    ).output;
    assert.equal(one, 'a,b,c,');
    assert.equal(two, one);
  });

  it('renders 1000 keys', () => {
    const many: Record<string, string> = {};
    let body = '';
    for (let i = 0; i < 1000; i++) {
      many[`KEY_${i}`] = `value-${i}`;
      body += `k${i}={{secrets.KEY_${i}}}\n`;
    }
    const r = render(`${body}{{#each secrets}}{{@key}}{{/each}}{{json secrets}}`, {
      secrets: many,
    });
    assert.equal(r.keysRead.size, 1001, 'the 1000 keys and the "*" marker');
    assert.ok(r.output.startsWith('k0=value-0\nk1=value-1\n'));
  });

  it('one compiled template renders different contexts independently', () => {
    const t = compileTemplate('x', '{{secrets.A}}');
    const mk = (v: string) => ({ secrets: new Map([['A', v]]), env: {}, target: { name: 'n' } });
    assert.equal(t.render(mk('1')).output, '1');
    assert.equal(t.render(mk('2')).output, '2');
  });
});
