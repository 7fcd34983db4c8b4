import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ResolveTable } from '../../rollback/plan.ts';
import { type AdminBody, startTestCluster, type TestCluster } from '../harness/cluster.ts';
import { scanMetadata } from './meta.ts';
import { execute, mustPlan, plan, type Server, snapshot, startServer, undo } from './run.ts';

const SCHEMA = `
CREATE TABLE stock (sku text PRIMARY KEY, qty int NOT NULL, note text, seen date);
CREATE TABLE incoming (sku text, qty int, op text);
CREATE TABLE ticket (id serial PRIMARY KEY, code text NOT NULL UNIQUE, n int);
CREATE TABLE artist (id int PRIMARY KEY, name text);
CREATE TABLE album (id int PRIMARY KEY, artist int REFERENCES artist ON DELETE CASCADE, title text);
CREATE TABLE person (id int PRIMARY KEY, name text);
CREATE TABLE pet (id int PRIMARY KEY, owner int REFERENCES person ON DELETE SET NULL, name text);
CREATE TABLE echoed (id int PRIMARY KEY, v int);
CREATE FUNCTION echo() RETURNS trigger LANGUAGE plpgsql AS
  'BEGIN IF NEW.id < 100 THEN INSERT INTO echoed VALUES (NEW.id + 100, NEW.v); END IF; RETURN NEW; END';
CREATE TRIGGER echo AFTER UPDATE ON echoed FOR EACH ROW EXECUTE FUNCTION echo();
INSERT INTO stock VALUES ('a', 1, 'x', '2020-01-01'), ('b', 2, NULL, NULL), ('c', 3, 'keep', NULL),
  ('d', 4, 'gone', '1999-12-31');
INSERT INTO incoming VALUES ('a', 10, 'add'), ('c', 0, 'skip'), ('d', 0, 'drop'), ('e', 5, 'add');
INSERT INTO ticket (code, n) VALUES ('one', 1), ('two', 2);
INSERT INTO artist VALUES (1, 'one'), (2, 'two');
INSERT INTO album VALUES (1, 1, 'a'), (2, 2, 'b');
INSERT INTO person VALUES (1, 'ann'), (2, 'bob');
INSERT INTO pet VALUES (1, 1, 'rex'), (2, 2, 'tom');
INSERT INTO echoed VALUES (1, 1);
`;

const UPSERT_STOCK = `MERGE INTO stock s USING incoming i ON s.sku = i.sku
  WHEN MATCHED AND i.op = 'drop' THEN DELETE
  WHEN MATCHED AND i.op = 'skip' THEN DO NOTHING
  WHEN MATCHED THEN UPDATE SET qty = s.qty + i.qty, seen = '2024-02-29'
  WHEN NOT MATCHED THEN INSERT (sku, qty, note) VALUES (i.sku, i.qty, 'new')`;

