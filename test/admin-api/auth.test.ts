import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { adminRoutes } from '../../admin-api/server.ts';
import { mintOriginalToken } from '../../src/auth/tokens.ts';
import { type Fixture, SECRET, startFixture } from './fixture.ts';

let fixture: Fixture;

before(async () => {
  fixture = await startFixture();
});
after(async () => {
  await fixture.stop();
});

/** A request path for a route, with its parameters filled in. */
const pathOf = (path: string): string => path.replace(':id', '1').replace(':jti', 'some-jti');

describe('authentication', () => {
  test('every route refuses a request without a token with 403', async () => {
    for (const route of adminRoutes()) {
      const response = await fixture.request(route.method, pathOf(route.path), { token: null });
      assert.equal(response.status, 403, `${route.method} ${route.path}`);
      assert.match(String(response.body['error']), /missing Authorization header/);
    }
  });

  test('a header that is not "Bearer <token>" is refused as malformed', async () => {
    for (const value of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer a b', fixture.adminToken]) {
      const response = await fixture.request('GET', '/status', {
        token: null,
        headers: { authorization: value },
      });
      assert.equal(response.status, 403, value);
      assert.match(String(response.body['error']), /malformed Authorization header/);
    }
  });

  test('the Bearer scheme is matched whatever its case', async () => {
    const response = await fixture.request('GET', '/status', {
      token: null,
      headers: { authorization: `bearer ${fixture.adminToken}` },
    });
    assert.equal(response.status, 200);
  });

  test('a token that is not a JWT is refused with the reason', async () => {
    const response = await fixture.request('GET', '/status', { token: 'not-a-jwt' });
    assert.equal(response.status, 403);
    assert.match(String(response.body['error']), /^invalid token: not a JWT/);
  });

  test('a token signed with another secret is refused', async () => {
    const token = await fixture.token({ subject: 'mallory', admin: true }, 'another-secret');
    const response = await fixture.request('GET', '/status', { token });
    assert.equal(response.status, 403);
    assert.equal(
      response.body['error'],
      'invalid token: signature does not match the configured secret',
    );
  });

  test('an expired token is refused, saying when it expired', async () => {
    const token = await fixture.token({
      subject: 'late',
      admin: true,
      expiresIn: 60,
      now: Date.now() - 3_600_000,
    });
    const response = await fixture.request('GET', '/status', { token });
    assert.equal(response.status, 403);
    assert.match(String(response.body['error']), /^invalid token: token expired at \d{4}-/);
  });

  test('a token without admin is refused on every admin route', async () => {
    const token = await fixture.token({ subject: 'bob', clusters: { '*': ['read', 'write'] } });
    const adminOnly = adminRoutes().filter((route) => route.access === 'admin');
    assert.ok(adminOnly.length >= 6);
    for (const route of adminOnly) {
      const response = await fixture.request(route.method, pathOf(route.path), {
        token,
        ...(route.method === 'GET' ? {} : { body: {} }),
      });
      assert.equal(response.status, 403, `${route.method} ${route.path}`);
      assert.equal(response.body['error'], 'this route needs an admin token');
    }
  });

  test('a token without admin may use the routes open to every token', async () => {
    const token = await fixture.token({ subject: 'bob', clusters: { prod: ['read'] } });
    assert.equal((await fixture.request('GET', '/status', { token })).status, 200);
    assert.equal((await fixture.request('GET', '/openapi.json', { token })).status, 200);
  });

  test('a revoked token is refused from the moment it is revoked', async () => {
    const issued = await fixture.request('POST', '/tokens', {
      body: { subject: 'carol', clusters: {}, admin: true },
    });
    assert.equal(issued.status, 201);
    const token = String(issued.body['token']);
    assert.equal((await fixture.request('GET', '/tokens', { token })).status, 200);

    const revoked = await fixture.request('DELETE', `/tokens/${issued.body['jti']}`);
    assert.equal(revoked.status, 200);
    const refused = await fixture.request('GET', '/tokens', { token });
    assert.equal(refused.status, 403);
    assert.equal(refused.body['error'], 'the token has been revoked');
  });

  test("a token of the original's claim shape is accepted, its is_admin included", async () => {
    const token = await mintOriginalToken(SECRET, { user: 'old', data: {}, is_admin: true });
    const response = await fixture.request('GET', '/tokens', { token });
    assert.equal(response.status, 200);
  });

  test('no token appears in the log', async () => {
    await fixture.request('POST', '/tokens', { body: { subject: 'dave', clusters: {} } });
    assert.ok(fixture.logs.length > 0);
    for (const line of fixture.logs) {
      assert.doesNotMatch(line, /eyJ[\w-]+\.[\w-]+\.[\w-]+/, line);
      assert.ok(!line.includes(fixture.adminToken));
    }
  });
});
