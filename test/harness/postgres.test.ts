import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { describe, it } from 'node:test';
import pg from 'pg';
import { startTestPostgres, type TestPostgres } from './postgres.ts';

async function query<T extends pg.QueryResultRow>(
  config: string | pg.ClientConfig,
  sql: string,
): Promise<T[]> {
  const client = new pg.Client(typeof config === 'string' ? { connectionString: config } : config);
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('test PostgreSQL harness', () => {
  it('starts two servers in parallel, each accepting clients and two-phase commit', async () => {
    const servers = await Promise.all([startTestPostgres(), startTestPostgres()]);
    try {
      assert.notEqual(servers[0].port, servers[1].port);
      for (const server of servers) {
        const rows = await query<{ max_prepared_transactions: string }>(
          server.url,
          'SHOW max_prepared_transactions',
        );
        assert.equal(rows[0]?.max_prepared_transactions, '20');
        const client = new pg.Client({ connectionString: server.url });
        await client.connect();
        await client.query('BEGIN');
        await client.query('CREATE TABLE two_phase (id int)');
        await client.query("PREPARE TRANSACTION 'qo_harness'");
        await client.query("COMMIT PREPARED 'qo_harness'");
        const { rows: tables } = await client.query("SELECT to_regclass('two_phase') AS t");
        assert.equal(tables[0]?.t, 'two_phase');
        await client.end();
      }
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  });

  it('with a password, refuses a wrong one and accepts the right one over SCRAM', async () => {
    await using server = await startTestPostgres({ password: 'right horse battery' });
    const config = { host: server.host, port: server.port, user: 'postgres', database: 'postgres' };
    await assert.rejects(query({ ...config, password: 'wrong' }, 'SELECT 1'), { code: '28P01' });
    const right = { ...config, password: 'right horse battery' };
    const rows = await query<{ scram: boolean }>(
      right,
      "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' AS scram FROM pg_authid " +
        "WHERE rolname = 'postgres'",
    );
    assert.deepEqual(rows, [{ scram: true }]);
    const rules = await query<{ auth_method: string }>(
      server.url,
      "SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' AND 'all' = ANY(database)",
    );
    assert.deepEqual(rules, [{ auth_method: 'scram-sha-256' }]);
  });

  it('stop() removes the data directory and closes the port', async (t) => {
    const server = await startTestPostgres();
    if (server.kind !== 'local') {
      await server.stop();
      t.skip('container servers have no local data directory');
      return;
    }
    const { dataDir, port } = server;
    assert.ok(dataDir && existsSync(dataDir));
    assert.equal(await connects(port), true);
    await server.stop();
    assert.equal(existsSync(dataDir), false);
    assert.equal(await connects(port), false);
    await server.stop();
  });

  it('restarts a killed server on the same port with its data', async () => {
    await using server: TestPostgres = await startTestPostgres();
    await query(server.url, 'CREATE TABLE survives (id int); INSERT INTO survives VALUES (7)');
    await server.kill('SIGKILL');
    await server.restart();
    const rows = await query<{ id: number }>(server.url, 'SELECT id FROM survives');
    assert.deepEqual(rows, [{ id: 7 }]);
  });
});
