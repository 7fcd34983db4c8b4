import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { type AdminBody, run, startTestCluster, type TestCluster } from '../harness/cluster.ts';

const SCHEMA = `
CREATE SCHEMA other;
CREATE TABLE base (id int PRIMARY KEY, name text NOT NULL);
CREATE INDEX base_name_idx ON base (name);
CREATE VIEW base_names AS SELECT name FROM base;
INSERT INTO base VALUES (1, 'one'), (2, 'two');
`;

/** `pg_dump --schema-only` of one backend, straight from it. */
async function dump(tc: TestCluster, index: number): Promise<string> {
  const server = tc.backends[index];
  assert.ok(server !== undefined);
  const args = ['--schema-only', '--no-owner', '-h', server.host, '-p', String(server.port)];
  const result = await run('pg_dump', [...args, '-U', server.user, server.database]);
  assert.equal(result.code, 0, result.stderr);
  // Recent pg_dump brackets its output with a random \restrict key.
  return result.stdout.replace(/^\\(un)?restrict .*$/gm, '');
}

describe('rollback of schema changes through the admin API', () => {
  let tc: TestCluster;
  let client: pg.Client;

  before(async () => {
    tc = await startTestCluster();
    client = await tc.client();
    await client.query(SCHEMA);
  });
  after(() => tc?.stop());

  /** Both backends' schema, which must be the same. */
  async function schema(): Promise<string> {
    const [first, second] = await Promise.all([dump(tc, 0), dump(tc, 1)]);
    assert.equal(second, first, 'the backends have different schemas');
    return first;
  }

  /** The newest schema change's audit entry, with its rollback. */
  async function latest(): Promise<AdminBody> {
    const { body } = await tc.admin('GET', '/queries?limit=1&kind=ddl');
    return (await tc.admin('GET', `/queries/${body.queries[0].id}`)).body;
  }

  async function rollBack(id: number): Promise<void> {
    const undone = await tc.admin('POST', `/queries/${id}/rollback`, {});
    assert.equal(undone.status, 200, JSON.stringify(undone.body));
    assert.equal(undone.body.executed, true);
  }

  /**
   * Runs `sql` through the proxy, checks the undo recorded for its last statement, rolls it back
   * and checks that both backends' schema (and data) are what they were.
   */
  async function undoes(sql: string, display: string): Promise<void> {
    const start = await schema();
    const rows = [await tc.checksums(0), await tc.checksums(1)];
    await client.query(sql);
    const entry = await latest();
    assert.equal(entry.reversibility, 'exact', entry.reason);
    assert.equal(entry.rollback.display, display);
    assert.deepEqual(
      entry.rollback.statements.map((s: AdminBody) => s.params),
      entry.rollback.statements.map(() => []),
    );
    assert.notEqual(await schema(), start, 'the change changed no schema');
    await rollBack(entry.id);
    assert.equal(await schema(), start);
    assert.deepEqual([await tc.checksums(0), await tc.checksums(1)], rows);
  }

  /** Runs `sql` and checks that what was recorded says there is no undo, and why. */
  async function recorded(sql: string, reversibility: string, reason: RegExp): Promise<void> {
    await client.query(sql);
    const entry = await latest();
    assert.equal(entry.reversibility, reversibility, entry.reason);
    assert.match(entry.reason, reason);
    assert.equal(entry.rollback, null);
  }

  it('drops the table CREATE TABLE made, with its sequence, keys and indexes', async () => {
    await undoes(
      `CREATE TABLE made (id serial PRIMARY KEY, base int REFERENCES base, code text UNIQUE,
         n int CHECK (n > 0))`,
      'DROP TABLE public.made;',
    );
  });

  it('drops a table made in the first schema of the search path, schema-qualified', async () => {
    await client.query('SET search_path = other, public');
    try {
      await undoes('CREATE TABLE elsewhere (id int)', 'DROP TABLE other.elsewhere;');
    } finally {
      await client.query('RESET search_path');
    }
  });

  it('drops a table made through the extended protocol (a named prepared statement)', async () => {
    const start = await schema();
    await client.query({ name: 'make-prepared', text: 'CREATE TABLE prepared_made (id int)' });
    const entry = await latest();
    assert.equal(entry.reversibility, 'exact', entry.reason);
    assert.equal(entry.rollback.display, 'DROP TABLE public.prepared_made;');
    await rollBack(entry.id);
    assert.equal(await schema(), start);
  });

  it('quotes names that need it', async () => {
    await client.query('CREATE SCHEMA "Mixed Case"');
    await undoes(
      'CREATE TABLE "Mixed Case"."Odd ""name""" (id int)',
      'DROP TABLE "Mixed Case"."Odd ""name""";',
    );
  });

  it('drops a table made by CREATE TABLE AS and a materialized view', async () => {
    await undoes('CREATE TABLE copied AS SELECT * FROM base', 'DROP TABLE public.copied;');
    await undoes(
      'CREATE MATERIALIZED VIEW names AS SELECT name FROM base',
      'DROP MATERIALIZED VIEW public.names;',
    );
  });

  it('drops a named index, and one PostgreSQL named', async () => {
    await undoes(
      'CREATE UNIQUE INDEX base_upper ON base (upper(name))',
      'DROP INDEX public.base_upper;',
    );
    await undoes('CREATE INDEX ON base (lower(name))', 'DROP INDEX public.base_lower_idx;');
  });

  it('drops a sequence, a view, an enum type, a composite type and a schema', async () => {
    await undoes('CREATE SEQUENCE other.counter START 5', 'DROP SEQUENCE other.counter;');
    await undoes('CREATE VIEW ids AS SELECT id FROM base', 'DROP VIEW public.ids;');
    await undoes("CREATE TYPE mood AS ENUM ('sad', 'ok')", 'DROP TYPE public.mood;');
    await undoes('CREATE TYPE pair AS (a int, b text)', 'DROP TYPE public.pair;');
    await undoes('CREATE SCHEMA fresh', 'DROP SCHEMA fresh;');
  });

  it('drops the columns ADD COLUMN added, newest first, and keeps the rows', async () => {
    await undoes(
      "ALTER TABLE base ADD COLUMN note text DEFAULT 'x', ADD COLUMN code int UNIQUE",
      'ALTER TABLE public.base DROP COLUMN code, DROP COLUMN note;',
    );
  });

  it('drops only the columns that ADD COLUMN IF NOT EXISTS did add', async () => {
    await undoes(
      'ALTER TABLE base ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS extra int',
      'ALTER TABLE public.base DROP COLUMN extra;',
    );
  });

  it('renames a table and a column back', async () => {
    await undoes(
      'ALTER TABLE base RENAME TO renamed',
      'ALTER TABLE public.renamed RENAME TO base;',
    );
    await undoes(
      'ALTER TABLE base RENAME COLUMN name TO label',
      'ALTER TABLE public.base RENAME COLUMN label TO name;',
    );
    await undoes(
      'ALTER INDEX base_name_idx RENAME TO base_name_index',
      'ALTER INDEX public.base_name_index RENAME TO base_name_idx;',
    );
  });

  it('records IF [NOT] EXISTS that changed nothing with no undo', async () => {
    await recorded('CREATE TABLE IF NOT EXISTS base (x int)', 'none', /already existed/);
    await recorded('CREATE INDEX IF NOT EXISTS base_name_idx ON base (id)', 'none', /already/);
    await recorded('CREATE SCHEMA IF NOT EXISTS other', 'none', /already existed/);
    await recorded('ALTER TABLE base ADD COLUMN IF NOT EXISTS name text', 'none', /existed/);
    await recorded('ALTER TABLE IF EXISTS missing ADD COLUMN x int', 'none', /did not exist/);
    await recorded('ALTER TABLE IF EXISTS missing RENAME TO found', 'none', /did not exist/);
  });

  it('records DROP, TRUNCATE, ALTER COLUMN TYPE and CREATE OR REPLACE VIEW as irreversible', async () => {
    await client.query('CREATE TABLE doomed (id int); CREATE TABLE emptied (id int)');
    await recorded(
      'CREATE OR REPLACE VIEW base_names AS SELECT name FROM base',
      'irreversible',
      /replaced view/,
    );
    await recorded(
      'ALTER TABLE emptied ALTER COLUMN id TYPE bigint',
      'irreversible',
      /TYPE is not undone/,
    );
    await recorded('TRUNCATE emptied', 'irreversible', /TRUNCATE is not undone/);
    await recorded('DROP TABLE doomed', 'irreversible', /DROP TABLE is not undone/);
    const entry = await latest();
    const refused = await tc.admin('POST', `/queries/${entry.id}/rollback`, {});
    assert.equal(refused.status, 409);
    assert.match(refused.body.error, /DROP TABLE is not undone/);
  });

  it('undoes the schema changes of a whole transaction, newest first', async () => {
    const start = await schema();
    await client.query('BEGIN');
    await client.query('CREATE TABLE staged (id int PRIMARY KEY)');
    await client.query('ALTER TABLE staged ADD COLUMN label text');
    await client.query('CREATE INDEX staged_label ON staged (label)');
    await client.query('ALTER TABLE staged RENAME TO settled');
    await client.query('COMMIT');
    const entry = await latest();
    const undone = await tc.admin('POST', `/transactions/${entry.transaction}/rollback`, {});
    assert.equal(undone.status, 200, JSON.stringify(undone.body));
    assert.equal(await schema(), start);
  });
});

describe('rollback of schema changes where every change must be reversible', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster({ requireRollback: true });
  });
  after(() => tc?.stop());

  it('rolls back CREATE TABLE although its undo, DROP TABLE, has no undo of its own', async () => {
    const client = await tc.client();
    await client.query('CREATE TABLE kept (id int)');
    const { body } = await tc.admin('GET', '/queries?limit=1&kind=ddl');
    const undone = await tc.admin('POST', `/queries/${body.queries[0].id}/rollback`, {});
    assert.equal(undone.status, 200, JSON.stringify(undone.body));
    const left = await (await tc.direct(1)).query("SELECT to_regclass('kept') AS t");
    assert.equal(left.rows[0].t, null);
    await assert.rejects(client.query('DROP TABLE base_does_not_matter'), /reversible/);
  });
});
