import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { verifyToken } from '../../src/auth/tokens.ts';
import { type Fixture, SECRET, startFixture } from './fixture.ts';

let fixture: Fixture;

before(async () => {
  fixture = await startFixture();
});
after(async () => {
  await fixture.stop();
});

describe('POST /tokens', () => {
  test('issues a signed token that carries the requested permissions, and records it', async () => {
    const before = Date.now();
    const response = await fixture.request('POST', '/tokens', {
      body: { subject: 'alice', clusters: { prod: ['read', 'write'], '*': ['read'] } },
    });
    assert.equal(response.status, 201);
    assert.deepEqual(Object.keys(response.body).sort(), ['expires_at', 'jti', 'token']);
    assert.equal(response.body['expires_at'], null);
    const identity = await verifyToken(String(response.body['token']), SECRET);
    assert.equal(identity.subject, 'alice');
    assert.equal(identity.admin, false);
    assert.equal(identity.jti, response.body['jti']);
    assert.deepEqual({ ...identity.clusters }, { prod: ['read', 'write'], '*': ['read'] });

    const record = (await fixture.catalog.listTokens()).find((t) => t.jti === identity.jti);
    assert.ok(record);
    assert.equal(record.subject, 'alice');
    assert.equal(record.expiresAt, null);
    assert.ok(record.issuedAt.getTime() >= Math.floor(before / 1000) * 1000);
  });

  test('expires_in accepts seconds and durations, and the answer says when it expires', async () => {
    for (const [expiresIn, seconds] of [
      [3600, 3600],
      ['1h', 3600],
      ['15m', 900],
    ] as const) {
      const response = await fixture.request('POST', '/tokens', {
        body: { subject: 'temp', clusters: {}, admin: true, expires_in: expiresIn },
      });
      assert.equal(response.status, 201);
      const identity = await verifyToken(String(response.body['token']), SECRET);
      assert.equal(identity.admin, true);
      assert.equal(
        new Date(String(response.body['expires_at'])).getTime(),
        identity.exp! * 1000,
        String(expiresIn),
      );
      const record = (await fixture.catalog.listTokens()).find((t) => t.jti === identity.jti);
      const lifetime = (record!.expiresAt!.getTime() - record!.issuedAt.getTime()) / 1000;
      assert.equal(lifetime, seconds);
    }
  });

  test('invalid bodies are refused with 400 naming the faulty key', async () => {
    const cases: [unknown, string][] = [
      [{ clusters: {} }, 'missing key "subject"'],
      [{ subject: '', clusters: {} }, '"subject" must not be empty'],
      [{ subject: 7, clusters: {} }, '"subject" must be a string'],
      [{ subject: 'x' }, 'missing key "clusters"'],
      [{ subject: 'x', clusters: ['read'] }, '"clusters" must be an object of lists of strings'],
      [{ subject: 'x', clusters: { prod: 'read' } }, '"clusters.prod" must be a list of strings'],
      [
        { subject: 'x', clusters: { prod: ['wirte'] } },
        '"clusters.prod[0]" must be one of read, write, ddl, rollback, admin',
      ],
      [{ subject: 'x', clusters: {}, admin: 'yes' }, '"admin" must be a boolean (true or false)'],
      [
        { subject: 'x', clusters: {}, expires_in: 'soon' },
        '"expires_in" must be a number of seconds or a duration such as "15m", "1h" or "7d"',
      ],
      [{ subject: 'x', clusters: {}, expires_in: 0 }, '"expires_in" must be a number'],
      [{ subject: 'x', clusters: {}, expires_in: 1e20 }, '"expires_in" must be a number'],
      [{ subject: 'x', clusters: {}, expires_in: '99999999999w' }, '"expires_in" must be'],
      [{ subject: 'x', clusters: {}, expires_in: 315_360_001 }, '"expires_in" must be'],
      [{ subject: 'x', clusters: {}, expire: '1h' }, '"expire" is not known'],
      [{ subject: 'x', clusters: { '': ['read'] } }, 'claim "clusters" names an empty cluster'],
      [['subject'], 'the request body must be an object'],
    ];
    for (const [body, message] of cases) {
      const response = await fixture.request('POST', '/tokens', { body });
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.ok(
        String(response.body['error']).startsWith(message),
        `${JSON.stringify(body)}: ${response.body['error']}`,
      );
    }
    const empty = await fixture.request('POST', '/tokens');
    assert.deepEqual([empty.status, empty.body], [400, { error: 'no JSON body' }]);
  });
});

