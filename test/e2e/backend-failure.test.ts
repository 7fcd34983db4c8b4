import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';
import type { TestPostgres } from '../harness/postgres.ts';

/** Long enough for a few health checks (every 2 s) and a reconnection. */
const RECOVERY_MS = 30_000;

/** Fast shutdown (SIGINT): PostgreSQL ends every session and exits; restart() brings it back. */
async function stopBackend(server: TestPostgres): Promise<void> {
  await server.kill('SIGINT');
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const reachable = await fetchable(server);
    if (!reachable) return;
    await sleep(100);
  }
  throw new Error(`PostgreSQL on port ${server.port} did not stop`);
}

async function fetchable(server: TestPostgres): Promise<boolean> {
  const { default: pgModule } = await import('pg');
  const client = new pgModule.Client({
    host: server.host,
    port: server.port,
    user: server.user,
    database: server.database,
    connectionTimeoutMillis: 2_000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retries `attempt` until it succeeds; each failure must name `backend`. */
async function eventually(
  backend: string,
  attempt: () => Promise<unknown>,
  what: string,
): Promise<void> {
  const deadline = Date.now() + RECOVERY_MS;
  for (;;) {
    try {
      await attempt();
      return;
    } catch (error) {
      assert.match((error as Error).message, new RegExp(backend), what);
      if (Date.now() > deadline) throw new Error(`${what}: still failing`, { cause: error });
      await sleep(250);
    }
  }
}

describe('a backend that fails in the middle of a transaction', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster();
    const setup = await tc.client();
    await setup.query('CREATE TABLE f (id int PRIMARY KEY, v text)');
  });
  after(() => tc?.stop());

  const count = async (client: pg.Client, where = 'true') =>
    Number((await client.query(`SELECT count(*) AS n FROM f WHERE ${where}`)).rows[0].n);

  async function noTrace(index: number, where: string): Promise<void> {
    const direct = await tc.direct(index);
    try {
      assert.equal(await count(direct, where), 0, `backend ${index} kept the rows`);
      const prepared = await direct.query('SELECT gid FROM pg_prepared_xacts');
      assert.deepEqual(prepared.rows, [], `backend ${index} holds prepared transactions`);
      const open = await direct.query(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'`,
      );
      assert.equal(Number(open.rows[0].n), 0, `backend ${index} has an open transaction`);
    } finally {
      await direct.end();
    }
  }

  it('fails the transaction with an error naming the backend, refuses writes while it is down, and writes again once it is back', async () => {
    const client = await tc.client();
    await client.query('BEGIN');
    await client.query(`INSERT INTO f VALUES (1, 'one')`);
    await stopBackend(tc.backends[1] as TestPostgres);

    await assert.rejects(client.query(`INSERT INTO f VALUES (2, 'two')`), (error: Error) => {
      assert.match(error.message, /demo\/1/);
      return true;
    });
    await client.query('ROLLBACK');
    await noTrace(0, 'id IN (1, 2)');

    // Down: writes are refused, naming the backend; reads go on, in old and new sessions alike.
    await assert.rejects(client.query(`INSERT INTO f VALUES (3, 'three')`), /demo\/1/);
    assert.equal(await count(client), 0);
    const during = await tc.client();
    assert.equal(await count(during), 0);
    await assert.rejects(during.query(`INSERT INTO f VALUES (3, 'three')`), /demo\/1/);
    const status = await tc.admin('GET', '/status');
    const health = status.body.clusters[0].backends;
    assert.deepEqual(
      health.map((b: { name: string; healthy: boolean }) => [b.name, b.healthy]),
      [
        ['demo/0', true],
        ['demo/1', false],
      ],
    );

    await (tc.backends[1] as TestPostgres).restart();
    await eventually(
      'demo/1',
      () => client.query(`INSERT INTO f VALUES (10, 'ten')`),
      'the session that saw the failure writes again',
    );
    await eventually(
      'demo/1',
      () => during.query(`INSERT INTO f VALUES (11, 'eleven')`),
      'the session opened during the failure writes again',
    );
    const fresh = await tc.client();
    await fresh.query(`INSERT INTO f VALUES (12, 'twelve')`);
    assert.deepEqual(await tc.checksums(1), await tc.checksums(0));
    assert.equal(await count(fresh), 3);
  });

  it('fails the commit, naming the backend, when the first backend goes away before COMMIT', async () => {
    const client = await tc.client();
    await client.query('BEGIN');
    await client.query(`INSERT INTO f VALUES (20, 'twenty')`);
    await client.query(`UPDATE f SET v = 'changed' WHERE id = 10`);
    await stopBackend(tc.backends[0] as TestPostgres);
    await assert.rejects(client.query('COMMIT'), /demo\/0/);
    await noTrace(1, `id = 20 OR v = 'changed'`);
    // Reads go on from the backend that is left.
    assert.equal(await count(client), 3);

    await (tc.backends[0] as TestPostgres).restart();
    await eventually(
      'demo/0',
      () => client.query(`INSERT INTO f VALUES (21, 'twenty-one')`),
      'writes work again',
    );
    assert.deepEqual(await tc.checksums(1), await tc.checksums(0));
  });

  it('fails a change that errors on one backend only, naming it, and leaves no trace on the others', async () => {
    // The backends already differ: backend 1 holds a row the other lacks.
    const direct = await tc.direct(1);
    await direct.query(`INSERT INTO f VALUES (30, 'only on backend 1')`);
    await direct.end();
    const client = await tc.client();
    await client.query('BEGIN');
    await client.query(`INSERT INTO f VALUES (31, 'thirty-one')`);
    await assert.rejects(client.query(`INSERT INTO f VALUES (30, 'thirty')`), (error: Error) => {
      assert.match(error.message, /demo\/1/);
      assert.equal((error as Error & { code?: string }).code, '23505');
      return true;
    });
    await client.query('ROLLBACK');
    await noTrace(0, 'id IN (30, 31)');
  });
});
