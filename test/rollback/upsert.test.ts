import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ResolveTable } from '../../rollback/plan.ts';
import { scanMetadata } from './meta.ts';
import { execute, mustPlan, plan, roundTrip, type Server, startServer } from './run.ts';

const SCHEMA = `
CREATE SCHEMA up;
CREATE TYPE up.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE up.stock (sku text PRIMARY KEY, qty int NOT NULL, seen date, mood up.mood,
  note text);
CREATE TABLE up.serial (id serial PRIMARY KEY, code text NOT NULL UNIQUE, n int);
CREATE TABLE up.pair (a int, b int, v numeric, PRIMARY KEY (a, b));
INSERT INTO up.stock VALUES ('a', 1, '2020-01-01', 'ok', 'x'), ('b', 2, NULL, NULL, NULL);
INSERT INTO up.serial (code, n) VALUES ('one', 1), ('two', 2);
INSERT INTO up.pair VALUES (1, 1, 1.5), (1, 2, 2.5);
`;

describe('capture of INSERT ... ON CONFLICT DO UPDATE', () => {
  let server: Server;
  let resolve: ResolveTable;

  before(async () => {
    server = await startServer();
    await server.client.query(SCHEMA);
    resolve = await scanMetadata(server.client, ['up']);
  });
  after(() => server.close());

  test('updated rows get their before-image back and inserted rows are deleted', async () => {
    const { outcome, clientRows } = await roundTrip(
      server.client,
      resolve,
      'up.stock',
      `INSERT INTO up.stock AS s (sku, qty, seen, mood) VALUES ('a', 5, '2021-02-03', 'happy'),
         ('c', 7, NULL, 'sad')
       ON CONFLICT (sku) DO UPDATE SET qty = s.qty + excluded.qty, seen = excluded.seen,
         mood = excluded.mood RETURNING sku`,
    );
    assert.equal(outcome.reversibility, 'exact');
    assert.deepEqual(
      clientRows.map((row) => row.map((v) => v.value?.toString())),
      [['a'], ['c']],
    );
    assert.equal(
      outcome.rollback!.display,
      "DELETE FROM up.stock WHERE sku = 'c';\n" +
        "UPDATE up.stock SET qty = 1, seen = '2020-01-01'::date, mood = $3 /* up.mood */ WHERE sku = 'a';",
    );
  });

  test('a serial key taken from the sequence and a conflict on another unique key', async () => {
    const { outcome } = await roundTrip(
      server.client,
      resolve,
      'up.serial',
      `INSERT INTO up.serial (code, n) VALUES ($1, 10), ('three', 3)
       ON CONFLICT (code) DO UPDATE SET n = excluded.n`,
      ['two'],
    );
    assert.equal(outcome.reversibility, 'exact');
  });

  test('a DO UPDATE ... WHERE that skips a row and a composite conflict target', async () => {
    const { outcome } = await roundTrip(
      server.client,
      resolve,
      'up.pair',
      `INSERT INTO up.pair VALUES (1, 1, 9), (1, 2, 9), (2, 2, 9)
       ON CONFLICT (a, b) DO UPDATE SET v = excluded.v WHERE up.pair.b = 1`,
    );
    assert.equal(outcome.rollback!.statements.length, 2);
  });

  test('INSERT ... SELECT with a column list is captured', async () => {
    await roundTrip(
      server.client,
      resolve,
      'up.stock',
      `INSERT INTO up.stock (sku, qty) SELECT sku, qty * 10 FROM up.stock
       ON CONFLICT (sku) DO UPDATE SET qty = excluded.qty, note = 'copied'`,
    );
  });

  test('a row that sets nothing new needs no undo statement', async () => {
    const { outcome } = await execute(
      server.client,
      mustPlan(
        `INSERT INTO up.stock VALUES ('b', 2) ON CONFLICT (sku) DO UPDATE SET qty = 2`,
        resolve,
      ),
    );
    assert.equal(outcome.rollback!.statements.length, 0);
  });

  test('a conflict column left to its default is recorded irreversible with the reason', () => {
    const planned = plan(
      `INSERT INTO up.serial (code) VALUES ('x') ON CONFLICT (id) DO UPDATE SET n = 1`,
      resolve,
    );
    assert.deepEqual(planned, {
      reversibility: 'irreversible',
      reason:
        'INSERT ... ON CONFLICT DO UPDATE is not captured when a conflict column takes its default (the value is not known beforehand)',
    });
  });
});
