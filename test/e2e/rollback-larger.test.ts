import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';

const SCHEMA = `
CREATE TABLE artist (id int PRIMARY KEY, name text);
CREATE TABLE album (id serial PRIMARY KEY, artist int REFERENCES artist ON DELETE CASCADE, title text);
CREATE TABLE stock (sku text PRIMARY KEY, qty int);
INSERT INTO artist VALUES (1, 'one'), (2, 'two');
INSERT INTO album (artist, title) VALUES (1, 'a'), (1, 'b'), (2, 'c');
INSERT INTO stock VALUES ('x', 1);
`;

describe('conflict checks and larger rollbacks through the admin API', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster();
    const client = await tc.client();
    await client.query(SCHEMA);
  });
  after(() => tc?.stop());

  async function lastId(): Promise<number> {
    const { body } = await tc.admin('GET', '/queries?limit=1&kind=write');
    return body.queries[0].id;
  }

  it('refuses a rollback over a row changed since, lists it, and rolls back when forced', async () => {
    const client = await tc.client();
    await client.query("UPDATE artist SET name = 'uno' WHERE id = 1");
    const id = await lastId();
    await client.query("UPDATE artist SET name = 'UNO' WHERE id = 1");

    const dry = await tc.admin('POST', `/queries/${id}/rollback`, { dry_run: true });
    assert.equal(dry.status, 200);
    assert.equal(dry.body.executed, false);
    assert.equal(dry.body.sql, "UPDATE public.artist SET name = 'one' WHERE id = 1;");
    assert.deepEqual(dry.body.conflicts, [
      {
        table: 'public.artist',
        key: { id: '1' },
        columns: ['name'],
        reason: 'the row was changed since',
      },
    ]);
    const refused = await tc.admin('POST', `/queries/${id}/rollback`, {});
    assert.equal(refused.status, 409);
    assert.equal(refused.body.conflicts.length, 1);
    const forced = await tc.admin('POST', `/queries/${id}/rollback`, { force: true });
    assert.equal(forced.status, 200, JSON.stringify(forced.body));
    assert.equal(forced.body.executed, true);
    const row = await client.query('SELECT name FROM artist WHERE id = 1');
    assert.equal(row.rows[0].name, 'one');
  });

  it('sees a deleted row inserted again as a conflict, and rolls back a cascade without one', async () => {
    const client = await tc.client();
    const start = await tc.checksums(0);
    await client.query('DELETE FROM artist WHERE id = 2');
    const id = await lastId();
    await client.query("INSERT INTO artist VALUES (2, 'again')");
    const inserted = await lastId();
    const dry = await tc.admin('POST', `/queries/${id}/rollback`, { dry_run: true });
    assert.deepEqual(
      dry.body.conflicts.map((c: { table: string; reason: string }) => `${c.table} ${c.reason}`),
      ['public.artist the row was inserted again since'],
    );
    await client.query('DELETE FROM artist WHERE id = 2');
    const again = await lastId();
    const undone = await tc.admin('POST', `/queries/${again}/rollback`, {});
    assert.equal(undone.status, 200, JSON.stringify(undone.body));
    const first = await tc.admin('POST', `/queries/${inserted}/rollback`, {});
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const back = await tc.admin('POST', `/queries/${id}/rollback`, {});
    assert.equal(back.status, 200, JSON.stringify(back.body));
    assert.deepEqual(await tc.checksums(0), start);
    assert.deepEqual(await tc.checksums(1), start);
  });

  it('rolls back a whole client transaction, newest first, as one operation', async () => {
    const client = await tc.client();
    const start = await tc.checksums(0);
    await client.query('BEGIN');
    await client.query("INSERT INTO artist VALUES (3, 'three')");
    await client.query("INSERT INTO album (artist, title) VALUES (3, 'd')");
    await client.query("UPDATE album SET title = 'A' WHERE title = 'a'");
    await client.query("INSERT INTO stock VALUES ('x', 5) ON CONFLICT (sku) DO UPDATE SET qty = 9");
    await client.query('COMMIT');
    const { body } = await tc.admin('GET', '/queries?limit=1&kind=write');
    const txn = body.queries[0].transaction;
    const dry = await tc.admin('POST', `/transactions/${txn}/rollback`, { dry_run: true });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.rolled_back.length, 4);
    assert.deepEqual(dry.body.query_ids, []);
    const done = await tc.admin('POST', `/transactions/${txn}/rollback`, {});
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.query_ids.length, 4);
    assert.deepEqual(await tc.checksums(0), start);
    assert.deepEqual(await tc.checksums(1), start);
    const twice = await tc.admin('POST', `/transactions/${txn}/rollback`, {});
    assert.equal(twice.status, 409);
  });

  it('rolls a cluster back to a point, leaving changes already undone alone', async () => {
    const client = await tc.client();
    const start = await tc.checksums(0);
    await client.query("UPDATE stock SET qty = 2 WHERE sku = 'x'");
    const point = await lastId();
    const atPoint = await tc.checksums(0);
    await client.query("INSERT INTO artist VALUES (4, 'four')");
    await client.query("UPDATE artist SET name = 'cuatro' WHERE id = 4");
    const undoneLater = await lastId();
    assert.equal((await tc.admin('POST', `/queries/${undoneLater}/rollback`, {})).status, 200);
    await client.query('DELETE FROM artist WHERE id = 1');
    await client.query("UPDATE stock SET qty = 3 WHERE sku = 'x'");

    const dry = await tc.admin('POST', `/clusters/${tc.cluster}/rollback`, {
      to_query_id: point,
      dry_run: true,
    });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.rolled_back.length, 3);
    const done = await tc.admin('POST', `/clusters/${tc.cluster}/rollback`, { to_query_id: point });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.deepEqual(await tc.checksums(0), atPoint);
    assert.deepEqual(await tc.checksums(1), atPoint);
    assert.notDeepEqual(atPoint, start);
  });
});
