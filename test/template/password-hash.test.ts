import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { compareSync } from 'bcryptjs';
import { saslPrep, scramVerifier } from '../../src/template/password-hash.js';
import { out, renderError } from './fixtures.js';

const PW = { secrets: { PW: 'correct horse battery staple' } };

describe('bcrypt', () => {
  it('renders a $2b$ hash that verifies, at the default cost 10 or the cost given', () => {
    const hash = out('{{bcrypt secrets.PW}}', PW);
    assert.match(hash, /^\$2b\$10\$[./A-Za-z0-9]{53}$/);
    assert.ok(compareSync('correct horse battery staple', hash));
    assert.ok(!compareSync('correct horse battery stapler', hash));
    assert.match(out('{{bcrypt secrets.PW 4}}', PW), /^\$2b\$04\$/);
  });

  it('is deterministic for one value, key and target, and differs when any of them changes', () => {
    const a = out('{{bcrypt secrets.PW 4}}', PW);
    assert.equal(out('{{bcrypt secrets.PW 4}}', PW), a, 'unchanged secret: same bytes');
    const salt = (h: string): string => h.slice(7, 29);
    const other = out('{{bcrypt secrets.PW 4}}', { secrets: { PW: 'another one' } });
    const otherTarget = out('{{bcrypt secrets.PW 4}}', { ...PW, target: 'elsewhere' });
    const otherKey = out('{{bcrypt secrets.PW2 4}}', {
      secrets: { PW2: 'correct horse battery staple' },
    });
    for (const h of [other, otherTarget, otherKey]) assert.notEqual(salt(h), salt(a));
  });

  it('refuses a value bcrypt would cut at 72 bytes, and a bad cost, without echoing the value', () => {
    const long = 'x'.repeat(73);
    const err = renderError('{{bcrypt secrets.L}}', { secrets: { L: long } }, 'RLD_ERR_RENDER');
    assert.match(err.message, /longer than 72 bytes/);
    assert.doesNotMatch(err.message, /xxxx/);
    renderError('{{bcrypt secrets.PW 3}}', PW, 'RLD_ERR_RENDER');
    renderError('{{bcrypt secrets.PW "ten"}}', PW, 'RLD_ERR_RENDER');
    renderError('{{bcrypt secrets.MISSING}}', PW, 'RLD_ERR_MISSING_KEY');
  });
});

describe('htpasswd', () => {
  it('renders user:$2y$ that verifies (nginx and Apache read $2y$)', () => {
    const line = out('{{htpasswd "alice" secrets.PW 5}}', PW);
    const [user, hash] = line.split(':');
    assert.equal(user, 'alice');
    assert.match(hash ?? '', /^\$2y\$05\$/);
    assert.ok(compareSync('correct horse battery staple', `$2b$${(hash ?? '').slice(4)}`));
  });

  it('salts per user: two users with one password get different hashes', () => {
    const a = out('{{htpasswd "alice" secrets.PW 4}}', PW).split(':')[1];
    const b = out('{{htpasswd "bob" secrets.PW 4}}', PW).split(':')[1];
    assert.notEqual(a, b);
  });

  it('refuses a user name with ":" or a line break', () => {
    renderError('{{htpasswd "a:b" secrets.PW 4}}', PW, 'RLD_ERR_RENDER');
    renderError('{{htpasswd "" secrets.PW 4}}', PW, 'RLD_ERR_RENDER');
  });
});

describe('scramSha256', () => {
  it('matches the RFC 7677 exchange: the client proof of "pencil" checks against the verifier', () => {
    // RFC 7677 section 3: salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations, password "pencil".
    const verifier = scramVerifier(
      'pencil',
      Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
      4096,
    );
    const m = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(verifier);
    assert.ok(m, verifier);
    const storedKey = Buffer.from(m[2] as string, 'base64');
    const serverKey = Buffer.from(m[3] as string, 'base64');
    const authMessage =
      'n=user,r=rOprNGfwEbeRWgbNEkqO,' +
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,' +
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
    const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
    const signature = createHmac('sha256', storedKey).update(authMessage).digest();
    const clientKey = Buffer.from(proof.map((b, i) => b ^ (signature[i] as number)));
    assert.deepEqual(createHash('sha256').update(clientKey).digest(), storedKey);
    const serverSignature = createHmac('sha256', serverKey).update(authMessage).digest('base64');
    assert.equal(serverSignature, '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });

  it('renders a deterministic verifier that changes with the value', () => {
    const a = out('{{scramSha256 secrets.PW}}', PW);
    assert.match(
      a,
      /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/,
    );
    assert.equal(out('{{scramSha256 secrets.PW}}', PW), a);
    assert.notEqual(out('{{scramSha256 secrets.PW}}', { secrets: { PW: 'x' } }), a);
    assert.match(out('{{scramSha256 secrets.PW 8192}}', PW), /^SCRAM-SHA-256\$8192:/);
    renderError('{{scramSha256 secrets.PW 10}}', PW, 'RLD_ERR_RENDER');
  });

  it('prepares passwords as PostgreSQL does (SASLprep), ASCII unchanged', () => {
    assert.equal(saslPrep('p@ss word!'), 'p@ss word!');
    assert.equal(saslPrep('a\u00A0b\u00ADc'), 'a bc');
    assert.equal(saslPrep('\uFB01'), 'fi', 'NFKC');
    assert.equal(saslPrep('x\u0007y\u00E9'), 'x\u0007y\u00E9', 'prohibited: raw');
  });
});
