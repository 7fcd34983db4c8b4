import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AdminBody, startTestCluster, type TestCluster } from '../harness/cluster.ts';

const SCHEMA = `
CREATE TABLE stock (sku text PRIMARY KEY, qty int NOT NULL, note text);
CREATE TABLE archive (sku text PRIMARY KEY, qty int NOT NULL, archived_at date);
CREATE TABLE invoice (id serial PRIMARY KEY, customer text NOT NULL);
CREATE TABLE line (id serial PRIMARY KEY, invoice int NOT NULL REFERENCES invoice, item text);
INSERT INTO stock VALUES ('a', 1, 'x'), ('b', 2, NULL), ('c', 0, 'empty'), ('d', 0, NULL);
INSERT INTO archive VALUES ('z', 9, '2001-01-01');
INSERT INTO invoice (customer) VALUES ('ann'), ('bob');
INSERT INTO line (invoice, item) VALUES (1, 'pen'), (1, 'ink'), (2, 'pad');
`;

describe('capture of data-modifying WITH queries through the proxy', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster();
    const client = await tc.client();
    await client.query(SCHEMA);
  });
  after(() => tc?.stop());

  async function latest(): Promise<AdminBody> {
    const { body } = await tc.admin('GET', '/queries?limit=1&kind=write');
    return (await tc.admin('GET', `/queries/${body.queries[0].id}`)).body;
  }

  async function sameOnBoth(): Promise<Record<string, string>> {
    const sums = await tc.checksums(0);
    assert.deepEqual(await tc.checksums(1), sums, 'the backends differ');
    return sums;
  }

  /** Runs the statement, checks its entry is exact, rolls it back and checks every table. */
  async function roundTrip(sql: string, params: unknown[] = []): Promise<AdminBody> {
    const start = await sameOnBoth();
    const client = await tc.client();
    const result = await client.query(sql, params);
    const entry = await latest();
    assert.equal(entry.reversibility, 'exact', entry.reason);
    assert.notDeepEqual(await sameOnBoth(), start, 'the statement changed nothing');
    const undone = await tc.admin('POST', `/queries/${entry.id}/rollback`, {});
    assert.equal(undone.status, 200, JSON.stringify(undone.body));
    assert.deepEqual(await sameOnBoth(), start);
    return { ...entry, result };
  }

  it('moves rows from one table to another and back', async () => {
    const entry = await roundTrip(
      `WITH moved AS (DELETE FROM stock WHERE qty = $1 RETURNING sku, qty)
       INSERT INTO archive SELECT sku, qty, '2024-02-29' FROM moved`,
      [0],
    );
    assert.equal(
      entry.rollback.display,
      [
        "INSERT INTO public.stock (sku, qty, note) VALUES ('c', 0, 'empty'), ('d', 0, NULL);",
        "DELETE FROM public.archive WHERE sku IN ('c', 'd');",
      ].join('\n'),
    );
  });

  it('answers the client the rows of a SELECT over an UPDATE, and undoes the UPDATE', async () => {
    const entry = await roundTrip(
      `WITH bumped AS (UPDATE stock SET qty = qty + 1 WHERE sku < 'c' RETURNING sku, qty)
       SELECT sku, qty FROM bumped ORDER BY sku`,
    );
    assert.deepEqual(entry.result.rows, [
      { sku: 'a', qty: 2 },
      { sku: 'b', qty: 3 },
    ]);
  });

  it('deletes inserted children before their inserted parent', async () => {
    const entry = await roundTrip(
      `WITH made AS (INSERT INTO invoice (customer) VALUES ('cy') RETURNING id)
       INSERT INTO line (invoice, item) SELECT id, item FROM made, (VALUES ('a'), ('b')) v(item)`,
    );
    const lines = entry.rollback.display.split('\n');
    assert.match(lines[0], /^DELETE FROM public\.line WHERE id IN/);
    assert.match(lines[1], /^DELETE FROM public\.invoice WHERE id = /);
  });

  it('restores deleted parents before their deleted children', async () => {
    const entry = await roundTrip(
      `WITH gone AS (DELETE FROM line WHERE invoice = 2 RETURNING invoice)
       DELETE FROM invoice WHERE id = 2`,
    );
    const lines = entry.rollback.display.split('\n');
    assert.match(lines[0], /^INSERT INTO public\.invoice/);
    assert.match(lines[1], /^INSERT INTO public\.line/);
  });

  it('captures two parts that change the same table', async () => {
    await roundTrip(
      `WITH old AS (DELETE FROM stock WHERE sku = 'a' RETURNING *)
       INSERT INTO stock SELECT sku || '2', qty, note FROM old`,
    );
  });

  it('captures a MERGE with a data-modifying WITH query', async () => {
    await roundTrip(
      `WITH cleared AS (DELETE FROM archive WHERE sku = 'z' RETURNING sku)
       MERGE INTO stock s USING (VALUES ('b', 5), ('q', 1)) v(sku, qty) ON s.sku = v.sku
       WHEN MATCHED THEN UPDATE SET qty = v.qty WHEN NOT MATCHED THEN INSERT VALUES (v.sku, v.qty)`,
    );
  });

  it('records what it cannot read beforehand as irreversible, with the reason', async () => {
    const client = await tc.client();
    const cases: [string, string][] = [
      [
        `WITH gone AS (DELETE FROM archive WHERE sku = 'z' RETURNING sku)
         UPDATE stock SET note = 'was archived' FROM gone WHERE stock.sku = gone.sku`,
        'UPDATE matches rows through gone, the output of a data-modifying WITH query, which ' +
          'cannot be read before the statement runs',
      ],
      [
        `WITH up AS (INSERT INTO stock VALUES ('a', 1) ON CONFLICT (sku) DO UPDATE SET qty = 7
           RETURNING sku)
         DELETE FROM archive WHERE sku IN (SELECT sku FROM up)`,
        'INSERT in WITH up ... ON CONFLICT DO UPDATE is not captured',
      ],
    ];
    for (const [sql, reason] of cases) {
      await client.query(sql);
      const entry = await latest();
      assert.equal(entry.reversibility, 'irreversible', sql);
      assert.equal(entry.reason, reason, sql);
    }
  });
});
