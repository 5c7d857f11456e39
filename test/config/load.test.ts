import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SpecError } from '../../src/errors.js';
import { loadSpec, requireWebhookSecret, resolveConfigPath } from '../../src/config/load.js';
import { ENV, FILE, TARGETS, expectSpecError, lineOf, parse } from './helpers.js';

/** The README's reloader.yaml example, verbatim apart from the commented alternatives. */
const SPEC_EXAMPLE = `
infisical:
  url: \${INFISICAL_API_URL:-http://infisical.infisical.svc.cluster.local:8080/api}
  auth:
    kubernetes:
      identityId: \${INFISICAL_IDENTITY_ID}
      tokenPath: /var/run/secrets/kubernetes.io/serviceaccount/token
  renewAt: 0.8
  caFile: /etc/ssl/certs/infisical-ca.pem
  timeout: 10s
  eventSubscription:
    enabled: true

sources:
  - projectId: \${INFISICAL_PROJECT_ID}
    environment: \${INFISICAL_ENVIRONMENT:-dev}
    path: \${INFISICAL_SECRET_PATH:-/}
    recursive: false
    includeImports: true
    expandReferences: true

webhook:
  listen: 0.0.0.0:8080
  path: /infisical/webhook
  secretFile: /var/run/reloader/webhook-secret
  maxAge: 5m
  allowUnsigned: false
  payloadValues: refetch
  peers: { dns: my-svc-reloader-peers.my-ns.svc.cluster.local }

admin:
  listen: 0.0.0.0:9090

defaults:
  mode: "0600"
  wait: { min: 200ms, max: 2s }

targets:
  - name: nginx-tls
    files:
      - template: templates/nginx/tls.crt.hbs
        destination: /etc/nginx/tls/tls.crt
        mode: "0644"
      - template: templates/nginx/tls.key.hbs
        destination: /etc/nginx/tls/tls.key
      - contents: |
          ssl_certificate     /etc/nginx/tls/tls.crt;
          ssl_certificate_key /etc/nginx/tls/tls.key;
        destination: /etc/nginx/conf.d/tls.conf
    check:
      command: [nginx, -t]
      timeout: 10s
    reload:
      signal: HUP
      processName: nginx
      timeout: 10s
`;