describe('capture of MERGE through the proxy', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster();
    const client = await tc.client();
    await client.query(SCHEMA);
  });
  after(() => tc?.stop());

  async function latest(): Promise<AdminBody> {
    const { body } = await tc.admin('GET', '/queries?limit=1&kind=write');
    const detail = await tc.admin('GET', `/queries/${body.queries[0].id}`);
    return detail.body;
  }

  async function rollBack(id: number): Promise<void> {
    const undone = await tc.admin('POST', `/queries/${id}/rollback`, {});
    assert.equal(undone.status, 200, JSON.stringify(undone.body));
  }

  async function sameOnBoth(): Promise<Record<string, string>> {
    const sums = await tc.checksums(0);
    assert.deepEqual(await tc.checksums(1), sums, 'the backends differ');
    return sums;
  }

  it('undoes a MERGE that updates, deletes, inserts and skips rows, exactly', async () => {
    const start = await sameOnBoth();
    const client = await tc.client();
    const result = await client.query(UPSERT_STOCK);
    assert.equal(result.command, 'MERGE');
    assert.equal(result.rowCount, 3);
    const entry = await latest();
    assert.equal(entry.reversibility, 'exact', entry.reason);
    assert.equal(
      entry.rollback.display,
      [
        "INSERT INTO public.stock (sku, qty, note, seen) VALUES ('d', 4, 'gone', '1999-12-31'::date);",
        "UPDATE public.stock SET qty = 1, seen = '2020-01-01'::date WHERE sku = 'a';",
        "DELETE FROM public.stock WHERE sku = 'e';",
      ].join('\n'),
    );
    assert.notDeepEqual(await sameOnBoth(), start);
    await rollBack(entry.id);
    assert.deepEqual(await sameOnBoth(), start);
  });

  it('reads back serial keys the MERGE drew, with the client parameters bound', async () => {
    const start = await sameOnBoth();
    const client = await tc.client();
    await client.query(
      `MERGE INTO ticket t USING (VALUES ($1::text, $2::int), ('three', 3)) v(code, n)
         ON t.code = v.code
       WHEN MATCHED THEN UPDATE SET n = v.n WHEN NOT MATCHED THEN INSERT (code, n) VALUES (v.code, v.n)`,
      ['two', 20],
    );
    const entry = await latest();
    assert.equal(entry.reversibility, 'exact', entry.reason);
    assert.match(entry.rollback.display, /UPDATE public\.ticket SET n = 2 WHERE id = 2;/);
    assert.match(entry.rollback.display, /DELETE FROM public\.ticket WHERE id = 3;/);
    await rollBack(entry.id);
    assert.deepEqual(await sameOnBoth(), start);
  });

  it('refuses to roll back over a row changed since, listing it', async () => {
    const client = await tc.client();
    await client.query(UPSERT_STOCK);
    const entry = await latest();
    await client.query(`UPDATE stock SET seen = NULL WHERE sku = 'a'`);
    const refused = await tc.admin('POST', `/queries/${entry.id}/rollback`, {});
    assert.equal(refused.status, 409);
    assert.deepEqual(
      refused.body.conflicts.map((c: AdminBody) => [c.table, c.key]),
      [['public.stock', { sku: 'a' }]],
    );
    await client.query(`UPDATE stock SET seen = '2024-02-29' WHERE sku = 'a'`);
    await rollBack(entry.id);
  });

  it('names the rows a cascade deletes as not undone', async () => {
    const client = await tc.client();
    await client.query(
      `MERGE INTO artist a USING (VALUES (2)) v(id) ON a.id = v.id WHEN MATCHED THEN DELETE`,
    );
    const entry = await latest();
    assert.equal(entry.reversibility, 'partial');
    assert.match(entry.reason, /deleting from public\.artist cascades to public\.album/);
  });

  it('records a MERGE inside a savepoint, or on a table changed earlier, as irreversible', async () => {
    const client = await tc.client();
    await client.query('BEGIN');
    await client.query('SAVEPOINT s');
    await client.query(`MERGE INTO person p USING (VALUES (1)) v(id) ON p.id = v.id
      WHEN MATCHED THEN UPDATE SET name = 'ANN'`);
    await client.query('RELEASE SAVEPOINT s');
    await client.query(`UPDATE person SET name = 'Bob' WHERE id = 2`);
    await client.query(`MERGE INTO person p USING (VALUES (2)) v(id) ON p.id = v.id
      WHEN MATCHED THEN UPDATE SET name = 'BOB'`);
    await client.query('COMMIT');
    const { body } = await tc.admin('GET', '/queries?limit=3&kind=write');
    const [second, , first] = body.queries;
    assert.equal(first.reversibility, 'irreversible');
    assert.match(first.reason, /^MERGE inside a savepoint is not captured/);
    assert.equal(second.reversibility, 'irreversible');
    assert.equal(
      second.reason,
      'MERGE writes public.person, which this transaction changed before; the rows it writes ' +
        'cannot be told apart from the earlier ones',
    );
  });

  it('will not mistake rows an earlier cascade wrote for rows the MERGE wrote', async () => {
    const client = await tc.client();
    await client.query('BEGIN');
    await client.query('DELETE FROM person WHERE id = 1');
    await client.query(`MERGE INTO pet p USING (VALUES (3, 'kit')) v(id, name) ON p.id = v.id
      WHEN NOT MATCHED THEN INSERT VALUES (v.id, NULL, v.name)`);
    await client.query('COMMIT');
    const entry = await latest();
    assert.equal(entry.reversibility, 'irreversible');
    assert.match(entry.reason, /public\.pet already holds rows this transaction wrote/);
  });

  it('will not take rows a trigger wrote in the same table for rows the MERGE wrote', async () => {
    const client = await tc.client();
    await client.query(`MERGE INTO echoed e USING (VALUES (1)) v(id) ON e.id = v.id
      WHEN MATCHED THEN UPDATE SET v = 2`);
    const entry = await latest();
    assert.equal(entry.reversibility, 'irreversible');
    assert.match(entry.reason, /1 rows were written that it does not insert/);
  });
});

