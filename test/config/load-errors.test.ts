import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ENV, FILE, TARGETS, expectSpecError, lineOf, parse } from './helpers.js';

/** `TARGETS` plus extra lines appended to the only target (indent 4) or file (indent 8). */
const withTarget = (extra: string): string =>
  TARGETS.replace('  - name: app\n', `  - name: app\n${extra}`);
const withFile = (extra: string): string => TARGETS + extra;

describe('YAML syntax', () => {
  test('a syntax error names the line yaml reports', () => {
    const text = 'targets:\n  - name: app\n    files: [a\n  - name: b\n';
    expectSpecError(text, { yamlPath: '', line: 4, message: /YAML syntax error/ });
  });
  test('a duplicate key is a syntax error on the second key', () => {
    const text = TARGETS + 'targets: []\n';
    expectSpecError(text, { yamlPath: '', line: 6, message: /keys must be unique/ });
  });
  test('several documents are refused', () => {
    expectSpecError(TARGETS + '---\n' + TARGETS, {
      yamlPath: '',
      line: 6,
      message: /multiple documents/,
    });
  });
  test('an empty file says what is missing', () => {
    expectSpecError('# nothing\n', { yamlPath: '', line: 1, message: /spec is empty/ });
  });
  test('a recursive alias is refused instead of looping', () => {
    const text = 'a: &x\n  b: *x\n' + TARGETS;
    assert.throws(() => parse(text), /alias|YAML/);
  });
});

describe('schema violations', () => {
  test('unknown top-level key, on its own line, with a suggestion', () => {
    const text = TARGETS + 'webhok:\n  path: /x\n';
    expectSpecError(text, {
      yamlPath: 'webhok',
      line: 6,
      message: /unknown key "webhok" \(did you mean "webhook"\?\)/,
    });
  });
  test('unknown key deep inside a file, on the key line', () => {
    const text = withFile('        owner: root\n');
    expectSpecError(text, {
      yamlPath: 'targets[0].files[0].owner',
      line: 6,
      message: /unknown key "owner"/,
    });
  });
  test('a misspelt required key is reported as unknown, not only as missing', () => {
    const text = TARGETS.replace('destination', 'destinaton');
    expectSpecError(text, {
      yamlPath: 'targets[0].files[0].destinaton',
      line: 5,
      message: /unknown key "destinaton" \(did you mean "destination"\?\)/,
    });
  });
  test('missing targets', () => {
    expectSpecError('webhook:\n  path: /hook\n', {
      yamlPath: '',
      line: 1,
      message: /missing required key "targets"/,
    });
  });
  test('empty targets list', () => {
    expectSpecError('targets: []\n', {
      yamlPath: 'targets',
      line: 1,
      message: /must not be empty/,
    });
  });
  test('a target without files', () => {
    const text = 'targets:\n  - name: app\n    files: []\n';
    expectSpecError(text, { yamlPath: 'targets[0].files', line: 3, message: /must not be empty/ });
  });
  test('a target without a name', () => {
    const text = 'targets:\n  - files:\n      - contents: x\n        destination: /a\n';
    expectSpecError(text, {
      yamlPath: 'targets[0]',
      line: 2,
      message: /missing required key "name"/,
    });
  });
  test('wrong type names the expected type', () => {
    const text = TARGETS.replace(
      'contents: hello',
      'contents: hello\n        createDirs: yes please',
    );
    expectSpecError(text, {
      yamlPath: 'targets[0].files[0].createDirs',
      line: 5,
      message: /must be true or false/,
    });
  });
  test('a bad target name', () => {
    const text = TARGETS.replace('name: app', 'name: "my app"');
    expectSpecError(text, { yamlPath: 'targets[0].name', line: 2, message: /letters, digits/ });
  });
  test('payloadValues outside its enum', () => {
    const text = 'webhook:\n  payloadValues: push\n' + TARGETS;
    expectSpecError(text, {
      yamlPath: 'webhook.payloadValues',
      line: 2,
      message: /one of: apply, refetch/,
    });
  });
  test('processName longer than /proc/<pid>/comm can hold', () => {
    const text = withTarget('    reload: { signal: HUP, processName: a-very-long-process }\n');
    expectSpecError(text, {
      yamlPath: 'targets[0].reload.processName',
      line: 3,
      message: /at most 15/,
    });
  });
  test('negative uid', () => {
    const text = withFile('        uid: -1\n');
    expectSpecError(text, {
      yamlPath: 'targets[0].files[0].uid',
      line: 6,
      message: /must be >= 0/,
    });
  });
});