describe('the README reloader.yaml example', () => {
  test('parses to the documented values', () => {
    const spec = parse(SPEC_EXAMPLE, { ...ENV, INFISICAL_ENVIRONMENT: 'prod' });
    assert.equal(spec.file, FILE);
    assert.equal(spec.dir, '/etc/reloader');
    assert.deepEqual(spec.infisical, {
      url: 'http://infisical.infisical.svc.cluster.local:8080/api',
      auth: {
        kind: 'kubernetes',
        identityId: 'ident-1',
        tokenPath: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      },
      renewAt: 0.8,
      caFile: '/etc/ssl/certs/infisical-ca.pem',
      timeoutMs: 10_000,
      eventSubscription: {
        enabled: true,
        heartbeatTimeoutMs: 45_000,
        reconnectMinMs: 1000,
        reconnectMaxMs: 60_000,
      },
    });
    assert.deepEqual(spec.sources, [
      {
        projectId: 'proj-1',
        environment: 'prod',
        path: '/',
        recursive: false,
        includeImports: true,
        expandReferences: true,
      },
    ]);
    assert.deepEqual(spec.webhook, {
      listen: { host: '0.0.0.0', port: 8080 },
      path: '/infisical/webhook',
      secretFile: '/var/run/reloader/webhook-secret',
      maxAgeMs: 300_000,
      allowUnsigned: false,
      payloadValues: 'refetch',
      peers: { dns: 'my-svc-reloader-peers.my-ns.svc.cluster.local', timeoutMs: 2000 },
    });
    assert.deepEqual(spec.admin, { listen: { host: '0.0.0.0', port: 9090 } });
    assert.deepEqual(spec.defaults, { mode: 0o600, wait: { minMs: 200, maxMs: 2000 } });
    const [target] = spec.targets;
    assert.ok(target);
    assert.equal(target.name, 'nginx-tls');
    assert.deepEqual(target.origin, {
      yamlPath: 'targets[0]',
      line: lineOf(SPEC_EXAMPLE, '- name: nginx-tls'),
    });
    assert.deepEqual(
      target.files.map((f) => [
        f.template,
        f.destination,
        f.mode.toString(8),
        f.createDirs,
        f.origin.line,
      ]),
      [
        [
          '/etc/reloader/templates/nginx/tls.crt.hbs',
          '/etc/nginx/tls/tls.crt',
          '644',
          true,
          lineOf(SPEC_EXAMPLE, 'tls.crt.hbs'),
        ],
        [
          '/etc/reloader/templates/nginx/tls.key.hbs',
          '/etc/nginx/tls/tls.key',
          '600',
          true,
          lineOf(SPEC_EXAMPLE, 'tls.key.hbs'),
        ],
        [
          undefined,
          '/etc/nginx/conf.d/tls.conf',
          '600',
          true,
          lineOf(SPEC_EXAMPLE, '- contents: |'),
        ],
      ],
    );
    assert.equal(
      target.files[2]?.contents,
      'ssl_certificate     /etc/nginx/tls/tls.crt;\nssl_certificate_key /etc/nginx/tls/tls.key;\n',
    );
    assert.deepEqual(target.check, { command: ['nginx', '-t'], timeoutMs: 10_000 });
    assert.deepEqual(target.reload, {
      kind: 'signal',
      signal: 'HUP',
      processName: 'nginx',
      timeoutMs: 10_000,
    });
    assert.deepEqual(target.wait, { minMs: 200, maxMs: 2000 });
  });
});

