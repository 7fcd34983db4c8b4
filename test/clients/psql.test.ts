import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';
import {
  ALL_ROWS,
  appToken,
  assertBackendsEqual,
  backendRows,
  COLUMNS,
  commandVersion,
  rollBackLastDelete,
} from './common.ts';

const TABLE = 'psql_items';
const version = commandVersion('psql');

/** `psql -A -t` output of rows, `id|name|qty` per line. */
function lines(rows: { id: number; name: string; qty: number }[]): string {
  return rows.map((row) => `${row.id}|${row.name}|${row.qty}`).join('\n');
}

describe('psql through the proxy', {
  skip: version === undefined && 'psql is not installed',
}, () => {
  let tc: TestCluster;
  let token: string;
  const psql = async (input: string, args: string[] = []) => {
    const result = await tc.psql(['-A', '-t', ...args], input, token);
    return result;
  };
  before(async () => {
    tc = await startTestCluster();
    token = await appToken(tc, 'psql');
  });
  after(() => tc?.stop());

  it('connects with a token and creates a table', async (t) => {
    t.diagnostic(version ?? '');
    const created = await psql(`CREATE TABLE ${TABLE} ${COLUMNS};`, ['-v', 'ON_ERROR_STOP=1']);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout.trim(), 'CREATE TABLE');
  });

  it('runs INSERT, UPDATE and DELETE with psql variables inside a transaction', async () => {
    // psql 15 has no \bind: variables are interpolated (and quoted) by psql itself.
    const result = await psql(
      [
        'BEGIN;',
        ...[
          [1, 'one', 10],
          [2, 'two', 20],
          [3, 'three', 30],
        ].map(
          ([id, name, qty]) =>
            `\\set id ${id}\n\\set name ${name}\n\\set qty ${qty}\n` +
            `INSERT INTO ${TABLE} VALUES (:id, :'name', :qty);`,
        ),
        '\\set id 2',
        `UPDATE ${TABLE} SET qty = 25 WHERE id = :id;`,
        '\\set id 3',
        `DELETE FROM ${TABLE} WHERE id = :id;`,
        'COMMIT;',
        `SELECT id, name, qty FROM ${TABLE} ORDER BY id;`,
      ].join('\n'),
      ['-v', 'ON_ERROR_STOP=1'],
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout.trim(),
      ['BEGIN', 'INSERT 0 1', 'INSERT 0 1', 'INSERT 0 1', 'UPDATE 1', 'DELETE 1', 'COMMIT']
        .concat(lines(ALL_ROWS.slice(0, 2)))
        .join('\n'),
    );
    await assertBackendsEqual(tc);
  });

  it('reuses a prepared INSERT and a prepared SELECT (PREPARE and EXECUTE)', async () => {
    const prepared = ALL_ROWS.slice(2);
    const result = await psql(
      [
        `PREPARE add_item(int, text, int) AS INSERT INTO ${TABLE} VALUES ($1, $2, $3);`,
        ...prepared.map((row) => `EXECUTE add_item(${row.id}, '${row.name}', ${row.qty});`),
        `PREPARE item_by_id(int) AS SELECT id, name, qty FROM ${TABLE} WHERE id = $1;`,
        ...ALL_ROWS.map((row) => `EXECUTE item_by_id(${row.id});`),
      ].join('\n'),
      ['-v', 'ON_ERROR_STOP=1'],
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout.trim(),
      ['PREPARE', ...prepared.map(() => 'INSERT 0 1'), 'PREPARE', lines(ALL_ROWS)].join('\n'),
    );
    await assertBackendsEqual(tc);
  });

  it('describes the table with \\d and lists it with \\dt', async () => {
    const described = await tc.psql(['-v', 'ON_ERROR_STOP=1'], `\\d ${TABLE}\n\\dt\n`, token);
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, new RegExp(`Table "public\\.${TABLE}"`));
    assert.match(described.stdout, /id\s+\|\s+integer\s+\|\s+\|\s+not null/);
    assert.match(described.stdout, new RegExp(`"${TABLE}_pkey" PRIMARY KEY, btree \\(id\\)`));
    assert.match(described.stdout, new RegExp(`public\\s+\\|\\s+${TABLE}\\s+\\|\\s+table`));
  });

  it('copies the table out with \\copy ... to stdout', async () => {
    const copied = await tc.psql(
      ['-v', 'ON_ERROR_STOP=1'],
      `\\copy (SELECT id, name, qty FROM ${TABLE} ORDER BY id) to stdout\n`,
      token,
    );
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal(
      copied.stdout,
      ALL_ROWS.map((row) => `${row.id}\t${row.name}\t${row.qty}\n`).join(''),
    );
  });

  it('copies rows in with \\copy ... from stdin, and the admin API rolls the COPY back', async () => {
    const copied = await psql(
      `\\copy ${TABLE} (id, name, qty) from stdin\n8\teight\t80\n9\tnine\t90\n\\.\n`,
      ['-v', 'ON_ERROR_STOP=1'],
    );
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal(copied.stdout.trim(), 'COPY 2');
    await assertBackendsEqual(tc, 'the COPY reached both backends');
    assert.deepEqual(
      (await backendRows(tc, 1, TABLE)).map((row) => row.id),
      [...ALL_ROWS.map((row) => row.id), 8, 9],
    );

    const listed = await tc.admin('GET', `/queries?cluster=${tc.cluster}&kind=write&limit=1`);
    const [entry] = listed.body.queries;
    assert.match(entry.sql, /^COPY\s+psql_items/);
    const undone = await tc.admin('POST', `/queries/${entry.id}/rollback`, {});
    assert.equal(undone.status, 200, JSON.stringify(undone.body));
    await assertBackendsEqual(tc, 'the COPY was undone on both backends');
    assert.deepEqual(await backendRows(tc, 0, TABLE), ALL_ROWS);
  });

  it('reports a failing statement, and the session works again after ROLLBACK', async () => {
    const result = await psql(
      [
        'BEGIN;',
        `INSERT INTO ${TABLE} VALUES (1, 'duplicate', 0);`,
        'SELECT 1;',
        'ROLLBACK;',
        `SELECT 'recovered', count(*) FROM ${TABLE};`,
      ].join('\n'),
    );
    assert.equal(result.code, 0, 'psql goes on after errors without ON_ERROR_STOP');
    assert.match(result.stderr, /ERROR: {2}duplicate key value violates unique constraint/);
    assert.match(result.stderr, /ERROR: {2}current transaction is aborted/);
    assert.equal(result.stdout.trim(), `BEGIN\nROLLBACK\nrecovered|${ALL_ROWS.length}`);
  });

  it('rolls the last change back through the admin API', async () => {
    const deleted = await psql(`\\set id 7\nDELETE FROM ${TABLE} WHERE id = :id;`, [
      '-v',
      'ON_ERROR_STOP=1',
    ]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout.trim(), 'DELETE 1');
    await rollBackLastDelete(tc, TABLE);
    const rows = await psql(`SELECT id, name, qty FROM ${TABLE} ORDER BY id;`);
    assert.equal(rows.stdout.trim(), lines(ALL_ROWS));
  });
});
