import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { can, canConnect } from '../../src/auth/identity.ts';
import {
  mintOriginalToken,
  mintToken,
  parseDuration,
  TokenVerifier,
  verifyToken,
} from '../../src/auth/tokens.ts';
import { QoError } from '../../src/errors.ts';

const SECRET = 'test-secret-that-is-long-enough-0123456789';
const key = new TextEncoder().encode(SECRET);
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const NOW = Date.parse('2026-03-01T12:00:00Z');

/** Asserts that verification fails with TOKEN_INVALID and a message matching `reason`. */
async function refused(
  token: string,
  reason: RegExp,
  secret = SECRET,
  now?: number,
): Promise<void> {
  await assert.rejects(verifyToken(token, secret, now === undefined ? {} : { now }), (error) => {
    assert.ok(error instanceof QoError, `expected QoError, got ${String(error)}`);
    assert.equal(error.code, 'TOKEN_INVALID');
    assert.match(error.message, reason);
    return true;
  });
}

describe('tokens of the current shape', () => {
  test('a minted token verifies to the identity it was minted for', async () => {
    const token = await mintToken(SECRET, {
      subject: 'alice',
      clusters: { prod: ['read', 'write'], dev: ['admin'] },
      expiresIn: '1h',
      now: NOW,
    });
    const identity = await verifyToken(token, SECRET, { now: NOW });
    assert.equal(identity.subject, 'alice');
    assert.equal(identity.admin, false);
    assert.deepEqual({ ...identity.clusters }, { prod: ['read', 'write'], dev: ['admin'] });
    assert.equal(identity.exp, NOW / 1000 + 3600);
    assert.match(identity.jti ?? '', /^[0-9a-f-]{36}$/);
    assert.ok(can(identity, 'prod', 'write'));
    assert.ok(!can(identity, 'prod', 'ddl'));
    assert.ok(can(identity, 'dev', 'ddl'));
  });

  test('an admin token needs no cluster, and expiry may be given in seconds', async () => {
    const token = await mintToken(SECRET, {
      subject: 'root',
      admin: true,
      expiresIn: 60,
      now: NOW,
    });
    const identity = await verifyToken(token, SECRET, { now: NOW });
    assert.equal(identity.admin, true);
    assert.equal(identity.exp, NOW / 1000 + 60);
    assert.ok(can(identity, 'anything', 'rollback'));
  });

  test('a token without exp never expires', async () => {
    const token = await mintToken(SECRET, { subject: 'bot', clusters: { '*': ['read'] } });
    const identity = await verifyToken(token, SECRET, { now: Date.parse('2100-01-01T00:00:00Z') });
    assert.equal(identity.exp, undefined);
    assert.ok(can(identity, 'any', 'read'));
  });

  test('minting refuses unknown permissions and unreadable durations', async () => {
    await assert.rejects(
      mintToken(SECRET, { subject: 'a', clusters: { prod: ['wirte' as 'write'] } }),
      /claim "clusters\.prod" holds unknown permission "wirte"/,
    );
    await assert.rejects(
      mintToken(SECRET, { subject: 'a', expiresIn: 'soon' }),
      /expiry "soon" is not a duration/,
    );
    await assert.rejects(mintToken(SECRET, { subject: '' }), /non-empty subject/);
    await assert.rejects(mintToken('', { subject: 'a' }), { code: 'CONFIG_INVALID' });
  });

  test('a cluster named like an Object method grants nothing', async () => {
    const identity = await verifyToken(
      await mintToken(SECRET, { subject: 'a', clusters: { p: ['read'] } }),
      SECRET,
    );
    assert.ok(!can(identity, 'constructor', 'read'));
    assert.ok(!canConnect(identity, 'toString'));
    assert.ok(Object.isFrozen(identity) && Object.isFrozen(identity.clusters));
  });
});

describe('tokens of the original shape', () => {
  test('`adm` is admin on that cluster, `write` every kind of change, `is_admin` everything', async () => {
    const token = await mintOriginalToken(SECRET, {
      user: 'bob',
      data: { db1: ['adm'], db2: ['read', 'write'] },
      is_admin: false,
    });
    const identity = await verifyToken(token, SECRET);
    assert.equal(identity.subject, 'bob');
    assert.equal(identity.admin, false);
    assert.deepEqual(
      { ...identity.clusters },
      {
        db1: ['admin'],
        db2: ['read', 'write', 'ddl', 'rollback'],
      },
    );
    const admin = await verifyToken(
      await mintOriginalToken(SECRET, { user: 'root', data: {}, is_admin: true }),
      SECRET,
    );
    assert.equal(admin.admin, true);
  });

  test('a token signed as the original signed them (no iat, no jti, no exp) verifies', async () => {
    const token = await new SignJWT({ user: 'carol', data: { prod: ['read'] }, is_admin: false })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(key);
    const identity = await verifyToken(token, SECRET);
    assert.deepEqual(
      { subject: identity.subject, clusters: { ...identity.clusters }, jti: identity.jti },
      { subject: 'carol', clusters: { prod: ['read'] }, jti: undefined },
    );
  });

  test('claims that mix both shapes, or are malformed, are refused', async () => {
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key);
    await refused(await sign({ sub: 'a', data: {} }), /claims mix the current shape/);
    await refused(await sign({ clusters: {} }), /claim "sub" must be a non-empty string/);
    await refused(
      await sign({ sub: 'a', clusters: { p: 'read' } }),
      /claim "clusters\.p" must be a list/,
    );
    await refused(await sign({ user: 'a', data: { p: ['exec'] } }), /unknown permission "exec"/);
    await refused(
      await sign({ user: 'a', data: {}, is_admin: 'yes' }),
      /claim "is_admin" must be true or false/,
    );
  });
});