describe('defaults', () => {
  test('a spec with only targets gets every documented default', () => {
    const spec = parse(TARGETS);
    assert.deepEqual(spec.infisical, {
      url: 'http://infisical.infisical.svc.cluster.local:8080/api',
      auth: {
        kind: 'kubernetes',
        identityId: 'ident-1',
        tokenPath: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      },
      renewAt: 0.8,
      timeoutMs: 10_000,
      eventSubscription: {
        enabled: false,
        heartbeatTimeoutMs: 45_000,
        reconnectMinMs: 1000,
        reconnectMaxMs: 60_000,
      },
    });
    assert.deepEqual(spec.sources, [
      {
        projectId: 'proj-1',
        environment: 'dev',
        path: '/',
        recursive: false,
        includeImports: true,
        expandReferences: true,
      },
    ]);
    assert.deepEqual(spec.webhook, {
      listen: { host: '0.0.0.0', port: 8080 },
      path: '/infisical/webhook',
      maxAgeMs: 300_000,
      allowUnsigned: false,
      payloadValues: 'refetch',
    });
    assert.deepEqual(spec.admin, { listen: { host: '0.0.0.0', port: 9090 } });
    assert.deepEqual(spec.defaults, { mode: 0o600, wait: { minMs: 200, maxMs: 2000 } });
    assert.deepEqual(spec.targets[0]?.files[0], {
      contents: 'hello',
      destination: '/out/app.conf',
      mode: 0o600,
      createDirs: true,
      origin: { yamlPath: 'targets[0].files[0]', line: 4 },
    });
    assert.equal(spec.targets[0]?.check, undefined);
    assert.equal(spec.targets[0]?.reload, undefined);
  });

  test('the guide INFISICAL_* environment variables feed the defaults', () => {
    const spec = parse(TARGETS, {
      INFISICAL_API_URL: 'https://eu.infisical.com/api/',
      INFISICAL_PROJECT_ID: 'p9',
      INFISICAL_ENVIRONMENT: 'staging',
      INFISICAL_SECRET_PATH: 'apps/web/',
      INFISICAL_IDENTITY_ID: 'id9',
      INFISICAL_WEBHOOK_SECRET: 'whsec',
    });
    assert.equal(spec.infisical.url, 'https://eu.infisical.com/api');
    assert.deepEqual(spec.infisical.auth, {
      kind: 'kubernetes',
      identityId: 'id9',
      tokenPath: '/var/run/secrets/kubernetes.io/serviceaccount/token',
    });
    assert.deepEqual(
      spec.sources.map((s) => [s.projectId, s.environment, s.path]),
      [['p9', 'staging', '/apps/web']],
    );
    assert.equal(spec.webhook.secret, 'whsec');
  });

  test('empty environment variables count as unset', () => {
    const spec = parse(TARGETS, {
      ...ENV,
      INFISICAL_API_URL: '',
      INFISICAL_ENVIRONMENT: '',
      INFISICAL_WEBHOOK_SECRET: '',
    });
    assert.equal(spec.infisical.url, 'http://infisical.infisical.svc.cluster.local:8080/api');
    assert.equal(spec.sources[0]?.environment, 'dev');
    assert.equal(spec.webhook.secret, undefined);
  });

  test('an explicit webhook secret or secretFile wins over INFISICAL_WEBHOOK_SECRET', () => {
    const env = { ...ENV, INFISICAL_WEBHOOK_SECRET: 'from-env' };
    assert.equal(parse('webhook:\n  secret: literal\n' + TARGETS, env).webhook.secret, 'literal');
    const spec = parse('webhook:\n  secretFile: secret.txt\n' + TARGETS, env);
    assert.equal(spec.webhook.secret, undefined);
    assert.equal(spec.webhook.secretFile, '/etc/reloader/secret.txt');
  });

  test('explicit sources take per-source defaults from the environment', () => {
    const text =
      'sources:\n  - path: /a/\n  - projectId: other\n    environment: prod\n    path: //b//c/\n    recursive: true\n    includeImports: false\n    expandReferences: false\n' +
      TARGETS;
    const spec = parse(text, { ...ENV, INFISICAL_ENVIRONMENT: 'qa' });
    assert.deepEqual(spec.sources, [
      {
        projectId: 'proj-1',
        environment: 'qa',
        path: '/a',
        recursive: false,
        includeImports: true,
        expandReferences: true,
      },
      {
        projectId: 'other',
        environment: 'prod',
        path: '/b/c',
        recursive: true,
        includeImports: false,
        expandReferences: false,
      },
    ]);
  });

  test('wait inherits per field; min alone raises max to at least min', () => {
    const text = `defaults:
  wait: { min: 5s }
targets:
  - name: a
    files: [{ contents: x, destination: /a }]
  - name: b
    files: [{ contents: x, destination: /b }]
    wait: { max: 10s }
  - name: c
    files: [{ contents: x, destination: /c }]
    wait: { min: 100ms }
  - name: d
    files: [{ contents: x, destination: /d }]
    wait: { min: 1m }
`;
    const spec = parse(text);
    assert.deepEqual(spec.defaults.wait, { minMs: 5000, maxMs: 5000 });
    assert.deepEqual(
      spec.targets.map((t) => t.wait),
      [
        { minMs: 5000, maxMs: 5000 },
        { minMs: 5000, maxMs: 10_000 },
        { minMs: 100, maxMs: 5000 },
        { minMs: 60_000, maxMs: 60_000 },
      ],
    );
    assert.deepEqual(parse('defaults:\n  wait: { max: 1s }\n' + TARGETS).defaults.wait, {
      minMs: 200,
      maxMs: 1000,
    });
  });

  test('defaults.mode is inherited; a file mode overrides it', () => {
    const text =
      'defaults:\n  mode: "0640"\n' +
      TARGETS +
      '      - contents: y\n        destination: /out/b\n        mode: "0o444"\n      - contents: z\n        destination: /out/c\n        mode: "755"\n';
    assert.deepEqual(
      parse(text).targets[0]?.files.map((f) => f.mode),
      [0o640, 0o444, 0o755],
    );
  });

  test('listen forms', () => {
    const listen = (value: string) =>
      parse(`webhook:\n  listen: ${value}\n` + TARGETS).webhook.listen;
    assert.deepEqual(listen('"[::]:8080"'), { host: '::', port: 8080 });
    assert.deepEqual(listen('":9000"'), { host: '0.0.0.0', port: 9000 });
    assert.deepEqual(listen('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(listen('localhost:8081'), { host: 'localhost', port: 8081 });
    assert.deepEqual(listen('8082'), { host: '0.0.0.0', port: 8082 });
    assert.deepEqual(listen('"8083"'), { host: '0.0.0.0', port: 8083 });
  });
});

describe('reload kinds and auth methods', () => {
  test('signal names with or without SIG, any case, stored without SIG', () => {
    for (const [written, stored] of [
      ['HUP', 'HUP'],
      ['SIGHUP', 'HUP'],
      ['sigusr1', 'USR1'],
      ['TERM', 'TERM'],
    ]) {
      const text = TARGETS.replace(
        '  - name: app\n',
        `  - name: app\n    reload: { signal: ${written}, pid: 1 }\n`,
      );
      assert.deepEqual(parse(text).targets[0]?.reload, {
        kind: 'signal',
        signal: stored,
        pid: 1,
        timeoutMs: 10_000,
      });
    }
    const pidFile = TARGETS.replace(
      '  - name: app\n',
      '  - name: app\n    reload: { signal: HUP, pidFile: run/nginx.pid, timeout: 3s }\n',
    );
    assert.deepEqual(parse(pidFile).targets[0]?.reload, {
      kind: 'signal',
      signal: 'HUP',
      pidFile: '/etc/reloader/run/nginx.pid',
      timeoutMs: 3000,
    });
  });

  test('command and http reloads; http method defaults to POST and is upper-cased', () => {
    const command = TARGETS.replace(
      '  - name: app\n',
      '  - name: app\n    reload: { command: [pgbouncer-reload, 1] }\n',
    );
    assert.deepEqual(parse(command).targets[0]?.reload, {
      kind: 'command',
      command: ['pgbouncer-reload', '1'],
      timeoutMs: 10_000,
    });
    const http = TARGETS.replace(
      '  - name: app\n',
      '  - name: app\n    reload:\n      http: { url: "http://127.0.0.1:9000/-/reload" }\n',
    );
    assert.deepEqual(parse(http).targets[0]?.reload, {
      kind: 'http',
      url: 'http://127.0.0.1:9000/-/reload',
      method: 'POST',
      timeoutMs: 10_000,
    });
    const withHeaders = TARGETS.replace(
      '  - name: app\n',
      '  - name: app\n    reload:\n      http:\n        url: https://x/reload\n        method: put\n        headers: { X-Token: abc }\n      timeout: 1s\n',
    );
    assert.deepEqual(parse(withHeaders).targets[0]?.reload, {
      kind: 'http',
      url: 'https://x/reload',
      method: 'PUT',
      headers: { 'X-Token': 'abc' },
      timeoutMs: 1000,
    });
  });

  test('universal and token auth; relative secret files resolve against the spec folder', () => {
    const universal =
      'infisical:\n  auth:\n    universal: { clientId: cid, clientSecretFile: secrets/cs }\n' +
      TARGETS;
    assert.deepEqual(parse(universal).infisical.auth, {
      kind: 'universal',
      clientId: 'cid',
      clientSecretFile: '/etc/reloader/secrets/cs',
    });
    const inline =
      'infisical:\n  auth:\n    universal: { clientId: cid, clientSecret: "${CS}" }\n' + TARGETS;
    assert.deepEqual(
      parse(inline, { ...ENV, CS: '12345' }).infisical.auth,
      { kind: 'universal', clientId: 'cid', clientSecret: '12345' },
      'a numeric-looking secret stays a string',
    );
    const token = 'infisical:\n  auth:\n    token: { tokenFile: ./tok }\n' + TARGETS;
    assert.deepEqual(parse(token).infisical.auth, {
      kind: 'token',
      tokenFile: '/etc/reloader/tok',
    });
    assert.deepEqual(
      parse('infisical:\n  auth:\n    token: { token: t0 }\n' + TARGETS, {
        INFISICAL_PROJECT_ID: 'p',
      }).infisical.auth,
      { kind: 'token', token: 't0' },
      'no identity needed for token auth',
    );
  });

  test('kubernetes auth: an empty block means defaults; relative tokenPath and caFile resolve', () => {
    const text =
      'infisical:\n  caFile: ca.pem\n  auth:\n    kubernetes:\n      tokenPath: token\n' + TARGETS;
    const spec = parse(text);
    assert.deepEqual(spec.infisical.auth, {
      kind: 'kubernetes',
      identityId: 'ident-1',
      tokenPath: '/etc/reloader/token',
    });
    assert.equal(spec.infisical.caFile, '/etc/reloader/ca.pem');
    assert.equal(
      parse('infisical:\n  auth:\n    kubernetes:\n' + TARGETS).infisical.auth.kind,
      'kubernetes',
    );
    assert.equal(
      parse('infisical:\n' + TARGETS).infisical.renewAt,
      0.8,
      'an empty infisical block is allowed',
    );
  });

  test('uid, gid and createDirs are carried', () => {
    const text = TARGETS + '        uid: 101\n        gid: 0\n        createDirs: false\n';
    const file = parse(text).targets[0]?.files[0];
    assert.deepEqual([file?.uid, file?.gid, file?.createDirs], [101, 0, false]);
  });
});

describe('environment substitution in the spec', () => {
  test('values of any type can come from the environment', () => {
    const text = `infisical:
  renewAt: \${RENEW_AT:-0.5}
  timeout: \${TIMEOUT:-3s}
sources:
  - projectId: "\${PROJECT}"
    recursive: \${RECURSIVE}
webhook:
  listen: \${LISTEN:-127.0.0.1:0}
  allowUnsigned: \${UNSIGNED:-false}
targets:
  - name: \${NAME}
    files:
      - contents: "port=\${PORT}"
        destination: \${OUT_DIR}/app.conf
        mode: \${MODE}
        uid: \${UID_NUM}
`;
    const env = {
      ...ENV,
      RECURSIVE: 'true',
      PROJECT: '0012',
      NAME: 'web',
      PORT: '5432',
      OUT_DIR: '/srv',
      MODE: '0640',
      UID_NUM: '33',
    };
    const spec = parse(text, env);
    assert.equal(spec.infisical.renewAt, 0.5);
    assert.equal(spec.infisical.timeoutMs, 3000);
    assert.deepEqual([spec.sources[0]?.projectId, spec.sources[0]?.recursive], ['0012', true]);
    assert.deepEqual(spec.webhook.listen, { host: '127.0.0.1', port: 0 });
    assert.equal(spec.webhook.allowUnsigned, false);
    const file = spec.targets[0]?.files[0];
    assert.equal(spec.targets[0]?.name, 'web');
    assert.deepEqual(
      [file?.contents, file?.destination, file?.mode, file?.uid],
      ['port=5432', '/srv/app.conf', 0o640, 33],
    );
  });

  test('$${ keeps a literal ${ in templates and commands', () => {
    const text =
      TARGETS.replace('contents: hello', () => 'contents: "$${HOME} ${HOST}"') +
      '    check: { command: [sh, "-c", "test -n $${X}"] }\n';
    const spec = parse(text, { ...ENV, HOST: 'h' });
    assert.equal(spec.targets[0]?.files[0]?.contents, '${HOME} h');
    assert.deepEqual(spec.targets[0]?.check?.command, ['sh', '-c', 'test -n ${X}']);
  });

  test('a value that expands to empty counts as not set, so defaults apply', () => {
    const text =
      'infisical:\n  caFile: ${CA_FILE:-}\n  url: ${URL:-}\nwebhook:\n  secret: ${WH}\n' + TARGETS;
    const spec = parse(text, { ...ENV, WH: '' });
    assert.equal(spec.infisical.caFile, undefined);
    assert.equal(spec.infisical.url, 'http://infisical.infisical.svc.cluster.local:8080/api');
    assert.equal(spec.webhook.secret, undefined);
    assert.throws(() => requireWebhookSecret(spec), /signing secret/);
  });

  test('keys are never substituted', () => {
    expectSpecError(
      '${KEY}: 1\n' + TARGETS,
      { yamlPath: '["${KEY}"]', line: 1, message: /unknown key/ },
      { ...ENV, KEY: 'targets' },
    );
  });
});

describe('the result', () => {
  test('is deep-frozen', () => {
    const spec = parse(SPEC_EXAMPLE);
    assert.ok(Object.isFrozen(spec));
    assert.ok(Object.isFrozen(spec.infisical.auth));
    assert.ok(Object.isFrozen(spec.sources[0]));
    assert.ok(Object.isFrozen(spec.targets[0]?.files));
    assert.ok(Object.isFrozen(spec.targets[0]?.files[0]?.origin));
    assert.ok(Object.isFrozen(spec.targets[0]?.check?.command));
    assert.throws(() => {
      (spec.targets as unknown as unknown[]).push({});
    }, TypeError);
    assert.throws(() => {
      (spec.webhook as { path: string }).path = '/x';
    }, TypeError);
  });

  test('anchors and aliases work', () => {
    const text =
      'x-common: &files\n  - contents: a\n    destination: /a\n' +
      'targets:\n  - name: a\n    files: *files\n';
    expectSpecError(text, { yamlPath: 'x-common', line: 1, message: /unknown key "x-common"/ });
    const ok =
      'targets:\n  - name: a\n    files: &f\n      - contents: a\n        destination: /a\n    check: &c { command: [t] }\n  - name: b\n    files:\n      - contents: b\n        destination: /b\n    check: *c\n';
    assert.deepEqual(parse(ok).targets[1]?.check?.command, ['t']);
  });
});

describe('requireWebhookSecret', () => {
  test('passes with a secret, a secretFile or allowUnsigned', () => {
    requireWebhookSecret(parse('webhook:\n  secret: s\n' + TARGETS));
    requireWebhookSecret(parse('webhook:\n  secretFile: /s\n' + TARGETS));
    requireWebhookSecret(parse('webhook:\n  allowUnsigned: true\n' + TARGETS));
    requireWebhookSecret(parse(TARGETS, { ...ENV, INFISICAL_WEBHOOK_SECRET: 'e' }));
  });

  test('fails otherwise, naming the webhook block and INFISICAL_WEBHOOK_SECRET', () => {
    const spec = parse(TARGETS + 'webhook:\n  path: /hook\n');
    assert.throws(
      () => requireWebhookSecret(spec),
      (err: unknown) =>
        err instanceof SpecError &&
        err.location.file === FILE &&
        err.location.yamlPath === 'webhook' &&
        err.location.line === 6 &&
        /INFISICAL_WEBHOOK_SECRET/.test(err.message),
    );
  });
});

describe('loadSpec and resolveConfigPath', () => {
  let dir = '';
  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  test('loadSpec reads the file and resolves paths against its folder', async () => {
    dir = await mkdtemp(join(tmpdir(), 'reloader-spec-'));
    const file = join(dir, 'reloader.yaml');
    await writeFile(
      file,
      'targets:\n  - name: a\n    files:\n      - template: t/a.hbs\n        destination: out/a.conf\n',
    );
    const spec = await loadSpec(file, ENV);
    assert.equal(spec.file, file);
    assert.equal(spec.dir, dir);
    assert.equal(spec.targets[0]?.files[0]?.template, join(dir, 't/a.hbs'));
    assert.equal(spec.targets[0]?.files[0]?.destination, join(dir, 'out/a.conf'));
  });

  test('a missing file is a SpecError naming it', async () => {
    const missing = join(tmpdir(), 'no-such-dir-reloader', 'reloader.yaml');
    await assert.rejects(
      loadSpec(missing, ENV),
      (err: unknown) =>
        err instanceof SpecError && err.location.file === missing && /not found/.test(err.message),
    );
  });

  test('--config, then $RELOADER_CONFIG, then ./reloader.yaml, always absolute', () => {
    assert.equal(resolveConfigPath('/x/r.yaml', { RELOADER_CONFIG: '/y/r.yaml' }), '/x/r.yaml');
    assert.equal(resolveConfigPath(undefined, { RELOADER_CONFIG: '/y/r.yaml' }), '/y/r.yaml');
    assert.equal(resolveConfigPath(undefined, { RELOADER_CONFIG: '' }), resolve('reloader.yaml'));
    assert.equal(resolveConfigPath(undefined, {}), resolve('reloader.yaml'));
    assert.equal(resolveConfigPath('conf/r.yaml', {}), resolve('conf/r.yaml'));
  });
});

describe('part two: peers, admin listener, event subscriptions', () => {
  test('peers by addresses, with and without ports, IPv6 in brackets; port and timeout', () => {
    const spec = parse(
      'webhook:\n  peers:\n    addresses: ["10.0.0.5", "10.0.0.6:8081", "[fd00::7]:8082", "fd00::8"]\n    port: 8080\n    timeout: 500ms\n' +
        TARGETS,
    );
    assert.deepEqual(spec.webhook.peers, {
      addresses: [
        { host: '10.0.0.5' },
        { host: '10.0.0.6', port: 8081 },
        { host: 'fd00::7', port: 8082 },
        { host: 'fd00::8' },
      ],
      port: 8080,
      timeoutMs: 500,
    });
  });

  test('peers needs exactly one of dns and addresses', () => {
    assert.throws(
      () => parse('webhook:\n  peers:\n    dns: a.b\n    addresses: [x]\n' + TARGETS),
      (err: unknown) =>
        err instanceof Error &&
        /webhook\.peers takes exactly one of dns, addresses/.test(err.message),
    );
    assert.throws(
      () => parse('webhook:\n  peers:\n    port: 1\n' + TARGETS),
      (err: unknown) =>
        err instanceof Error && /webhook\.peers needs one of: dns, addresses/.test(err.message),
    );
    assert.throws(
      () => parse('webhook:\n  peers:\n    addresses: ["10.0.0.1:99999"]\n' + TARGETS),
      (err: unknown) =>
        err instanceof Error && /webhook\.peers\.addresses\[0\].*out of range/.test(err.message),
    );
  });

  test('the admin listener must not share the webhook port', () => {
    assert.throws(
      () => parse('webhook:\n  listen: 0.0.0.0:8080\nadmin:\n  listen: 127.0.0.1:8080\n' + TARGETS),
      (err: unknown) => err instanceof Error && /admin\.listen.*different ports/.test(err.message),
    );
    const ok = parse('webhook:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n' + TARGETS);
    assert.deepEqual(ok.admin.listen, { host: '127.0.0.1', port: 0 });
  });

  test('eventSubscription: enabled, heartbeat timeout and reconnect backoff', () => {
    const spec = parse(
      'infisical:\n  eventSubscription:\n    enabled: true\n    heartbeatTimeout: 2s\n    reconnect: { min: 100ms, max: 5s }\n' +
        TARGETS,
    );
    assert.deepEqual(spec.infisical.eventSubscription, {
      enabled: true,
      heartbeatTimeoutMs: 2000,
      reconnectMinMs: 100,
      reconnectMaxMs: 5000,
    });
    assert.throws(
      () =>
        parse('infisical:\n  eventSubscription:\n    reconnect: { min: 5s, max: 1s }\n' + TARGETS),
      (err: unknown) => err instanceof Error && /max at least min/.test(err.message),
    );
  });
});
