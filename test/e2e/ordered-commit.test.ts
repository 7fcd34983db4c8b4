import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';

describe('a backend without two-phase commit (max_prepared_transactions = 0)', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster({ maxPreparedTransactions: [20, 0] });
    const client = await tc.client();
    // A deferred unique key is checked at COMMIT: the way to make one backend's commit fail.
    await client.query(
      'CREATE TABLE codes (id int PRIMARY KEY, code text, CONSTRAINT codes_code UNIQUE (code) DEFERRABLE INITIALLY DEFERRED)',
    );
  });
  after(() => tc?.stop());

  it('commits the backends one after the other, and the change is on both', async () => {
    const client = await tc.client();
    await client.query("INSERT INTO codes VALUES (1, 'a'), (2, 'b')");
    assert.deepEqual(await tc.checksums(1), await tc.checksums(0));
    const listed = await tc.admin('GET', `/queries?cluster=${tc.cluster}&kind=write&limit=1`);
    assert.equal(listed.body.queries[0].outcome, 'committed');
  });

  it('undoes the change on the backend that committed when the next one fails its commit', async () => {
    const direct = await tc.direct(1);
    await direct.query("INSERT INTO codes VALUES (100, 'taken')");
    const client = await tc.client();
    await assert.rejects(
      client.query("INSERT INTO codes VALUES (3, 'taken')"),
      (error: pg.DatabaseError) => {
        assert.equal(error.code, '40000');
        assert.match(error.message, /the commit failed on backend demo\/1.*undone on demo\/0/);
        return true;
      },
    );
    const left = await tc.direct(0);
    const rows = await left.query('SELECT id FROM codes ORDER BY id');
    assert.deepEqual(
      rows.rows.map((r) => r.id),
      [1, 2],
      'backend 0 no longer has row 3',
    );
  });

  it('refuses changes before they run when the cluster requires two-phase commit', async () => {
    const strict = await startTestCluster({
      maxPreparedTransactions: [20, 0],
      requireTwoPhase: true,
    });
    try {
      const client = await strict.client();
      await assert.rejects(
        client.query('CREATE TABLE t (id int PRIMARY KEY)'),
        (error: pg.DatabaseError) => {
          assert.equal(error.code, '55000');
          assert.match(error.message, /requires two-phase commit/);
          return true;
        },
      );
      assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1, 'reads still work');
    } finally {
      await strict.stop();
    }
  });
});
