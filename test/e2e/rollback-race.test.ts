import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ProxyExecutor } from '../../proxy/executor.ts';
import type { Identity } from '../../src/auth/identity.ts';
import { QoError } from '../../src/errors.ts';
import { silentLogger } from '../../src/log.ts';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';

const ROOT: Identity = { subject: 'root', clusters: {}, admin: true };

describe('rollbacks of one change that arrive together', () => {
  let tc: TestCluster;

  before(async () => {
    tc = await startTestCluster();
    const client = await tc.client();
    await client.query('CREATE TABLE race (k int PRIMARY KEY, v text)');
    await client.query("INSERT INTO race VALUES (1, 'kept'), (2, 'deleted')");
  });
  after(() => tc?.stop());

  /** Runs a change through the proxy and returns its audit id. */
  const change = async (sql: string): Promise<number> => {
    const client = await tc.client();
    await client.query(sql);
    const listed = await tc.admin('GET', `/queries?cluster=${tc.cluster}&kind=write&limit=1`);
    assert.equal(listed.body.queries[0].sql, sql);
    return listed.body.queries[0].id;
  };

  const rows = async (): Promise<string[]> => {
    const client = await tc.direct(0);
    const result = await client.query<{ k: number; v: string }>('SELECT k, v FROM race ORDER BY k');
    await client.end();
    return result.rows.map((row) => `${row.k}:${row.v}`);
  };

  const rollbackEntries = async (id: number) => {
    const listed = await tc.admin('GET', `/queries?cluster=${tc.cluster}&kind=rollback&limit=1000`);
    return (listed.body.queries as { rollback_of: number }[]).filter((q) => q.rollback_of === id);
  };

  const assertBackendsIdentical = async () => {
    assert.deepEqual(await tc.checksums(1), await tc.checksums(0));
  };

  /** Ten POST /queries/:id/rollback at once: one rolls back, nine are refused with 409. */
  const rollBackTenTimes = async (id: number) => {
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => tc.admin('POST', `/queries/${id}/rollback`, {})),
    );
    const statuses = answers.map((answer) => answer.status).sort();
    assert.deepEqual(statuses, [200, ...Array(9).fill(409)], JSON.stringify(answers));
    for (const answer of answers.filter((a) => a.status === 409)) {
      assert.match(
        answer.body.error,
        new RegExp(
          `^query ${id} was already rolled back by query \\d+$|^a rollback of query ${id} is already running$`,
        ),
      );
    }
    assert.equal((await rollbackEntries(id)).length, 1);
    await assertBackendsIdentical();
  };

  it('an INSERT rolled back ten times at once through the admin API is undone once', async () => {
    const id = await change("INSERT INTO race VALUES (3, 'inserted')");
    await rollBackTenTimes(id);
    assert.deepEqual(await rows(), ['1:kept', '2:deleted']);
  });

  it('a DELETE rolled back ten times at once through the admin API is undone once', async () => {
    const id = await change('DELETE FROM race WHERE k = 2');
    await rollBackTenTimes(id);
    assert.deepEqual(await rows(), ['1:kept', '2:deleted']);
  });

  it('proxy instances sharing the catalog commit one rollback of a change and refuse the others', async () => {
    // Each executor stands in for another proxy instance: they do not see each other's
    // rollbacks in flight, only the catalog's record of them.
    const instances = Array.from(
      { length: 4 },
      () => new ProxyExecutor(tc.orchestrator.clusters, tc.orchestrator.catalog, silentLogger),
    );
    for (const sql of [
      "INSERT INTO race VALUES (4, 'inserted')",
      "UPDATE race SET v = 'updated' WHERE k = 1",
      'DELETE FROM race WHERE k = 2',
    ]) {
      const id = await change(sql);
      const attempts = await Promise.allSettled(
        instances.map((instance) => instance.rollback(ROOT, id)),
      );
      assert.equal(attempts.filter((a) => a.status === 'fulfilled').length, 1, sql);
      for (const attempt of attempts) {
        if (attempt.status === 'rejected') {
          assert.ok(attempt.reason instanceof QoError, `${sql}: ${attempt.reason}`);
          assert.equal(attempt.reason.code, 'ROLLBACK_UNAVAILABLE', sql);
          assert.match(attempt.reason.message, new RegExp(`^query ${id} was already rolled back`));
        }
      }
      assert.equal((await rollbackEntries(id)).length, 1, sql);
      assert.deepEqual(await rows(), ['1:kept', '2:deleted'], sql);
      await assertBackendsIdentical();
    }
  });
});
