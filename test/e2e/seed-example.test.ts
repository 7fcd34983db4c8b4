import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';

const SCHEMA = `
CREATE SCHEMA IF NOT EXISTS test1;
CREATE TABLE test1.employees (id SERIAL PRIMARY KEY, name VARCHAR(100),
  manager INTEGER REFERENCES test1.employees(id));
CREATE TABLE test1.projects (id SERIAL PRIMARY KEY, name VARCHAR(100),
  manager INTEGER REFERENCES test1.employees(id));
CREATE TABLE test1.employees_projects (
  employee_id INTEGER REFERENCES test1.employees(id),
  project_id INTEGER REFERENCES test1.projects(id),
  CONSTRAINT employees_projects_pk PRIMARY KEY (employee_id, project_id));
INSERT INTO test1.employees ("name") VALUES ('BOSS');
`;

const CHANGES = [
  `INSERT INTO test1.employees ("name", manager) VALUES ('PEPE', 1);`,
  `UPDATE test1.employees SET "name"='ALVARO' WHERE id=2;`,
  `DELETE FROM test1.employees WHERE id=2;`,
];

describe('the original example, through the proxy with psql', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster();
  });
  after(() => tc?.stop());

  it('records the rollbacks of the original and undoes all three through the admin API', async () => {
    const setup = await tc.psql(['-v', 'ON_ERROR_STOP=1'], SCHEMA);
    assert.equal(setup.code, 0, setup.stderr);
    const start = await tc.checksums(0);
    assert.deepEqual(await tc.checksums(1), start, 'both backends start identical');

    const run = await tc.psql(['-v', 'ON_ERROR_STOP=1'], CHANGES.join('\n'));
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /INSERT 0 1\nUPDATE 1\nDELETE 1/);
    assert.deepEqual(await tc.checksums(0), await tc.checksums(1), 'both backends changed alike');

    const listed = await tc.admin('GET', `/queries?cluster=${tc.cluster}&kind=write&limit=3`);
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    const [del, upd, ins] = listed.body.queries;
    assert.equal(ins.sql, CHANGES[0]?.slice(0, -1));
    const display = async (id: number) => {
      const entry = await tc.admin('GET', `/queries/${id}`);
      assert.equal(entry.status, 200);
      assert.equal(entry.body.reversibility, 'exact');
      return entry.body.rollback.display as string;
    };
    assert.equal(await display(ins.id), 'DELETE FROM test1.employees WHERE id = 2;');
    assert.equal(await display(upd.id), `UPDATE test1.employees SET name = 'PEPE' WHERE id = 2;`);
    assert.match(
      await display(del.id),
      /^INSERT INTO test1\.employees \(id, name, manager\).*VALUES \(2, 'ALVARO', 1\);$/,
    );

    const rollbackIds: number[] = [];
    for (const entry of [del, upd, ins]) {
      const done = await tc.admin('POST', `/queries/${entry.id}/rollback`, {});
      assert.equal(done.status, 200, JSON.stringify(done.body));
      assert.equal(done.body.executed, true);
      rollbackIds.push(done.body.query_id);
    }
    assert.deepEqual(await tc.checksums(0), start, 'backend 0 is as it started');
    assert.deepEqual(await tc.checksums(1), start, 'backend 1 is as it started');

    const again = await tc.admin('POST', `/queries/${ins.id}/rollback`, {});
    assert.equal(again.status, 409, 'a change cannot be rolled back twice');
    const rollbackEntry = await tc.admin('GET', `/queries/${rollbackIds[0]}`);
    assert.equal(rollbackEntry.body.kind, 'rollback');
    assert.equal(rollbackEntry.body.rollback_of ?? rollbackEntry.body.rollbackOf, del.id);
  });
});