describe('GET /tokens and DELETE /tokens/:jti', () => {
  test('lists the recorded tokens newest first, without the tokens themselves', async () => {
    const issued = await fixture.request('POST', '/tokens', {
      body: { subject: 'listed', clusters: { dev: ['ddl'] }, expires_in: '7d' },
    });
    const response = await fixture.request('GET', '/tokens');
    assert.equal(response.status, 200);
    const tokens = response.body['tokens'] as Record<string, unknown>[];
    const listed = tokens.find((token) => token['jti'] === issued.body['jti']);
    assert.deepEqual(listed, {
      jti: issued.body['jti'],
      subject: 'listed',
      claims: { clusters: { dev: ['ddl'] }, admin: false },
      issued_at: listed?.['issued_at'],
      expires_at: issued.body['expires_at'],
      revoked_at: null,
    });
    const issuedTimes = tokens.map((token) => Date.parse(String(token['issued_at'])));
    assert.deepEqual(
      issuedTimes,
      [...issuedTimes].sort((a, b) => b - a),
    );
    assert.ok(!JSON.stringify(response.body).includes(String(issued.body['token'])));
  });

  test('revokes a token, records when, and keeps the first time on a second revocation', async () => {
    const issued = await fixture.request('POST', '/tokens', {
      body: { subject: 'leaving', clusters: { prod: ['read'] } },
    });
    const jti = String(issued.body['jti']);
    const first = await fixture.request('DELETE', `/tokens/${jti}`);
    assert.deepEqual([first.status, first.body], [200, { jti, revoked: true, known: true }]);
    assert.equal(await fixture.catalog.isRevoked(jti), true);
    const revokedAt = (await fixture.catalog.listTokens()).find((t) => t.jti === jti)?.revokedAt;
    assert.ok(revokedAt instanceof Date);

    const again = await fixture.request('DELETE', `/tokens/${jti}`);
    assert.equal(again.status, 200);
    const still = (await fixture.catalog.listTokens()).find((t) => t.jti === jti)?.revokedAt;
    assert.equal(still?.getTime(), revokedAt.getTime());

    const listed = await fixture.request('GET', '/tokens');
    const entry = (listed.body['tokens'] as Record<string, unknown>[]).find(
      (t) => t['jti'] === jti,
    );
    assert.equal(entry?.['revoked_at'], revokedAt.toISOString());
  });

  test('a token issued elsewhere is revoked by its jti, and refused from then on', async () => {
    const token = await fixture.token({ subject: 'cli-user', admin: true, jti: 'minted-by-cli' });
    assert.equal((await fixture.request('GET', '/status', { token })).status, 200);
    const response = await fixture.request('DELETE', '/tokens/minted-by-cli');
    assert.deepEqual(
      [response.status, response.body],
      [200, { jti: 'minted-by-cli', revoked: true, known: false }],
    );
    const refused = await fixture.request('GET', '/status', { token });
    assert.deepEqual(
      [refused.status, refused.body],
      [403, { error: 'the token has been revoked' }],
    );
    const again = await fixture.request('DELETE', '/tokens/minted-by-cli');
    assert.deepEqual([again.status, again.body['known']], [200, false]);
    const listed = await fixture.request('GET', '/tokens');
    const jtis = (listed.body['tokens'] as Record<string, unknown>[]).map((t) => t['jti']);
    assert.ok(!jtis.includes('minted-by-cli'));
  });

  test('a valid expires_in of up to ten years is accepted', async () => {
    const response = await fixture.request('POST', '/tokens', {
      body: { subject: 'long', clusters: {}, expires_in: 315_360_000 },
    });
    assert.equal(response.status, 201);
  });
});
