import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { loadModule, parseSync } from 'libpg-query';
import { encodeUndo, planCapture } from '../../rollback/plan.ts';
import type { CapturePlan } from '../../rollback/types.ts';
import type { ColumnMeta, TableMeta } from '../../src/cluster/metadata.ts';

const column = (name: string, type: string, typeOid: number): ColumnMeta => ({
  name,
  type,
  typeOid,
  notNull: false,
  default: null,
  identity: '',
  generated: false,
});

const EMPLOYEES: TableMeta = {
  schema: 'test1',
  name: 'employees',
  kind: 'r',
  columns: [column('id', 'integer', 23), column('name', 'character varying(100)', 1043)],
  primaryKey: ['id'],
  uniqueKeys: [],
  serialKey: true,
  foreignKeys: [],
  referencedBy: [],
  triggers: [],
  hasRules: false,
};

const resolve = (schema: string | undefined, name: string) =>
  (schema ?? 'test1') === 'test1' && name === 'employees' ? EMPLOYEES : undefined;

function planOf(sql: string, maxRows = 100) {
  const node = parseSync(sql).stmts![0]!.stmt!;
  const frozen = JSON.stringify(node);
  const planned = planCapture({ node, sql }, resolve, { maxRows });
  assert.equal(JSON.stringify(node), frozen, 'the parsed statement is left unchanged');
  return planned as CapturePlan;
}

describe('planning a capture', () => {
  before(() => loadModule());

  test('hidden columns follow the client RETURNING, qualified by the alias', () => {
    const planned = planOf(`INSERT INTO test1.employees AS e (name) VALUES ('a') RETURNING *`);
    assert.equal(
      planned.statement,
      `INSERT INTO test1.employees AS e (name) VALUES ('a') RETURNING *, e.id, e.name`,
    );
    assert.equal(planned.hiddenColumns, 2);
    assert.equal(planned.clientReturns, true);
  });

  test('a statement without RETURNING gets one, qualified by the table name', () => {
    const planned = planOf('DELETE FROM ONLY test1.employees WHERE id = $1');
    assert.equal(
      planned.statement,
      'DELETE FROM ONLY test1.employees WHERE id = $1 RETURNING employees.id, employees.name',
    );
    assert.equal(planned.clientReturns, false);
  });

  test('an UPDATE reads its before-image with the same FROM and WHERE, locked', () => {
    const planned = planOf(`WITH x AS (SELECT 1 AS id) UPDATE ONLY employees SET name = 'b'
      FROM x WHERE employees.id = x.id`);
    assert.deepEqual(planned.before, [
      'WITH x AS (SELECT 1 AS id) SELECT employees.id, employees.name FROM ONLY employees, x ' +
        'WHERE employees.id = x.id LIMIT 101 FOR UPDATE OF employees',
    ]);
  });

  test('build reports malformed captured rows as irreversible instead of throwing', () => {
    const planned = planOf(`UPDATE employees SET name = 'b'`);
    const outcome = planned.build({ before: [[[{ oid: 23, value: null }]]], returned: [[]] });
    assert.equal(outcome.reversibility, 'irreversible');
    assert.equal(outcome.rollback, null);
  });

  test('undo parameters decode to type OIDs and binary values', () => {
    assert.deepEqual(
      encodeUndo({
        sql: 'UPDATE t SET m = $1::mood, v = $2 WHERE id = $3',
        params: [
          { oid: 16500, type: 'mood', binary: Buffer.from('ok').toString('base64') },
          { oid: 25, type: 'text', binary: null, text: 'NULL' },
          { oid: 23, type: 'integer', binary: 'AAAAAg==', text: '2' },
        ],
      }),
      { types: [0, 25, 23], values: [Buffer.from('ok'), null, Buffer.from([0, 0, 0, 2])] },
    );
  });
});
