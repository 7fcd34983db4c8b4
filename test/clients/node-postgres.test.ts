import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import Cursor from 'pg-cursor';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';
import {
  ALL_ROWS,
  appToken,
  assertBackendsEqual,
  COLUMNS,
  PREPARED_ROWS,
  packageVersion,
  rollBackLastDelete,
  TRANSACTION_ROWS,
} from './common.ts';

const TABLE = 'pg_items';

describe('node-postgres and pg-cursor through the proxy', () => {
  let tc: TestCluster;
  let client: pg.Client;
  before(async () => {
    tc = await startTestCluster();
    client = await tc.client(await appToken(tc, 'node-postgres'));
  });
  after(() => tc?.stop());

  it('connects with a token and creates a table', async (t) => {
    t.diagnostic(`pg ${packageVersion('pg')}, pg-cursor ${packageVersion('pg-cursor')}`);
    await client.query(`CREATE TABLE ${TABLE} ${COLUMNS}`);
  });

  it('runs parameterized INSERT, UPDATE and DELETE inside a transaction', async () => {
    await client.query('BEGIN');
    for (const [id, name, qty] of [
      [1, 'one', 10],
      [2, 'two', 20],
      [3, 'three', 30],
    ]) {
      const inserted = await client.query(`INSERT INTO ${TABLE} VALUES ($1, $2, $3)`, [
        id,
        name,
        qty,
      ]);
      assert.equal(inserted.rowCount, 1);
    }
    const updated = await client.query(`UPDATE ${TABLE} SET qty = $1 WHERE id = $2`, [25, 2]);
    assert.equal(updated.rowCount, 1);
    const deleted = await client.query(`DELETE FROM ${TABLE} WHERE id = $1`, [3]);
    assert.equal(deleted.rowCount, 1);
    await client.query('COMMIT');
    const rows = await client.query(`SELECT id, name, qty FROM ${TABLE} ORDER BY id`);
    assert.deepEqual(rows.rows, TRANSACTION_ROWS);
    await assertBackendsEqual(tc);
  });

  it('reuses named prepared statements for writes and reads', async () => {
    for (const row of PREPARED_ROWS) {
      const inserted = await client.query({
        name: 'insert-item',
        text: `INSERT INTO ${TABLE} (id, name, qty) VALUES ($1, $2, $3)`,
        values: [row.id, row.name, row.qty],
      });
      assert.equal(inserted.rowCount, 1);
    }
    for (const row of ALL_ROWS) {
      const found = await client.query({
        name: 'item-by-id',
        text: `SELECT id, name, qty FROM ${TABLE} WHERE id = $1`,
        values: [row.id],
      });
      assert.deepEqual(found.rows, [row]);
    }
    await assertBackendsEqual(tc);
  });

  it('reads with parameters as the first statement of a transaction', async () => {
    const reader = await tc.client(await appToken(tc, 'node-postgres-reader'));
    await reader.query('BEGIN');
    try {
      const found = await reader.query(`SELECT name FROM ${TABLE} WHERE id = $1`, [2]);
      assert.deepEqual(found.rows, [{ name: 'two' }]);
      const simple = await reader.query(`SELECT count(*)::int AS n FROM ${TABLE}`);
      assert.deepEqual(simple.rows, [{ n: ALL_ROWS.length }]);
      const again = await reader.query(`SELECT name FROM ${TABLE} WHERE id = $1`, [4]);
      assert.deepEqual(again.rows, [{ name: 'four' }]);
      await reader.query('COMMIT');
    } finally {
      await reader.end();
    }
  });

  it('reads with a cursor in batches of 10 (Execute with a row limit)', async () => {
    // A session of its own, so that a cursor failure leaves the scenario's session alone.
    const reader = await tc.client(await appToken(tc, 'node-postgres-cursor'));
    const cursor = reader.query(
      new Cursor<{ n: number; label: string }>(
        'SELECT n, $1::text || n AS label FROM generate_series(1, 35) AS n',
        ['row '],
      ),
    );
    const sizes: number[] = [];
    const seen: number[] = [];
    for (;;) {
      const batch = await cursor.read(10);
      if (batch.length === 0) break;
      sizes.push(batch.length);
      seen.push(...batch.map((row) => row.n));
    }
    await cursor.close();
    assert.deepEqual(sizes, [10, 10, 10, 5]);
    assert.deepEqual(
      seen,
      Array.from({ length: 35 }, (_, i) => i + 1),
    );
    const after = await reader.query('SELECT 1 AS one');
    assert.deepEqual(after.rows, [{ one: 1 }], 'the session works after the cursor');
    await reader.end();
  });

  it('reads the table with a cursor inside a transaction', async () => {
    const reader = await tc.client(await appToken(tc, 'node-postgres-cursor'));
    await reader.query('BEGIN');
    const cursor = reader.query(
      new Cursor<{ id: number }>(`SELECT id FROM ${TABLE} WHERE qty >= $1 ORDER BY id`, [0]),
    );
    const first = await cursor.read(4);
    const rest = await cursor.read(10);
    await cursor.close();
    await reader.query('COMMIT');
    await reader.end();
    assert.deepEqual(
      [...first, ...rest].map((row) => row.id),
      ALL_ROWS.map((row) => row.id),
    );
    assert.equal(first.length, 4);
  });

  it('reports a failing statement, then works again after ROLLBACK', async () => {
    await client.query('BEGIN');
    await assert.rejects(
      client.query(`INSERT INTO ${TABLE} VALUES ($1, $2, $3)`, [1, 'dup', 0]),
      (error: pg.DatabaseError) => error.code === '23505',
    );
    await assert.rejects(
      client.query('SELECT 1'),
      (error: pg.DatabaseError) => error.code === '25P02',
    );
    await client.query('ROLLBACK');
    const count = await client.query(`SELECT count(*)::int AS n FROM ${TABLE}`);
    assert.deepEqual(count.rows, [{ n: ALL_ROWS.length }]);
    await assert.rejects(
      client.query('SELECT 1 / $1::int', [0]),
      (error: pg.DatabaseError) => error.code === '22012',
    );
    const again = await client.query('SELECT $1::int + 1 AS two', [1]);
    assert.deepEqual(again.rows, [{ two: 2 }], 'an autocommit error leaves the session usable');
  });

  it('rolls the last change back through the admin API', async () => {
    const deleted = await client.query(`DELETE FROM ${TABLE} WHERE id = $1`, [7]);
    assert.equal(deleted.rowCount, 1);
    await rollBackLastDelete(tc, TABLE);
    const rows = await client.query(`SELECT id, name, qty FROM ${TABLE} ORDER BY id`);
    assert.deepEqual(rows.rows, ALL_ROWS);
  });
});
