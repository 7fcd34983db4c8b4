import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';

describe('a cluster with capture: false', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster({ capture: false });
  });
  after(() => tc?.stop());

  it('records every change with no undo, saying capture is off, and refuses to roll it back', async () => {
    const client = await tc.client();
    await client.query('CREATE TABLE item (id int PRIMARY KEY, n int)');
    await client.query('INSERT INTO item VALUES (1, 1), (2, 2)');
    await client.query('UPDATE item SET n = n + 1 WHERE id = $1', [1]);
    await client.query('DELETE FROM item WHERE id = 2');
    const { body } = await tc.admin('GET', '/queries?limit=4');
    const entries = body.queries.map((q: { id: number }) => q.id);
    assert.equal(entries.length, 4);
    for (const id of entries) {
      const entry = (await tc.admin('GET', `/queries/${id}`)).body;
      assert.equal(entry.reversibility, 'none', entry.sql);
      assert.equal(entry.reason, 'capture is off for this cluster');
      assert.equal(entry.rollback, null);
    }
    const refused = await tc.admin('POST', `/queries/${entries[0]}/rollback`, {});
    assert.equal(refused.status, 409);
    const rows = await (await tc.direct(1)).query('SELECT id, n FROM item ORDER BY id');
    assert.deepEqual(rows.rows, [{ id: 1, n: 2 }]);
  });
});
