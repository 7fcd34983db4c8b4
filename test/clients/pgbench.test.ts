import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { QueryResult } from 'pg';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';
import { assertBackendsEqual, commandVersion, type RunResult, runBounded } from './common.ts';

const version = commandVersion('pgbench');

describe('pgbench through the proxy', {
  skip: version === undefined && 'pgbench is not installed',
}, () => {
  let tc: TestCluster;
  let ddlToken: string;
  let appToken: string;
  const pgbench = (args: string[], token: string, timeoutMs = 30_000) =>
    runBounded(
      'pgbench',
      ['-h', '127.0.0.1', '-p', String(tc.proxyPort), '-U', 'app', ...args, tc.cluster],
      { env: { PGPASSWORD: token }, timeoutMs },
    );
  const assertClean = (result: RunResult) => {
    const output = `${result.stdout}\n${result.stderr}`;
    assert.equal(result.timedOut, false, `pgbench did not finish in time:\n${output}`);
    assert.equal(result.code, 0, output);
    const failed = /number of failed transactions: (\d+)/.exec(result.stdout);
    if (failed !== null) assert.equal(failed[1], '0', output);
    assert.match(result.stdout, /number of transactions actually processed: [1-9]/, output);
    assert.doesNotMatch(output, /error/i);
  };
  before(async () => {
    tc = await startTestCluster();
    // VACUUM and the DDL of -i need the admin permission; the runs only read and write.
    ddlToken = await tc.token({ [tc.cluster]: ['admin'] }, 'pgbench-init');
    appToken = await tc.token({ [tc.cluster]: ['read', 'write'] }, 'pgbench');
  });
  after(() => tc?.stop());

  it('initializes with pgbench -i -s 1 (its default steps: COPY FROM STDIN, VACUUM)', async (t) => {
    t.diagnostic(version ?? '');
    const result = await pgbench(['-i', '-s', '1'], ddlToken);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /done in/);
    await assertBackendsEqual(tc);
  });

  it('initializes without its VACUUM step (-I dtgp), so the runs start from known tables', async () => {
    const result = await pgbench(['-i', '-s', '1', '-I', 'dtgp'], ddlToken);
    assert.equal(result.code, 0, result.stderr);
    await assertBackendsEqual(tc);
  });

  // -n: the VACUUM a run starts with is the init's concern above.
  for (const mode of ['simple', 'extended', 'prepared']) {
    it(`runs TPC-B-like transactions with -M ${mode} (-T 3 -c 2) without errors`, async () => {
      assertClean(await pgbench(['-n', '-T', '3', '-c', '2', '-M', mode], appToken));
      await assertBackendsEqual(tc, `backends are identical after -M ${mode}`);
    });
  }

  it('runs select-only transactions (-S, -M prepared) without errors', async () => {
    assertClean(await pgbench(['-n', '-S', '-T', '3', '-c', '2', '-M', 'prepared'], appToken));
    await assertBackendsEqual(tc);
  });

  it('rolls the last account update back through the admin API', async () => {
    const listed = await tc.admin('GET', `/queries?cluster=${tc.cluster}&kind=write&limit=20`);
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    const entries = listed.body.queries as { id: number; sql: string; outcome: string }[];
    const last = entries.find(
      (entry) => entry.outcome === 'committed' && /^UPDATE pgbench_accounts/.test(entry.sql),
    );
    assert.ok(last, 'an account update is among the last changes');
    const done = await tc.admin('POST', `/queries/${last.id}/rollback`, {});
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.executed, true);
    await assertBackendsEqual(tc, 'backends are identical after the rollback');

    const undoSql: string = done.body.sql;
    const undo = /SET abalance = (-?\d+) WHERE aid = (\d+)/.exec(undoSql);
    assert.ok(undo, undoSql);
    for (const index of [0, 1]) {
      const client = await tc.direct(index);
      const aid = Number(undo[2]);
      const result: QueryResult<{ abalance: number }> = await client.query(
        'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
        [aid],
      );
      await client.end();
      assert.equal(
        result.rows[0]?.abalance,
        Number(undo[1]),
        `balance restored on backend ${index}`,
      );
    }
  });
});
