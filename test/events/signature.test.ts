import { createHmac } from 'node:crypto';
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ReplayCache, signWebhook, verifyWebhook } from '../../src/events/signature.js';

const SECRET = 'whsec-test-secret';
const NOW = 1767225600000;
const MAX_AGE = 5 * 60 * 1000;
const opts = { nowMs: NOW, maxAgeMs: MAX_AGE };

/** Infisical's `secrets.modified`, built like Infisical does (JSON.stringify, timestamp last). */
const SAMPLE = JSON.stringify({
  event: 'secrets.modified',
  project: {
    workspaceId: 'proj-uuid',
    projectId: 'proj-uuid',
    projectName: 'Payments',
    environment: 'prod',
    environmentName: 'Production',
    secretPath: '/api',
    changedBy: 'Ada Lovelace',
    changedByActorType: 'user',
  },
  timestamp: NOW,
});
/** `printf '%s' "$SAMPLE" | openssl dgst -sha256 -hmac whsec-test-secret` */
const SAMPLE_HEX = '2639ae2dd4c28ab45b09317c296a32b2ba286ea8cf0b525a0dde4959501ef462';

describe('signWebhook', () => {
  it('matches the RFC 4231 test case 2 vector', () => {
    assert.equal(
      signWebhook('what do ya want for nothing?', 'Jefe', 0),
      't=0;5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  it('signs the documented Infisical sample byte-exactly (openssl and node:crypto agree)', () => {
    const byHand = createHmac('sha256', SECRET).update(Buffer.from(SAMPLE, 'utf8')).digest('hex');
    assert.equal(byHand, SAMPLE_HEX);
    assert.equal(signWebhook(SAMPLE, SECRET, NOW), `t=${NOW};${SAMPLE_HEX}`);
    assert.equal(signWebhook(Buffer.from(SAMPLE), SECRET, NOW), `t=${NOW};${SAMPLE_HEX}`);
  });

  it('covers the body only, not the timestamp', () => {
    const a = signWebhook('{}', SECRET, 1).split(';')[1];
    const b = signWebhook('{}', SECRET, 2).split(';')[1];
    assert.equal(a, b);
  });

  it('refuses a timestamp that is not integer milliseconds', () => {
    assert.throws(() => signWebhook('{}', SECRET, 1.5), { code: 'RLD_ERR_INTERNAL' });
    assert.throws(() => signWebhook('{}', SECRET, -1), { code: 'RLD_ERR_INTERNAL' });
  });
});

describe('verifyWebhook', () => {
  const body = Buffer.from(SAMPLE);
  const header = `t=${NOW};${SAMPLE_HEX}`;

  it('accepts the sample with its exact header', () => {
    assert.deepEqual(verifyWebhook(body, header, SECRET, opts), {
      ok: true,
      timestampMs: NOW,
      signature: SAMPLE_HEX,
    });
  });

  it('accepts surrounding whitespace, upper-case hex, "," and spaces around the separator', () => {
    const expected = { ok: true, timestampMs: NOW, signature: SAMPLE_HEX };
    assert.deepEqual(verifyWebhook(body, `  ${header}\t`, SECRET, opts), expected);
    assert.deepEqual(
      verifyWebhook(body, `t=${NOW};${SAMPLE_HEX.toUpperCase()}`, SECRET, opts),
      expected,
    );
    assert.deepEqual(verifyWebhook(body, `t=${NOW},${SAMPLE_HEX}`, SECRET, opts), expected);
    assert.deepEqual(verifyWebhook(body, `t=${NOW} ; ${SAMPLE_HEX}`, SECRET, opts), expected);
    assert.deepEqual(verifyWebhook(body, [header], SECRET, opts), expected);
  });

  it('reports a missing header', () => {
    for (const h of [undefined, '', '   ', []]) {
      assert.deepEqual(
        verifyWebhook(body, h, SECRET, opts),
        { ok: false, reason: 'missing' },
        String(h),
      );
    }
  });

  it('reports malformed headers', () => {
    const bad = [
      SAMPLE_HEX,
      `${NOW};${SAMPLE_HEX}`,
      `t=;${SAMPLE_HEX}`,
      `t=abc;${SAMPLE_HEX}`,
      `t=-1;${SAMPLE_HEX}`,
      `t=1.5;${SAMPLE_HEX}`,
      `t=${NOW}`,
      `t=${NOW};`,
      `t=${NOW};v1=${SAMPLE_HEX}`,
      `t=${NOW};${SAMPLE_HEX.slice(0, 63)}g`,
      `t=${NOW}:${SAMPLE_HEX}`,
      `t=${NOW};${SAMPLE_HEX};extra`,
      `T=${NOW};${SAMPLE_HEX}`,
      `t=12345678901234567;${SAMPLE_HEX}`,
      `t=99999999999999999;${SAMPLE_HEX}`,
      `t=${NOW};${'a'.repeat(300)}`,
    ];
    for (const h of bad) {
      assert.deepEqual(verifyWebhook(body, h, SECRET, opts), { ok: false, reason: 'malformed' }, h);
    }
    assert.deepEqual(verifyWebhook(body, [header, header], SECRET, opts), {
      ok: false,
      reason: 'malformed',
    });
  });

  it('reports a wrong-length or wrong signature as a mismatch, without throwing', () => {
    const cases = [
      `t=${NOW};${SAMPLE_HEX.slice(0, 62)}`,
      `t=${NOW};${SAMPLE_HEX}0`,
      `t=${NOW};${SAMPLE_HEX}00`,
      `t=${NOW};ab`,
      `t=${NOW};${'0'.repeat(64)}`,
      `t=${NOW};${SAMPLE_HEX.slice(0, 63)}${SAMPLE_HEX.endsWith('0') ? '1' : '0'}`,
    ];
    for (const h of cases) {
      assert.deepEqual(verifyWebhook(body, h, SECRET, opts), { ok: false, reason: 'mismatch' }, h);
    }
    assert.deepEqual(verifyWebhook(body, header, 'another-secret', opts), {
      ok: false,
      reason: 'mismatch',
    });
  });

  it('fails when one byte of the body changes', () => {
    for (let i = 0; i < body.length; i += 7) {
      const changed = Buffer.from(body);
      changed[i] = (changed[i] ?? 0) ^ 0x01;
      const res = verifyWebhook(changed, header, SECRET, opts);
      assert.equal(res.ok, false, `byte ${i}`);
    }
  });

  it('fails for the same JSON with different whitespace (raw bytes matter)', () => {
    const pretty = Buffer.from(JSON.stringify(JSON.parse(SAMPLE), null, 2));
    assert.deepEqual(JSON.parse(pretty.toString()), JSON.parse(SAMPLE));
    assert.deepEqual(verifyWebhook(pretty, header, SECRET, opts), {
      ok: false,
      reason: 'mismatch',
    });
    const trailingNewline = Buffer.from(`${SAMPLE}\n`);
    assert.equal(verifyWebhook(trailingNewline, header, SECRET, opts).ok, false);
  });

  it('rejects events older or newer than maxAge, and accepts the boundary', () => {
    const at = (ts: number) => {
      const b = Buffer.from(JSON.stringify({ event: 'test', timestamp: ts }));
      return verifyWebhook(b, signWebhook(b, SECRET, ts), SECRET, opts);
    };
    assert.deepEqual(at(NOW - MAX_AGE - 1), { ok: false, reason: 'stale' });
    assert.deepEqual(at(NOW + MAX_AGE + 1), { ok: false, reason: 'stale' });
    assert.deepEqual(at(0), { ok: false, reason: 'stale' });
    assert.equal(at(NOW - MAX_AGE).ok, true);
    assert.equal(at(NOW + MAX_AGE).ok, true);
  });

  it('fails closed when the clock or maxAge is not a number', () => {
    const header = `t=${NOW};${SAMPLE_HEX}`;
    const body = Buffer.from(SAMPLE);
    assert.deepEqual(verifyWebhook(body, header, SECRET, { nowMs: NaN, maxAgeMs: MAX_AGE }), {
      ok: false,
      reason: 'stale',
    });
    assert.deepEqual(verifyWebhook(body, header, SECRET, { nowMs: NOW, maxAgeMs: NaN }), {
      ok: false,
      reason: 'stale',
    });
  });

  it('reports a forged (unsigned) old event as mismatch, not stale', () => {
    const h = `t=${NOW - MAX_AGE * 10};${'1'.repeat(64)}`;
    assert.deepEqual(verifyWebhook(body, h, SECRET, opts), { ok: false, reason: 'mismatch' });
  });

  it('rejects an old signed body replayed under a fresh t (body timestamp is the signed one)', () => {
    const old = NOW - MAX_AGE * 10;
    const oldBody = Buffer.from(JSON.stringify({ event: 'secrets.modified', timestamp: old }));
    const hex = signWebhook(oldBody, SECRET, old).split(';')[1];
    assert.deepEqual(verifyWebhook(oldBody, `t=${NOW};${hex}`, SECRET, opts), {
      ok: false,
      reason: 'mismatch',
    });
    assert.deepEqual(verifyWebhook(oldBody, `t=${old};${hex}`, SECRET, opts), {
      ok: false,
      reason: 'stale',
    });
  });

  it('does not cross-check bodies without a numeric timestamp', () => {
    const bodies = [
      '{"event":"secret.updated","payload":{"secretKey":"K","secretValue":"V"}}',
      '{"event":"x","timestamp":"123"}',
      '[1,2]',
      'not json',
      '',
    ];
    for (const text of bodies) {
      const b = Buffer.from(text);
      const res = verifyWebhook(b, signWebhook(b, SECRET, NOW), SECRET, opts);
      assert.equal(res.ok, true, text);
    }
  });

  it('never verifies with an empty secret', () => {
    const b = Buffer.from('{}');
    assert.deepEqual(verifyWebhook(b, signWebhook(b, '', NOW), '', opts), {
      ok: false,
      reason: 'mismatch',
    });
  });

  it('property: never throws, and accepts only correctly signed, fresh bodies', () => {
    const bodyArb = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
    const secretArb = fc.string({ minLength: 1, maxLength: 40 });
    const tsArb = fc.integer({ min: NOW - 2 * MAX_AGE, max: NOW + 2 * MAX_AGE });
    /** How to make the header: from noise, or from a real signature, possibly damaged. */
    const headerMaker = fc.oneof(
      fc.string({ maxLength: 120 }).map((s) => () => s),
      fc.constant(() => undefined),
      fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }).map((a) => () => a),
      fc.tuple(fc.nat(), fc.stringMatching(/^[0-9a-fA-F]{0,70}$/)).map(
        ([t, h]) =>
          () =>
            `t=${t};${h}`,
      ),
      fc.tuple(tsArb, fc.uint8Array({ minLength: 32, maxLength: 32 })).map(
        ([t, h]) =>
          () =>
            `t=${t};${Buffer.from(h).toString('hex')}`,
      ),
      tsArb.map((t) => (b: Buffer, secret: string) => signWebhook(b, secret, t)),
      fc.tuple(tsArb, fc.string({ minLength: 1, maxLength: 10 })).map(
        ([t, other]) =>
          (b: Buffer, secret: string) =>
            signWebhook(b, secret + other, t),
      ),
      fc.tuple(tsArb, fc.nat(63)).map(([t, i]) => (b: Buffer, secret: string) => {
        const h = signWebhook(b, secret, t);
        const at = h.indexOf(';') + 1 + i;
        return h.slice(0, at) + (h[at] === '0' ? '1' : '0') + h.slice(at + 1);
      }),
    );
    let accepted = 0;
    fc.assert(
      fc.property(bodyArb, secretArb, headerMaker, (b, secret, make) => {
        const h = make(b, secret);
        const res = verifyWebhook(b, h, secret, opts);
        if (res.ok) {
          accepted += 1;
          const expected = createHmac('sha256', secret).update(b).digest('hex');
          assert.equal(typeof h, 'string');
          assert.equal(String(h).trim(), `t=${res.timestampMs};${expected}`);
          assert.equal(res.signature, expected);
          assert.ok(Math.abs(res.timestampMs - NOW) <= MAX_AGE);
        } else {
          assert.ok(['missing', 'malformed', 'mismatch', 'stale'].includes(res.reason));
        }
      }),
      { numRuns: 2000 },
    );
    assert.ok(accepted > 50, `only ${accepted} of 2000 runs produced a valid signature`);
  });

  it('property: a correctly signed fresh body always verifies; any bit flip never does', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a)),
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.integer({ min: NOW - MAX_AGE, max: NOW + MAX_AGE }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (b, secret, ts, pos, bit) => {
          const h = signWebhook(b, secret, ts);
          const ok = verifyWebhook(b, h, secret, opts);
          // A random body may happen to be JSON with a different numeric timestamp.
          const parsedTs = (() => {
            try {
              const v: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b));
              return typeof v === 'object' && v !== null && !Array.isArray(v)
                ? (v as Record<string, unknown>)['timestamp']
                : undefined;
            } catch {
              return undefined;
            }
          })();
          if (typeof parsedTs !== 'number' || parsedTs === ts) assert.equal(ok.ok, true);
          const flipped = Buffer.from(b);
          const i = pos % flipped.length;
          flipped[i] = (flipped[i] ?? 0) ^ (1 << bit);
          assert.deepEqual(verifyWebhook(flipped, h, secret, opts), {
            ok: false,
            reason: 'mismatch',
          });
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('ReplayCache', () => {
  it('reports the second delivery of a signature inside the window as a replay', () => {
    const cache = new ReplayCache({ maxAgeMs: MAX_AGE });
    assert.equal(cache.checkAndRemember(SAMPLE_HEX, NOW, NOW), false);
    assert.equal(cache.checkAndRemember(SAMPLE_HEX, NOW, NOW + 1000), true);
    assert.equal(cache.checkAndRemember(SAMPLE_HEX.toUpperCase(), NOW, NOW + 2000), true);
    assert.equal(cache.checkAndRemember(SAMPLE_HEX, NOW, NOW + MAX_AGE), true);
    assert.equal(cache.size, 1);
  });

  it('treats the same signature under another timestamp as a new delivery', () => {
    const cache = new ReplayCache({ maxAgeMs: MAX_AGE });
    assert.equal(cache.checkAndRemember(SAMPLE_HEX, NOW, NOW), false);
    assert.equal(cache.checkAndRemember(SAMPLE_HEX, NOW + 1, NOW + 1), false);
    assert.equal(cache.checkAndRemember('b'.repeat(64), NOW, NOW), false);
    assert.equal(cache.size, 3);
  });

  it('forgets entries once they age out of the window', () => {
    const cache = new ReplayCache({ maxAgeMs: MAX_AGE });
    cache.checkAndRemember('a'.repeat(64), NOW, NOW);
    cache.checkAndRemember('b'.repeat(64), NOW + 60_000, NOW + 60_000);
    assert.equal(cache.size, 2);
    // One ms past a's window: a is swept, b stays.
    assert.equal(
      cache.checkAndRemember('c'.repeat(64), NOW + MAX_AGE + 1, NOW + MAX_AGE + 1),
      false,
    );
    assert.equal(cache.size, 2);
    assert.equal(cache.checkAndRemember('b'.repeat(64), NOW + 60_000, NOW + MAX_AGE + 2), true);
    // Far in the future everything has expired.
    assert.equal(
      cache.checkAndRemember('d'.repeat(64), NOW + 10 * MAX_AGE, NOW + 10 * MAX_AGE),
      false,
    );
    assert.equal(cache.size, 1);
  });

  it('keeps at most maxEntries, evicting the oldest first', () => {
    const cache = new ReplayCache({ maxAgeMs: MAX_AGE, maxEntries: 3 });
    for (const s of ['1', '2', '3', '4']) cache.checkAndRemember(s, NOW, NOW);
    assert.equal(cache.size, 3);
    assert.equal(cache.checkAndRemember('4', NOW, NOW), true);
    assert.equal(cache.checkAndRemember('2', NOW, NOW), true);
    assert.equal(cache.checkAndRemember('1', NOW, NOW), false, 'the oldest was evicted');
  });

  it('stays bounded under 25,000 distinct deliveries with the default cap', () => {
    const cache = new ReplayCache({ maxAgeMs: MAX_AGE });
    for (let i = 0; i < 25_000; i += 1) cache.checkAndRemember(i.toString(16), NOW, NOW);
    assert.equal(cache.size, 10_000);
    assert.equal(cache.checkAndRemember((24_999).toString(16), NOW, NOW), true);
  });

  it('rejects a nonsense configuration', () => {
    assert.throws(() => new ReplayCache({ maxAgeMs: -1 }), { code: 'RLD_ERR_INTERNAL' });
    assert.throws(() => new ReplayCache({ maxAgeMs: 1, maxEntries: 0 }), {
      code: 'RLD_ERR_INTERNAL',
    });
  });
});
