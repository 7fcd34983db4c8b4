import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
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

const TABLE = 'pgjs_items';

type Item = { id: number; name: string; qty: number };

/** Plain objects, so that deepEqual does not compare postgres.js's result list type. */
const plain = (rows: readonly Item[]) => rows.map((row) => ({ ...row }));

describe('postgres.js through the proxy', () => {
  let tc: TestCluster;
  let sql: postgres.Sql;
  before(async () => {
    tc = await startTestCluster();
    // One connection: the scenario is one session, and postgres.js pipelines on it.
    sql = postgres({
      host: '127.0.0.1',
      port: tc.proxyPort,
      user: 'app',
      password: await appToken(tc, 'postgres-js'),
      database: tc.cluster,
      max: 1,
      onnotice: () => {},
      connect_timeout: 10,
    });
  });
  after(async () => {
    await sql?.end({ timeout: 5 });
    await tc?.stop();
  });

  it('connects with a token and creates a table', async (t) => {
    t.diagnostic(`postgres (postgres.js) ${packageVersion('postgres')}`);
    await sql.unsafe(`CREATE TABLE ${TABLE} ${COLUMNS}`);
  });

  it('runs parameterized INSERT, UPDATE and DELETE in sql.begin', async () => {
    const counts = await sql.begin(async (tx) => {
      const done: number[] = [];
      for (const [id, name, qty] of [
        [1, 'one', 10],
        [2, 'two', 20],
        [3, 'three', 30],
      ] as const) {
        done.push((await tx`INSERT INTO ${tx(TABLE)} VALUES (${id}, ${name}, ${qty})`).count);
      }
      done.push((await tx`UPDATE ${tx(TABLE)} SET qty = ${25} WHERE id = ${2}`).count);
      done.push((await tx`DELETE FROM ${tx(TABLE)} WHERE id = ${3}`).count);
      return done;
    });
    assert.deepEqual(counts, [1, 1, 1, 1, 1]);
    const rows = await sql<Item[]>`SELECT id, name, qty FROM ${sql(TABLE)} ORDER BY id`;
    assert.deepEqual(plain(rows), TRANSACTION_ROWS);
    await assertBackendsEqual(tc);
  });

  it('reuses its prepared statements for the same query text', async () => {
    for (const row of PREPARED_ROWS) {
      const inserted =
        await sql`INSERT INTO ${sql(TABLE)} VALUES (${row.id}, ${row.name}, ${row.qty})`;
      assert.equal(inserted.count, 1);
    }
    for (const row of ALL_ROWS) {
      const found = await sql<Item[]>`SELECT id, name, qty FROM ${sql(TABLE)} WHERE id = ${row.id}`;
      assert.deepEqual(plain(found), [row]);
    }
    await assertBackendsEqual(tc);
  });

  it('pipelines several queries issued at once', async () => {
    const results = await Promise.all(
      ALL_ROWS.map(
        (row) => sql<Item[]>`SELECT id, name, qty FROM ${sql(TABLE)} WHERE id = ${row.id}`,
      ),
    );
    assert.deepEqual(
      results.map((rows) => plain(rows)[0]),
      ALL_ROWS,
    );
    const mixed = await Promise.all([
      sql`SELECT count(*)::int AS n FROM ${sql(TABLE)}`,
      sql`SELECT ${'text'}::text AS t`,
      sql`SELECT sum(qty)::int AS total FROM ${sql(TABLE)} WHERE id > ${0}`,
    ]);
    assert.deepEqual(
      mixed.map((rows) => ({ ...rows[0] })),
      [{ n: ALL_ROWS.length }, { t: 'text' }, { total: 255 }],
    );
  });

  it('pipelines writes inside sql.begin', async () => {
    const [updated, read, restored] = await sql.begin((tx) => [
      tx`UPDATE ${tx(TABLE)} SET qty = qty + ${1} WHERE id = ${1}`,
      tx`SELECT qty FROM ${tx(TABLE)} WHERE id = ${1}`,
      tx`UPDATE ${tx(TABLE)} SET qty = qty - ${1} WHERE id = ${1}`,
    ]);
    assert.equal(updated.count, 1);
    assert.deepEqual({ ...read[0] }, { qty: 11 });
    assert.equal(restored.count, 1);
    await assertBackendsEqual(tc);
  });

  it('rolls sql.begin back on a failing statement, and the connection works on', async () => {
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`UPDATE ${tx(TABLE)} SET qty = ${0} WHERE id = ${1}`;
        await tx`INSERT INTO ${tx(TABLE)} VALUES (${1}, ${'dup'}, ${0})`;
      }),
      (error: postgres.PostgresError) => error.code === '23505',
    );
    await assert.rejects(
      sql`SELECT 1 / ${0}::int`,
      (error: postgres.PostgresError) => error.code === '22012',
    );
    const rows = await sql<Item[]>`SELECT id, name, qty FROM ${sql(TABLE)} ORDER BY id`;
    assert.deepEqual(plain(rows), ALL_ROWS, 'the failed transaction changed nothing');
    await assertBackendsEqual(tc);
  });

  it('rolls the last change back through the admin API', async () => {
    const deleted = await sql`DELETE FROM ${sql(TABLE)} WHERE id = ${7}`;
    assert.equal(deleted.count, 1);
    await rollBackLastDelete(tc, TABLE);
    const rows = await sql<Item[]>`SELECT id, name, qty FROM ${sql(TABLE)} ORDER BY id`;
    assert.deepEqual(plain(rows), ALL_ROWS);
  });
});
