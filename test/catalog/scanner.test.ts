import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { scanBackend, scanCluster, toClusterMetadata } from '../../catalog/scanner.ts';
import type { TableMeta } from '../../src/cluster/metadata.ts';
import type { BackendConfig } from '../../src/config/types.ts';
import { QoError } from '../../src/errors.ts';
import { startTestPostgres, type TestPostgres } from '../harness/postgres.ts';
import { closedPort, createDatabase } from './support.ts';

/** The sample schema of the original system (SEED.md). */
const SEED_SQL = `
CREATE SCHEMA IF NOT EXISTS test1;
CREATE TABLE test1.employees (id SERIAL PRIMARY KEY, name VARCHAR(100),
  manager INTEGER REFERENCES test1.employees(id));
CREATE TABLE test1.projects (id SERIAL PRIMARY KEY, name VARCHAR(100),
  manager INTEGER REFERENCES test1.employees(id));
CREATE TABLE test1.employees_projects (
  employee_id INTEGER REFERENCES test1.employees(id),
  project_id INTEGER REFERENCES test1.projects(id),
  CONSTRAINT employees_projects_pk PRIMARY KEY (employee_id, project_id));
`;

const EXTRA_SQL = `
CREATE SCHEMA extra;
CREATE TABLE extra.accounts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  gone text,
  email text NOT NULL UNIQUE,
  nickname text UNIQUE,
  total numeric(12,2) NOT NULL DEFAULT 0,
  doubled numeric GENERATED ALWAYS AS (total * 2) STORED);
ALTER TABLE extra.accounts DROP COLUMN gone;
CREATE UNIQUE INDEX accounts_email_incl ON extra.accounts (email) INCLUDE (nickname);
CREATE UNIQUE INDEX accounts_lower_email ON extra.accounts (lower(email));
CREATE UNIQUE INDEX accounts_total_partial ON extra.accounts (total) WHERE total > 0;
CREATE TABLE extra.events (at timestamptz DEFAULT now(), payload jsonb);
CREATE RULE events_notify AS ON INSERT TO extra.events DO ALSO NOTIFY events;
CREATE TABLE extra.orders (
  id serial PRIMARY KEY,
  account_id bigint NOT NULL REFERENCES extra.accounts(id) ON DELETE CASCADE ON UPDATE RESTRICT,
  note text);
CREATE FUNCTION extra.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON extra.orders
  FOR EACH ROW EXECUTE FUNCTION extra.touch();
CREATE VIEW extra.order_notes AS SELECT id, note FROM extra.orders;
CREATE TABLE extra.measurements (id int NOT NULL, region text NOT NULL, value int,
  PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE extra.measurements_eu PARTITION OF extra.measurements FOR VALUES IN ('eu');
CREATE TABLE extra.measurements_us PARTITION OF extra.measurements FOR VALUES IN ('us');
CREATE TABLE extra.readings (id bigserial PRIMARY KEY, m_id int, m_region text,
  FOREIGN KEY (m_id, m_region) REFERENCES extra.measurements (id, region) ON DELETE SET NULL);
CREATE TABLE "Mixed Case"."Odd ""Name""" (k int PRIMARY KEY);
`;

let server: TestPostgres | undefined;
let backend: BackendConfig;
let tables: Map<string, TableMeta>;

before(async () => {
  server = await startTestPostgres();
  const url = await createDatabase(server, 'scanned');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(SEED_SQL);
  await client.query('CREATE SCHEMA "Mixed Case"');
  await client.query(EXTRA_SQL);
  await client.end();
  backend = {
    name: 'scanned/0',
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    database: 'scanned',
  };
  const scanned = await scanBackend(backend);
  tables = toClusterMetadata('prod', scanned).tables;
});
after(async () => {
  await server?.stop();
});

function table(key: string): TableMeta {
  const found = tables.get(key);
  assert.ok(found, `${key} was scanned`);
  return found;
}