describe('durations', () => {
  test('a bare number gets a hint to add a unit', () => {
    const text = 'infisical:\n  timeout: 10\n' + TARGETS;
    expectSpecError(text, {
      yamlPath: 'infisical.timeout',
      line: 2,
      message: /needs a unit: write "10s"/,
    });
  });
  test('a quoted number without unit', () => {
    const text = withTarget('    wait:\n      min: "200"\n');
    expectSpecError(text, {
      yamlPath: 'targets[0].wait.min',
      line: 4,
      message: /invalid duration "200"/,
    });
  });
  test('an unknown unit', () => {
    const text = 'webhook:\n  maxAge: 5 minutes\n' + TARGETS;
    expectSpecError(text, { yamlPath: 'webhook.maxAge', line: 2, message: /invalid duration/ });
  });
  test('a zero timeout is refused', () => {
    const text = withTarget('    check: { command: ["true"], timeout: 0s }\n');
    expectSpecError(text, {
      yamlPath: 'targets[0].check.timeout',
      line: 3,
      message: /longer than 0/,
    });
  });
  test('wait.min greater than wait.max, in defaults and in a target', () => {
    const defaults = 'defaults:\n  wait: { min: 3s, max: 1s }\n' + TARGETS;
    expectSpecError(defaults, {
      yamlPath: 'defaults.wait',
      line: 2,
      message: /wait.min \(3000ms\) is greater than wait.max \(1000ms\)/,
    });
    const target = withTarget('    wait:\n      max: 100ms\n');
    expectSpecError(target, {
      yamlPath: 'targets[0].wait',
      line: 3,
      message: /wait.min \(200ms\) is greater/,
    });
  });
});

describe('modes', () => {
  test('an unquoted mode gets a hint to quote it', () => {
    for (const written of ['600', '0600', '0o600']) {
      const text = withFile(`        mode: ${written}\n`);
      expectSpecError(text, {
        yamlPath: 'targets[0].files[0].mode',
        line: 6,
        message: new RegExp(`unquoted mode ${written} as a number; quote it .*"0600"`),
      });
    }
  });
  test('a non-octal string is refused', () => {
    for (const written of ['"0800"', '"rw-r--r--"', '"06000"', '"60"']) {
      const text = withFile(`        mode: ${written}\n`);
      expectSpecError(text, {
        yamlPath: 'targets[0].files[0].mode',
        line: 6,
        message: /invalid mode/,
      });
    }
  });
  test('defaults.mode is checked too', () => {
    expectSpecError('defaults:\n  mode: 644\n' + TARGETS, {
      yamlPath: 'defaults.mode',
      line: 2,
      message: /quote it/,
    });
  });
});

