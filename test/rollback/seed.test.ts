import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ResolveTable } from '../../rollback/plan.ts';
import { scanMetadata } from './meta.ts';
import { execute, mustPlan, plan, type Server, snapshot, startServer, undo } from './run.ts';

const SAMPLE = `
CREATE SCHEMA IF NOT EXISTS test1;
CREATE TABLE test1.employees (id SERIAL PRIMARY KEY, name VARCHAR(100),
  manager INTEGER REFERENCES test1.employees(id));
CREATE TABLE test1.projects (id SERIAL PRIMARY KEY, name VARCHAR(100),
  manager INTEGER REFERENCES test1.employees(id));
CREATE TABLE test1.employees_projects (
  employee_id INTEGER REFERENCES test1.employees(id),
  project_id INTEGER REFERENCES test1.projects(id),
  CONSTRAINT employees_projects_pk PRIMARY KEY (employee_id, project_id));
INSERT INTO test1.employees (name) VALUES ('BOSS');`;

describe('rollbacks of the original sample', () => {
  let server: Server;
  let resolve: ResolveTable;

  before(async () => {
    server = await startServer();
    await server.client.query(SAMPLE);
    resolve = await scanMetadata(server.client, ['test1']);
  });
  after(() => server.close());

  test('the three sample statements display the expected rollbacks, and each undo restores the table', async () => {
    const { client } = server;
    const table = 'test1.employees';
    const empty = await snapshot(client, table);

    const insert = await execute(
      client,
      mustPlan(`INSERT INTO test1.employees ("name", manager) VALUES ('PEPE', 1);`, resolve),
    );
    assert.equal(insert.outcome.reversibility, 'exact');
    assert.equal(insert.outcome.rollback?.display, 'DELETE FROM test1.employees WHERE id = 2;');
    assert.equal(insert.command, 'INSERT 0 1');
    assert.deepEqual(insert.clientRows, [[]]);
    const inserted = await snapshot(client, table);

    const update = await execute(
      client,
      mustPlan(`UPDATE test1.employees SET "name"='ALVARO' WHERE id=2;`, resolve),
    );
    assert.equal(update.outcome.reversibility, 'exact');
    assert.equal(
      update.outcome.rollback?.display,
      `UPDATE test1.employees SET name = 'PEPE' WHERE id = 2;`,
    );
    await undo(client, update.outcome.rollback);
    assert.deepEqual(await snapshot(client, table), inserted);

    const remove = await execute(
      client,
      mustPlan('DELETE FROM test1.employees WHERE id=2;', resolve),
    );
    assert.equal(remove.outcome.reversibility, 'exact');
    assert.equal(
      remove.outcome.rollback?.display,
      `INSERT INTO test1.employees (id, name, manager) VALUES (2, 'PEPE', 1);`,
    );
    await undo(client, remove.outcome.rollback);
    assert.deepEqual(await snapshot(client, table), inserted);

    await undo(client, insert.outcome.rollback);
    assert.deepEqual(await snapshot(client, table), empty);
  });

  test('the undo statements bind typed parameters instead of literals', async () => {
    const { client } = server;
    const planned = mustPlan(`UPDATE test1.employees SET name = 'X' WHERE id = 1`, resolve);
    const { outcome } = await execute(client, planned);
    const stmt = outcome.rollback!.statements[0]!;
    assert.equal(stmt.sql, 'UPDATE test1.employees SET name = $1 WHERE id = $2');
    assert.deepEqual(
      stmt.params.map((p) => [p.oid, p.type, p.text]),
      [
        [1043, 'character varying(100)', `'BOSS'`],
        [23, 'integer', '1'],
      ],
    );
    await undo(client, outcome.rollback);
  });

  test('composite keys address each row with all key columns', async () => {
    const { client } = server;
    await client.query(`INSERT INTO test1.projects (name, manager) VALUES ('P1', 1), ('P2', 1);
      INSERT INTO test1.employees (name, manager) VALUES ('E2', 1), ('E3', 1);`);
    const table = 'test1.employees_projects';
    const start = await snapshot(client, table);

    const one = await execute(
      client,
      mustPlan('INSERT INTO test1.employees_projects VALUES (1, 1)', resolve),
    );
    assert.equal(
      one.outcome.rollback?.display,
      'DELETE FROM test1.employees_projects WHERE employee_id = 1 AND project_id = 1;',
    );
    const many = await execute(
      client,
      mustPlan('INSERT INTO test1.employees_projects VALUES (1, 2), (3, 1), (3, 2)', resolve),
    );
    assert.equal(
      many.outcome.rollback?.display,
      'DELETE FROM test1.employees_projects WHERE (employee_id, project_id) IN ((1, 2), (3, 1), (3, 2));',
    );
    const filled = await snapshot(client, table);

    const moved = plan(
      'UPDATE test1.employees_projects SET project_id = 2 WHERE employee_id = 1 AND project_id = 1',
      resolve,
    );
    assert.deepEqual(moved, {
      reversibility: 'irreversible',
      reason:
        'UPDATE sets key column(s) project_id of test1.employees_projects, and the table has no ' +
        'other primary or unique not-null key to match rows before and after the change',
    });

    const removed = await execute(
      client,
      mustPlan('DELETE FROM test1.employees_projects WHERE employee_id = 3', resolve),
    );
    assert.equal(
      removed.outcome.rollback?.display,
      'INSERT INTO test1.employees_projects (employee_id, project_id) VALUES (3, 1), (3, 2);',
    );
    await undo(client, removed.outcome.rollback);
    assert.deepEqual(await snapshot(client, table), filled);

    await undo(client, many.outcome.rollback);
    await undo(client, one.outcome.rollback);
    assert.deepEqual(await snapshot(client, table), start);
  });
});
