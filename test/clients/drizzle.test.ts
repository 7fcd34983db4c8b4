import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { asc, eq, sql } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { integer, pgTable, text } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';
import {
  ALL_ROWS,
  appToken,
  assertBackendsEqual,
  PREPARED_ROWS,
  packageVersion,
  rollBackLastDelete,
  TRANSACTION_ROWS,
} from './common.ts';

const TABLE = 'drizzle_items';

const items = pgTable(TABLE, {
  id: integer('id').primaryKey(),
  name: text('name').notNull(),
  qty: integer('qty').notNull(),
});

describe('Drizzle ORM (node-postgres driver) through the proxy', () => {
  let tc: TestCluster;
  let client: pg.Client;
  let db: NodePgDatabase;
  const all = () => db.select().from(items).orderBy(asc(items.id));
  before(async () => {
    tc = await startTestCluster();
    client = await tc.client(await appToken(tc, 'drizzle'));
    db = drizzle({ client });
  });
  after(() => tc?.stop());

  it('connects with a token and creates the table of a pgTable', async (t) => {
    t.diagnostic(`drizzle-orm ${packageVersion('drizzle-orm')}, pg ${packageVersion('pg')}`);
    await db.execute(
      sql`CREATE TABLE ${items} (id integer PRIMARY KEY, name text NOT NULL, qty integer NOT NULL)`,
    );
  });

  it('inserts, updates and deletes inside db.transaction', async () => {
    await db.transaction(async (tx) => {
      await tx.insert(items).values([{ id: 1, name: 'one', qty: 10 }]);
      await tx.insert(items).values([
        { id: 2, name: 'two', qty: 20 },
        { id: 3, name: 'three', qty: 30 },
      ]);
      const updated = await tx
        .update(items)
        .set({ qty: 25 })
        .where(eq(items.id, 2))
        .returning({ id: items.id });
      assert.deepEqual(updated, [{ id: 2 }]);
      await tx.delete(items).where(eq(items.id, 3));
    });
    assert.deepEqual(await all(), TRANSACTION_ROWS);
    await assertBackendsEqual(tc);
  });

  it('reuses prepared queries with placeholders', async () => {
    const insert = db
      .insert(items)
      .values({
        id: sql.placeholder('id'),
        name: sql.placeholder('name'),
        qty: sql.placeholder('qty'),
      })
      .prepare('drizzle_insert_item');
    for (const row of PREPARED_ROWS) await insert.execute(row);
    const byId = db
      .select()
      .from(items)
      .where(eq(items.id, sql.placeholder('id')))
      .prepare('drizzle_item_by_id');
    for (const row of ALL_ROWS) assert.deepEqual(await byId.execute({ id: row.id }), [row]);
    assert.deepEqual(await all(), ALL_ROWS);
    await assertBackendsEqual(tc);
  });

  it('reads before it writes inside db.transaction', async () => {
    await db.transaction(async (tx) => {
      const [before] = await tx.select({ qty: items.qty }).from(items).where(eq(items.id, 1));
      assert.deepEqual(before, { qty: 10 });
      await tx
        .update(items)
        .set({ qty: sql`${items.qty} + 1` })
        .where(eq(items.id, 1));
      const [after] = await tx.select({ qty: items.qty }).from(items).where(eq(items.id, 1));
      assert.deepEqual(after, { qty: 11 });
      await tx.update(items).set({ qty: 10 }).where(eq(items.id, 1));
    });
    assert.deepEqual(await all(), ALL_ROWS);
    await assertBackendsEqual(tc);
  });

  it('rolls a failing db.transaction back, and the connection works on', async () => {
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.update(items).set({ qty: 0 }).where(eq(items.id, 2));
        await tx.insert(items).values({ id: 1, name: 'duplicate', qty: 0 });
      }),
      (error: Error & { cause?: { code?: string } }) => error.cause?.code === '23505',
    );
    assert.deepEqual(await all(), ALL_ROWS, 'the failed transaction changed nothing');
    await assertBackendsEqual(tc);
  });

  it('rolls the last change back through the admin API', async () => {
    const deleted = await db.delete(items).where(eq(items.id, 7)).returning({ id: items.id });
    assert.deepEqual(deleted, [{ id: 7 }]);
    await rollBackLastDelete(tc, TABLE);
    assert.deepEqual(await all(), ALL_ROWS);
  });
});