describe('capture of MERGE when its source changes under it', () => {
  let server: Server;
  let resolve: ResolveTable;
  before(async () => {
    server = await startServer();
    await server.client.query(SCHEMA);
    resolve = await scanMetadata(server.client, ['public']);
  });
  after(() => server.close());

  it('detects a target row matched through a source row committed after the read', async () => {
    const sql = `MERGE INTO stock s USING incoming i ON s.sku = i.sku
      WHEN MATCHED THEN UPDATE SET qty = s.qty + i.qty
      WHEN NOT MATCHED THEN INSERT (sku, qty) VALUES (i.sku, i.qty)`;
    const { outcome } = await execute(server.client, mustPlan(sql, resolve), [], [], async () => {
      await server.other.query(`INSERT INTO incoming VALUES ('b', 7, 'late')`);
    });
    assert.equal(outcome.reversibility, 'irreversible');
    assert.match(outcome.reason!, /its row count changed by 1, but 2 inserted and 0 deleted/);
  });

  it('leaves alone a locked target row whose source row went away after the read', async () => {
    const start = await snapshot(server.client, 'stock');
    const sql = `MERGE INTO stock s USING incoming i ON s.sku = i.sku
      WHEN MATCHED THEN DELETE`;
    const { outcome } = await execute(server.client, mustPlan(sql, resolve), [], [], async () => {
      await server.other.query(`DELETE FROM incoming WHERE op = 'late'`);
    });
    assert.equal(outcome.reversibility, 'exact', outcome.reason ?? '');
    await undo(server.client, outcome.rollback);
    assert.deepEqual(await snapshot(server.client, 'stock'), start);
  });

  it('makes another session that writes the target wait until the MERGE has committed', async () => {
    await server.client.query(`INSERT INTO incoming VALUES ('z', 1, 'add')`);
    const sql = `MERGE INTO stock s USING incoming i ON s.sku = i.sku
      WHEN MATCHED THEN UPDATE SET note = 'seen'
      WHEN NOT MATCHED THEN INSERT (sku, qty) VALUES (i.sku, i.qty)`;
    let racer: Promise<unknown> = Promise.resolve();
    const { outcome } = await execute(server.client, mustPlan(sql, resolve), [], [], async () => {
      // Without the table lock this row would commit first, and the MERGE would update it.
      racer = server.other.query(`INSERT INTO stock VALUES ('z', 9)`).catch((e: Error) => e);
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
    assert.equal(outcome.reversibility, 'exact', outcome.reason ?? '');
    assert.match(String(await racer), /duplicate key value violates unique constraint/);
  });

  it('says why what it cannot capture is not captured', () => {
    const cases: [string, string][] = [
      [
        'MERGE INTO stock s USING incoming i ON s.sku = i.sku WHEN MATCHED THEN UPDATE SET sku = i.op',
        'MERGE sets key columns of public.stock, and the table has no other primary or unique ' +
          'not-null key to match rows before and after the change',
      ],
      [
        'MERGE INTO incoming t USING stock s ON t.sku = s.sku WHEN MATCHED THEN DELETE',
        'table public.incoming has no primary key or unique not-null key',
      ],
    ];
    for (const [sql, reason] of cases) {
      assert.deepEqual(plan(sql, resolve), { reversibility: 'irreversible', reason }, sql);
    }
  });
});