describe('scanBackend', () => {
  test('finds tables, partitioned tables and views outside the system schemas', () => {
    assert.deepEqual([...tables.keys()].sort(), [
      'Mixed Case.Odd "Name"',
      'extra.accounts',
      'extra.events',
      'extra.measurements',
      'extra.measurements_eu',
      'extra.measurements_us',
      'extra.order_notes',
      'extra.orders',
      'extra.readings',
      'test1.employees',
      'test1.employees_projects',
      'test1.projects',
    ]);
    assert.equal(table('extra.measurements').kind, 'p');
    assert.equal(table('extra.order_notes').kind, 'v');
    assert.equal(table('test1.employees').kind, 'r');
  });

  test('reads the sample schema: serial keys, a self reference, a composite key', () => {
    const employees = table('test1.employees');
    assert.deepEqual(employees.columns, [
      {
        name: 'id',
        type: 'integer',
        typeOid: 23,
        notNull: true,
        default: "nextval('test1.employees_id_seq'::regclass)",
        identity: '',
        generated: false,
      },
      {
        name: 'name',
        type: 'character varying(100)',
        typeOid: 1043,
        notNull: false,
        default: null,
        identity: '',
        generated: false,
      },
      {
        name: 'manager',
        type: 'integer',
        typeOid: 23,
        notNull: false,
        default: null,
        identity: '',
        generated: false,
      },
    ]);
    assert.deepEqual(employees.primaryKey, ['id']);
    assert.equal(employees.serialKey, true);
    const selfReference = {
      name: 'employees_manager_fkey',
      schema: 'test1',
      table: 'employees',
      columns: ['manager'],
      referencedSchema: 'test1',
      referencedTable: 'employees',
      referencedColumns: ['id'],
      onDelete: 'a',
      onUpdate: 'a',
    };
    assert.deepEqual(employees.foreignKeys, [selfReference]);
    assert.deepEqual(employees.referencedBy.map((fk) => `${fk.table}.${fk.name}`).sort(), [
      'employees.employees_manager_fkey',
      'employees_projects.employees_projects_employee_id_fkey',
      'projects.projects_manager_fkey',
    ]);
    const link = table('test1.employees_projects');
    assert.deepEqual(link.primaryKey, ['employee_id', 'project_id']);
    assert.equal(link.serialKey, false);
    assert.deepEqual(
      link.foreignKeys.map((fk) => [fk.columns, fk.referencedTable, fk.referencedColumns]),
      [
        [['employee_id'], 'employees', ['id']],
        [['project_id'], 'projects', ['id']],
      ],
    );
    assert.equal(table('test1.projects').serialKey, true);
    assert.deepEqual(employees.triggers, []);
    assert.equal(employees.hasRules, false);
  });

  test('reads identity, generated and dropped columns and keys that identify a row', () => {
    const accounts = table('extra.accounts');
    assert.deepEqual(
      accounts.columns.map((c) => [c.name, c.type, c.identity, c.generated, c.default]),
      [
        ['id', 'bigint', 'a', false, null],
        ['email', 'text', '', false, null],
        ['nickname', 'text', '', false, null],
        ['total', 'numeric(12,2)', '', false, '0'],
        ['doubled', 'numeric', '', true, null],
      ],
    );
    assert.deepEqual(accounts.primaryKey, ['id']);
    assert.equal(accounts.serialKey, true);
    // nickname is nullable; the INCLUDE index repeats email; expression and partial indexes
    // do not identify rows.
    assert.deepEqual(accounts.uniqueKeys, [['email']]);
    assert.deepEqual(
      accounts.referencedBy.map((fk) => [fk.table, fk.onDelete, fk.onUpdate]),
      [['orders', 'c', 'r']],
    );
  });

  test('reads a table without any key, with a rule', () => {
    const events = table('extra.events');
    assert.deepEqual(events.primaryKey, []);
    assert.deepEqual(events.uniqueKeys, []);
    assert.equal(events.serialKey, false);
    assert.equal(events.hasRules, true);
    assert.equal(events.columns[0]?.default, 'now()');
  });

  test('reads user triggers and cascading foreign keys, not internal triggers', () => {
    const orders = table('extra.orders');
    assert.deepEqual(orders.triggers, ['orders_touch']);
    assert.deepEqual(orders.foreignKeys, [
      {
        name: 'orders_account_id_fkey',
        schema: 'extra',
        table: 'orders',
        columns: ['account_id'],
        referencedSchema: 'extra',
        referencedTable: 'accounts',
        referencedColumns: ['id'],
        onDelete: 'c',
        onUpdate: 'r',
      },
    ]);
    // The foreign key's own triggers on accounts are internal.
    assert.deepEqual(table('extra.accounts').triggers, []);
    assert.equal(orders.hasRules, false);
  });

  test('a view has no key and its own _RETURN rule does not count', () => {
    const view = table('extra.order_notes');
    assert.deepEqual(
      view.columns.map((c) => c.name),
      ['id', 'note'],
    );
    assert.deepEqual(view.primaryKey, []);
    assert.equal(view.hasRules, false);
  });

  test('a foreign key to a partitioned table is listed once', () => {
    const readings = table('extra.readings');
    assert.equal(readings.serialKey, true);
    assert.deepEqual(
      readings.foreignKeys.map((fk) => [
        fk.referencedTable,
        fk.columns,
        fk.referencedColumns,
        fk.onDelete,
      ]),
      [['measurements', ['m_id', 'm_region'], ['id', 'region'], 'n']],
    );
    assert.deepEqual(
      table('extra.measurements').referencedBy.map((fk) => fk.table),
      ['readings'],
    );
    assert.deepEqual(table('extra.measurements').primaryKey, ['id', 'region']);
    assert.deepEqual(table('extra.measurements_eu').primaryKey, ['id', 'region']);
  });

  test('keeps names with spaces, case and quotes as stored', () => {
    const odd = table('Mixed Case.Odd "Name"');
    assert.equal(odd.schema, 'Mixed Case');
    assert.equal(odd.name, 'Odd "Name"');
    assert.deepEqual(odd.primaryKey, ['k']);
  });
});

describe('scanCluster', () => {
  test('skips a backend that does not answer and scans the next', async () => {
    const down = { ...backend, name: 'down/0', port: await closedPort() };
    const scanned = await scanCluster([down, backend]);
    assert.equal(scanned.length, tables.size);
  });

  test('fails with BACKEND_UNAVAILABLE naming each backend when none answers', async () => {
    const port = await closedPort();
    await assert.rejects(
      scanCluster([
        { ...backend, name: 'down/0', port },
        { ...backend, name: 'down/1', port },
      ]),
      (error: unknown) =>
        error instanceof QoError &&
        error.code === 'BACKEND_UNAVAILABLE' &&
        error.message.includes('down/0') &&
        error.message.includes('down/1'),
    );
  });

  test('a backend that refuses the login counts as unavailable', async () => {
    await assert.rejects(
      scanCluster([{ ...backend, database: 'no_such_database' }]),
      (error: unknown) => error instanceof QoError && error.code === 'BACKEND_UNAVAILABLE',
    );
  });
});