describe('infisical block', () => {
  test('renewAt outside (0, 1)', () => {
    for (const value of ['0', '1', '1.5', '-0.2']) {
      const text = `infisical:\n  renewAt: ${value}\n` + TARGETS;
      expectSpecError(text, { yamlPath: 'infisical.renewAt', line: 2, message: /between 0 and 1/ });
    }
  });
  test('INFISICAL_API_URL must be http(s) too, and the message says where it came from', () => {
    expectSpecError(
      TARGETS,
      {
        yamlPath: 'infisical.url',
        line: 1,
        message: /INFISICAL_API_URL must be an absolute http:\/\//,
      },
      { ...ENV, INFISICAL_API_URL: 'infisical:8080' },
    );
  });
  test('url must be http(s)', () => {
    const text = 'infisical:\n  url: ftp://infisical/api\n' + TARGETS;
    expectSpecError(text, {
      yamlPath: 'infisical.url',
      line: 2,
      message: /http:\/\/ or https:\/\//,
    });
  });
  test('auth with two methods', () => {
    const text = 'infisical:\n  auth:\n    kubernetes: {}\n    token: { token: abc }\n' + TARGETS;
    expectSpecError(text, {
      yamlPath: 'infisical.auth',
      line: 2,
      message: /exactly one of kubernetes, universal, token, but has kubernetes and token/,
    });
  });
  test('auth with no method', () => {
    const text = 'infisical:\n  auth: {}\n' + TARGETS;
    expectSpecError(text, {
      yamlPath: 'infisical.auth',
      line: 2,
      message: /needs one of: kubernetes, universal, token/,
    });
  });
  test('universal auth with neither or both secrets', () => {
    const neither = 'infisical:\n  auth:\n    universal:\n      clientId: cid\n' + TARGETS;
    expectSpecError(neither, {
      yamlPath: 'infisical.auth.universal',
      line: 3,
      message: /needs one of: clientSecret, clientSecretFile/,
    });
    const both =
      'infisical:\n  auth:\n    universal: { clientId: cid, clientSecret: s, clientSecretFile: /f }\n' +
      TARGETS;
    expectSpecError(both, {
      yamlPath: 'infisical.auth.universal',
      line: 3,
      message: /exactly one of clientSecret, clientSecretFile/,
    });
  });
  test('universal auth without clientId', () => {
    const text = 'infisical:\n  auth:\n    universal: { clientSecret: s }\n' + TARGETS;
    expectSpecError(text, {
      yamlPath: 'infisical.auth.universal',
      line: 3,
      message: /missing required key "clientId"/,
    });
  });
  test('token auth with both token and tokenFile', () => {
    const text = 'infisical:\n  auth:\n    token: { token: t, tokenFile: /t }\n' + TARGETS;
    expectSpecError(text, {
      yamlPath: 'infisical.auth.token',
      line: 3,
      message: /exactly one of token, tokenFile/,
    });
  });
  test('kubernetes auth without an identity names INFISICAL_IDENTITY_ID', () => {
    const env = { INFISICAL_PROJECT_ID: 'p' };
    expectSpecError(
      TARGETS,
      {
        yamlPath: 'infisical.auth.kubernetes.identityId',
        line: 1,
        message: /INFISICAL_IDENTITY_ID/,
      },
      env,
    );
    const text = 'infisical:\n  auth:\n    kubernetes:\n      tokenPath: /t\n' + TARGETS;
    expectSpecError(
      text,
      {
        yamlPath: 'infisical.auth.kubernetes.identityId',
        line: 3,
        message: /INFISICAL_IDENTITY_ID/,
      },
      env,
    );
  });
});

describe('sources', () => {
  test('no project id anywhere names INFISICAL_PROJECT_ID', () => {
    const env = { INFISICAL_IDENTITY_ID: 'i' };
    expectSpecError(
      TARGETS,
      { yamlPath: 'sources', line: 1, message: /INFISICAL_PROJECT_ID/ },
      env,
    );
    const text = 'sources:\n  - environment: prod\n' + TARGETS;
    expectSpecError(
      text,
      { yamlPath: 'sources[0].projectId', line: 2, message: /INFISICAL_PROJECT_ID/ },
      env,
    );
  });
  test('unknown key in a source', () => {
    const text = 'sources:\n  - projectId: p\n    env: prod\n' + TARGETS;
    expectSpecError(text, { yamlPath: 'sources[0].env', line: 3, message: /unknown key "env"/ });
  });
});

