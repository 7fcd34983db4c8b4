import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { mintToken, verifyToken } from '../../src/auth/tokens.ts';
import { SECRET, startTestCluster, type TestCluster } from '../harness/cluster.ts';

describe('revoking a token minted outside the admin API', () => {
  let tc: TestCluster;

  before(async () => {
    tc = await startTestCluster({ backends: 1 });
  });
  after(() => tc?.stop());

  it('refuses it at the proxy (28P01) and at the admin API (403) once its jti is revoked', async () => {
    // What `npm run token` and the start-up banner do: sign with the secret, nothing recorded.
    const token = await mintToken(SECRET, { subject: 'cli-admin', admin: true, expiresIn: '1h' });
    const { jti } = await verifyToken(token, SECRET);
    assert.ok(jti !== undefined);
    const client = await tc.client(token);
    assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
    assert.equal((await tc.admin('GET', '/status', undefined, token)).status, 200);

    const revoked = await tc.admin('DELETE', `/tokens/${jti}`);
    assert.deepEqual([revoked.status, revoked.body], [200, { jti, revoked: true, known: false }]);

    await assert.rejects(tc.client(token), (error: pg.DatabaseError) => {
      assert.equal(error.code, '28P01');
      assert.match(error.message, /revoked/);
      return true;
    });
    const refused = await tc.admin('GET', '/status', undefined, token);
    assert.deepEqual(
      [refused.status, refused.body],
      [403, { error: 'the token has been revoked' }],
    );

    // The admin token printed at start is another such token; it still works.
    assert.equal((await tc.admin('GET', '/status')).status, 200);
  });
});