describe('refused tokens', () => {
  test('a token signed with another secret', async () => {
    const token = await mintToken('another-secret', { subject: 'a', admin: true });
    await refused(token, /^signature does not match the configured secret$/);
  });

  test('an expired token, with the time it expired', async () => {
    const token = await mintToken(SECRET, {
      subject: 'a',
      admin: true,
      expiresIn: 60,
      now: NOW - 120_000,
    });
    await refused(token, /^token expired at 2026-03-01T11:59:00\.000Z$/, SECRET, NOW);
  });

  test('a token not valid yet', async () => {
    const token = await new SignJWT({ sub: 'a' })
      .setProtectedHeader({ alg: 'HS256' })
      .setNotBefore(NOW / 1000 + 60)
      .sign(key);
    await refused(token, /^token not valid before 2026-03-01T12:01:00\.000Z$/, SECRET, NOW);
  });

  test('an unsigned token (alg "none"), crafted by hand', async () => {
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'a', admin: true })}.`;
    await refused(token, /^unsigned token \(alg "none"\) refused/);
    const noAlg = `${b64({ typ: 'JWT' })}.${b64({ sub: 'a', admin: true })}.`;
    await refused(noAlg, /^unsigned token/);
  });

  test('an RS256 token, and one signed with HMAC over the public key (key confusion)', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const rs256 = await new SignJWT({ sub: 'a', admin: true })
      .setProtectedHeader({ alg: 'RS256' })
      .sign(privateKey);
    await refused(rs256, /^algorithm "RS256" is not accepted/);
    const pem = await exportSPKI(publicKey);
    const input = `${b64({ alg: 'RS256' })}.${b64({ sub: 'a', admin: true })}`;
    const forged = `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
    await refused(forged, /^algorithm "RS256" is not accepted/);
  });

  test('another HMAC algorithm than HS256', async () => {
    const token = await new SignJWT({ sub: 'a' }).setProtectedHeader({ alg: 'HS512' }).sign(key);
    await refused(token, /^algorithm "HS512" is not accepted/);
  });

  test('a tampered payload', async () => {
    const [header, , signature] = (
      await mintToken(SECRET, { subject: 'a', clusters: { p: ['read'] } })
    ).split('.');
    await refused(
      `${header}.${b64({ sub: 'a', admin: true })}.${signature}`,
      /signature does not match/,
    );
  });

  test('garbage', async () => {
    await refused('', /^no token given$/);
    await refused('hello', /^not a JWT: expected three base64url parts/);
    await refused('a.b.c', /^not a JWT: its header is not base64url-encoded JSON$/);
    await refused('a.b.c.d.e', /^an encrypted token \(JWE\) is not accepted/);
    await refused(undefined as unknown as string, /^no token given$/);
    const signedGarbage = `${b64({ alg: 'HS256' })}.${Buffer.from('not json').toString('base64url')}`;
    const mac = createHmac('sha256', SECRET).update(signedGarbage).digest('base64url');
    await refused(`${signedGarbage}.${mac}`, /^not a JWT: /);
  });
});

describe('the verification cache', () => {
  test('a verified token is remembered and returned as the same identity', async () => {
    const verifier = new TokenVerifier(SECRET);
    const token = await mintToken(SECRET, { subject: 'a', admin: true, expiresIn: '1h', now: NOW });
    const first = await verifier.verify(token, { now: NOW });
    assert.equal(verifier.size, 1);
    assert.equal(await verifier.verify(token, { now: NOW + 1000 }), first);
  });

  test('a remembered token past its exp is refused and forgotten', async () => {
    const verifier = new TokenVerifier(SECRET);
    const token = await mintToken(SECRET, { subject: 'a', admin: true, expiresIn: 60, now: NOW });
    await verifier.verify(token, { now: NOW });
    assert.equal(verifier.size, 1);
    await assert.rejects(verifier.verify(token, { now: NOW + 60_000 }), {
      code: 'TOKEN_INVALID',
      message: 'token expired at 2026-03-01T12:01:00.000Z',
    });
    assert.equal(verifier.size, 0);
  });

  test('a token remembered for one secret is not accepted with another', async () => {
    const token = await mintToken(SECRET, { subject: 'a', admin: true });
    await verifyToken(token, SECRET);
    await refused(token, /signature does not match/, 'a-different-secret');
  });

  test('refused tokens are not remembered, and the cache is bounded', async () => {
    const verifier = new TokenVerifier(SECRET, 2);
    await assert.rejects(verifier.verify('garbage'));
    assert.equal(verifier.size, 0);
    for (const subject of ['a', 'b', 'c']) {
      await verifier.verify(await mintToken(SECRET, { subject, admin: true }));
    }
    assert.equal(verifier.size, 2);
  });
});

test('durations read as seconds', () => {
  assert.equal(parseDuration(90), 90);
  assert.equal(parseDuration('90'), 90);
  assert.equal(parseDuration('15m'), 900);
  assert.equal(parseDuration('1h'), 3600);
  assert.equal(parseDuration('7d'), 604_800);
  assert.equal(parseDuration('2w'), 1_209_600);
  assert.equal(parseDuration('0'), undefined);
  assert.equal(parseDuration(-5), undefined);
  assert.equal(parseDuration('1y'), undefined);
  assert.equal(parseDuration('soon'), undefined);
});