describe('webhook', () => {
  test('both secret and secretFile', () => {
    const text = 'webhook:\n  secret: s\n  secretFile: /s\n' + TARGETS;
    expectSpecError(text, {
      yamlPath: 'webhook',
      line: 1,
      message: /exactly one of secret, secretFile/,
    });
  });
  test('a bad listen address', () => {
    const text = 'webhook:\n  listen: "localhost:99999"\n' + TARGETS;
    expectSpecError(text, { yamlPath: 'webhook.listen', line: 2, message: /out of range/ });
    const text2 = 'webhook:\n  listen: "a:b:c"\n' + TARGETS;
    expectSpecError(text2, { yamlPath: 'webhook.listen', line: 2, message: /host:port/ });
  });
  test('path must start with /', () => {
    expectSpecError('webhook:\n  path: hook\n' + TARGETS, {
      yamlPath: 'webhook.path',
      line: 2,
      message: /start with "\/"/,
    });
  });
});

describe('targets, files and reloads', () => {
  test('duplicate target names point at the second', () => {
    const text =
      TARGETS + TARGETS.replace('targets:\n', '').replace('/out/app.conf', '/out/b.conf');
    expectSpecError(text, {
      yamlPath: 'targets[1].name',
      line: 6,
      message: /duplicate target name "app" \(also targets\[0\]\)/,
    });
  });
  test('two files with the same destination, across targets, after path resolution', () => {
    const text =
      TARGETS +
      '  - name: other\n    files:\n      - contents: x\n        destination: /out/./sub/../app.conf\n';
    expectSpecError(text, {
      yamlPath: 'targets[1].files[0].destination',
      line: 9,
      message: /destination \/out\/app.conf is already written by targets\[0\].files\[0\]/,
    });
  });
  test('a relative destination collides with the absolute one it resolves to', () => {
    const text = withFile(
      '      - contents: y\n        destination: ../../out/app.conf\n'.replace('../../out', 'out'),
    );
    const spec = parse(text); // /etc/reloader/out/app.conf differs from /out/app.conf
    assert.equal(spec.targets[0]?.files[1]?.destination, '/etc/reloader/out/app.conf');
    const clash = withFile('      - contents: y\n        destination: ../../out/app.conf\n');
    expectSpecError(clash, {
      yamlPath: 'targets[0].files[1].destination',
      line: 7,
      message: /already written/,
    });
  });
  test('a file with both template and contents, or neither', () => {
    const both = TARGETS.replace('contents: hello', 'contents: hello\n        template: t.hbs');
    expectSpecError(both, {
      yamlPath: 'targets[0].files[0]',
      line: 4,
      message: /exactly one of template, contents, pkcs12, but has template and contents/,
    });
    const neither = 'targets:\n  - name: app\n    files:\n      - destination: /a\n';
    expectSpecError(neither, {
      yamlPath: 'targets[0].files[0]',
      line: 4,
      message: /needs one of: template, contents, pkcs12/,
    });
  });
  test('reload with none or two of signal/command/http', () => {
    const none = withTarget('    reload:\n      timeout: 5s\n');
    expectSpecError(none, {
      yamlPath: 'targets[0].reload',
      line: 3,
      message: /reload needs one of: signal, command, http/,
    });
    const two = withTarget(
      '    reload:\n      command: [x]\n      http: { url: "http://127.0.0.1/" }\n',
    );
    expectSpecError(two, {
      yamlPath: 'targets[0].reload',
      line: 3,
      message: /but has command and http/,
    });
  });
  test('signal reload with none or two recipients', () => {
    const none = withTarget('    reload:\n      signal: HUP\n');
    expectSpecError(none, {
      yamlPath: 'targets[0].reload',
      line: 3,
      message: /signal reload needs one of: pid, pidFile, processName/,
    });
    const two = withTarget(
      '    reload:\n      signal: HUP\n      pid: 1\n      pidFile: /run/x.pid\n',
    );
    expectSpecError(two, {
      yamlPath: 'targets[0].reload',
      line: 3,
      message: /but has pid and pidFile/,
    });
  });
  test('a signal recipient on a command reload', () => {
    const text = withTarget('    reload:\n      command: [x]\n      pid: 1\n');
    expectSpecError(text, {
      yamlPath: 'targets[0].reload.pid',
      line: 5,
      message: /only applies to a signal reload/,
    });
  });
  test('unknown signal names', () => {
    for (const name of ['FOO', 'SIGFOO', 'HUP1']) {
      const text = withTarget(`    reload:\n      signal: ${name}\n      pid: 1\n`);
      expectSpecError(text, {
        yamlPath: 'targets[0].reload.signal',
        line: 4,
        message: /unknown signal/,
      });
    }
    const text = withTarget('    reload:\n      signal: "SIG-HUP"\n      pid: 1\n');
    expectSpecError(text, {
      yamlPath: 'targets[0].reload.signal',
      line: 4,
      message: /invalid signal name/,
    });
  });
  test('empty command arrays and an empty program name', () => {
    expectSpecError(withTarget('    check:\n      command: []\n'), {
      yamlPath: 'targets[0].check.command',
      line: 4,
      message: /must not be empty/,
    });
    expectSpecError(withTarget('    reload:\n      command: []\n'), {
      yamlPath: 'targets[0].reload.command',
      line: 4,
      message: /must not be empty/,
    });
    expectSpecError(withTarget('    reload:\n      command: ["", x]\n'), {
      yamlPath: 'targets[0].reload.command[0]',
      line: 4,
      message: /program name/,
    });
  });
  test('check without a command', () => {
    expectSpecError(withTarget('    check:\n      timeout: 5s\n'), {
      yamlPath: 'targets[0].check',
      line: 3,
      message: /missing required key "command"/,
    });
  });
  test('http reload with a bad url or method', () => {
    const url = withTarget('    reload:\n      http: { url: "/-/reload" }\n');
    expectSpecError(url, { yamlPath: 'targets[0].reload.http.url', line: 4, message: /http:\/\// });
    const method = withTarget(
      '    reload:\n      http: { url: "http://127.0.0.1/", method: "PO ST" }\n',
    );
    expectSpecError(method, {
      yamlPath: 'targets[0].reload.http.method',
      line: 4,
      message: /invalid format/,
    });
  });
});

describe('YAML scalars that are not the strings meant', () => {
  test('command: [true] is a boolean to YAML: the error says to quote it', () => {
    const text = withTarget('    check:\n      command: [true]\n');
    expectSpecError(text, {
      yamlPath: 'targets[0].check.command[0]',
      line: 4,
      message: /YAML reads the unquoted true as a boolean; quote it: "true"/,
    });
  });
  test('an unquoted null in an argv is named too', () => {
    const text = withTarget('    reload:\n      command: [echo, null]\n');
    expectSpecError(text, {
      yamlPath: 'targets[0].reload.command[1]',
      line: 4,
      message: /unquoted null as null; quote it/,
    });
  });
});

describe('environment substitution errors', () => {
  test('an unset variable names the variable, the path and the line', () => {
    const text = TARGETS + 'webhook:\n  secretFile: ${WEBHOOK_SECRET_FILE}\n';
    expectSpecError(text, {
      yamlPath: 'webhook.secretFile',
      line: 7,
      message: /environment variable WEBHOOK_SECRET_FILE is not set/,
    });
  });
  test('an unset variable inside a list item', () => {
    const text = withTarget(
      '    check:\n      command:\n        - nginx\n        - ${NGINX_FLAG}\n',
    );
    expectSpecError(text, {
      yamlPath: 'targets[0].check.command[1]',
      line: 6,
      message: /NGINX_FLAG is not set/,
    });
  });
  test('the identity id written as ${INFISICAL_IDENTITY_ID} but unset', () => {
    const text =
      'infisical:\n  auth:\n    kubernetes:\n      identityId: ${INFISICAL_IDENTITY_ID}\n' +
      TARGETS;
    expectSpecError(
      text,
      {
        yamlPath: 'infisical.auth.kubernetes.identityId',
        line: 4,
        message: /INFISICAL_IDENTITY_ID is not set/,
      },
      { INFISICAL_PROJECT_ID: 'p' },
    );
  });
  test('every unset variable is reported at once, each with its path and line', () => {
    const text =
      'webhook:\n  secretFile: ${HOOK_FILE}\n  path: /x/${A}/${B}\n' +
      withTarget('    check:\n      command: [nginx, "${A}"]\n');
    const err = expectSpecError(text, {
      yamlPath: 'webhook.secretFile',
      line: 2,
      message: /environment variables HOOK_FILE, A, B are not set/,
    });
    assert.match(err.message, /HOOK_FILE: webhook\.secretFile line 2/);
    assert.match(err.message, /A, B: webhook\.path line 3/);
    assert.match(err.message, /A: targets\[0\]\.check\.command\[1\] line \d+/);
  });
  test('a malformed reference', () => {
    const text = withFile('        mode: "${MODE"\n');
    expectSpecError(text, {
      yamlPath: 'targets[0].files[0].mode',
      line: 6,
      message: /unterminated/,
    });
  });
  test('no error message ever echoes an environment value', () => {
    const canary = 'topsecret-canary';
    const env = { ...ENV, CANARY: canary };
    const cases: Array<[string, string]> = [
      [withFile('        mode: ${CANARY}\n'), 'targets[0].files[0].mode'],
      [withFile('        mode: "0${CANARY}"\n'), 'targets[0].files[0].mode'],
      ['infisical:\n  timeout: ${CANARY}\n' + TARGETS, 'infisical.timeout'],
      ['infisical:\n  renewAt: ${CANARY}\n' + TARGETS, 'infisical.renewAt'],
      ['infisical:\n  url: ${CANARY}\n' + TARGETS, 'infisical.url'],
      ['webhook:\n  listen: ${CANARY}\n' + TARGETS, 'webhook.listen'],
      ['webhook:\n  secret: ${CANARY}\n  secretFile: /x\n' + TARGETS, 'webhook'],
      [
        withTarget('    reload:\n      signal: ${CANARY}\n      pid: 1\n'),
        'targets[0].reload.signal',
      ],
      [withTarget('    reload:\n      http: { url: "${CANARY}" }\n'), 'targets[0].reload.http.url'],
      [withTarget('    name2: ${CANARY}\n'), 'targets[0].name2'],
      [TARGETS.replace('name: app', 'name: "${CANARY} x"'), 'targets[0].name'],
      ['sources:\n  - projectId: p\n    recursive: ${CANARY}\n' + TARGETS, 'sources[0].recursive'],
    ];
    for (const [text, yamlPath] of cases) {
      let message = '';
      try {
        parse(text, env);
      } catch (err) {
        message = (err as Error).message + JSON.stringify(err);
      }
      assert.notEqual(message, '', `expected ${yamlPath} to fail`);
      assert.ok(message.includes(yamlPath), message);
      assert.ok(!message.includes(canary), `value echoed: ${message}`);
    }
  });
  test('a value-carrying error names the variable it came from', () => {
    const text = 'infisical:\n  timeout: ${TIMEOUT}\n' + TARGETS;
    expectSpecError(
      text,
      {
        yamlPath: 'infisical.timeout',
        line: 2,
        message: /invalid duration \(value of \$\{TIMEOUT\}\)/,
      },
      { ...ENV, TIMEOUT: '10' },
    );
  });
});

test('the message reads file:line: path: problem', () => {
  const err = expectSpecError(withFile('        bogus: 1\n'), {
    yamlPath: 'targets[0].files[0].bogus',
    line: 6,
    message: /unknown/,
  });
  assert.equal(err.message, `${FILE}:6: targets[0].files[0].bogus: unknown key "bogus"`);
  assert.deepEqual(err.toJSON(), {
    code: 'RLD_ERR_SPEC',
    message: err.message,
    file: FILE,
    yamlPath: 'targets[0].files[0].bogus',
    line: 6,
  });
  assert.equal(lineOf(withFile('        bogus: 1\n'), 'bogus'), 6);
});
