import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { mintToken } from '../../src/auth/tokens.ts';
import { SECRET, startTestCluster, type TestCluster } from '../harness/cluster.ts';

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

async function connectError(
  tc: TestCluster,
  password: string,
  database = tc.cluster,
): Promise<pg.DatabaseError> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: tc.proxyPort,
    user: 'app',
    password,
    database,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    return error as pg.DatabaseError;
  } finally {
    await client.end().catch(() => {});
  }
  throw new Error('the connection was accepted');
}

describe('bad input through the proxy', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster();
    const client = await tc.client();
    await client.query('CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)');
    await client.query("INSERT INTO items VALUES (1, 'one')");
  });
  after(() => tc?.stop());

  it('refuses a token signed with another secret with 28P01 and says why', async () => {
    const token = await mintToken('another-secret', { subject: 'x', admin: true });
    const error = await connectError(tc, token);
    assert.equal(error.code, '28P01');
    assert.match(error.message, /password authentication failed for user "app": .*signature/i);
  });

  it('refuses an expired token with 28P01', async () => {
    const token = await mintToken(SECRET, {
      subject: 'x',
      admin: true,
      expiresIn: 60,
      now: Date.now() - 3_600_000,
    });
    const error = await connectError(tc, token);
    assert.equal(error.code, '28P01');
    assert.match(error.message, /expired/);
  });

  it('refuses an unsigned token (alg none) and a password that is not a JWT', async () => {
    const unsigned = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ sub: 'x', admin: true })}.`;
    assert.equal((await connectError(tc, unsigned)).code, '28P01');
    assert.equal((await connectError(tc, 'hunter2')).code, '28P01');
  });

  it('refuses an unknown cluster with 3D000, naming the clusters it serves', async () => {
    const error = await connectError(tc, tc.adminToken, 'nosuchcluster');
    assert.equal(error.code, '3D000');
    assert.match(error.hint ?? '', /demo/);
  });

  it('refuses a write with a read-only token with 42501, and the session goes on', async () => {
    const reader = await tc.client(await tc.token({ [tc.cluster]: ['read'] }));
    await assert.rejects(
      reader.query("INSERT INTO items VALUES (2, 'two')"),
      (error: pg.DatabaseError) => {
        assert.equal(error.code, '42501');
        assert.match(error.message, /needs the "write" permission on cluster "demo"/);
        return true;
      },
    );
    await assert.rejects(reader.query('DROP TABLE items'), { code: '42501' });
    const rows = await reader.query('SELECT count(*)::int AS n FROM items');
    assert.equal(rows.rows[0].n, 1);
  });

  it("relays a backend's error as PostgreSQL's own, and the session works after ROLLBACK", async () => {
    const client = await tc.client();
    await client.query('BEGIN');
    await client.query("INSERT INTO items VALUES (10, 'ten')");
    await assert.rejects(
      client.query("INSERT INTO items VALUES (1, 'dup')"),
      (error: pg.DatabaseError) => {
        assert.equal(error.code, '23505');
        assert.equal(error.message, 'duplicate key value violates unique constraint "items_pkey"');
        assert.equal(error.constraint, 'items_pkey');
        return true;
      },
    );
    await assert.rejects(client.query('SELECT 1'), { code: '25P02' });
    await client.query('ROLLBACK');
    const rows = await client.query('SELECT id FROM items ORDER BY id');
    assert.deepEqual(rows.rows, [{ id: 1 }], 'the failed transaction left nothing');
    for (const index of [0, 1]) {
      const direct = await tc.direct(index);
      const count = await direct.query('SELECT count(*)::int AS n FROM items');
      assert.equal(count.rows[0].n, 1, `backend ${index} has no trace of it`);
    }
  });

  it('answers a syntax error with 42601 and a position, and goes on', async () => {
    const client = await tc.client();
    await assert.rejects(client.query('SELEC 1'), (error: pg.DatabaseError) => {
      assert.equal(error.code, '42601');
      assert.equal(error.position, '1');
      return true;
    });
    assert.equal((await client.query('SELECT 2 AS two')).rows[0].two, 2);
  });

  it('rolls back the implicit transaction of a multi-statement query that fails midway', async () => {
    const result = await tc.psql([
      '-c',
      "INSERT INTO items VALUES (20, 'a'); INSERT INTO items VALUES (1, 'dup')",
    ]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /duplicate key/);
    const client = await tc.client();
    const rows = await client.query('SELECT count(*)::int AS n FROM items WHERE id = 20');
    assert.equal(rows.rows[0].n, 0);
  });

  it('rolls back the open transaction of a client that disconnects', async () => {
    const client = await tc.client();
    await client.query('BEGIN');
    await client.query("INSERT INTO items VALUES (30, 'thirty')");
    await client.end();
    const other = await tc.client();
    const rows = await other.query('SELECT count(*)::int AS n FROM items WHERE id = 30');
    assert.equal(rows.rows[0].n, 0);
    const direct = await tc.direct(1);
    let open = -1;
    for (let attempt = 0; attempt < 50 && open !== 0; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      const locks = await direct.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'",
      );
      open = locks.rows[0].n;
    }
    assert.equal(open, 0, 'no backend session is left in a transaction');
  });

  it('keeps a read-only token from writing through PREPARE swaps, startup options or cursors', async () => {
    const token = await tc.token({ [tc.cluster]: ['read'] });
    const reader = await tc.client(token);
    await reader.query('PREPARE p AS SELECT 1');
    await assert.rejects(
      reader.query('DEALLOCATE p; PREPARE p AS DELETE FROM items; EXECUTE p'),
      (error: pg.DatabaseError) => error.code === '42501',
    );
    await assert.rejects(reader.query("DECLARE c CURSOR FOR SELECT nextval('s')"), {
      code: '42501',
    });
    await assert.rejects(
      reader.query("SELECT set_config('default_transaction_read_only', 'off', false)"),
      { code: '42501' },
    );
    await assert.rejects(reader.query('BEGIN; SET TRANSACTION READ WRITE'), { code: '42501' });
    const sneaky = new pg.Client({
      host: '127.0.0.1',
      port: tc.proxyPort,
      user: 'app',
      password: token,
      database: tc.cluster,
      options: '-c standard\\_conforming\\_strings=off',
    });
    sneaky.on('error', () => {});
    await assert.rejects(sneaky.connect(), (error: pg.DatabaseError) => error.code === '42501');
    await sneaky.end().catch(() => {});
    for (const index of [0, 1]) {
      const direct = await tc.direct(index);
      const count = await direct.query('SELECT count(*)::int AS n FROM items');
      assert.equal(count.rows[0].n, 1, `backend ${index} lost nothing`);
    }
  });

  it('runs SQL-level EXECUTE of a prepared change as that change, captured, and refuses non-constant arguments', async () => {
    const client = await tc.client();
    await client.query("PREPARE add_item(int) AS INSERT INTO items VALUES ($1, 'prepared')");
    await client.query('EXECUTE add_item(99)');
    await assert.rejects(client.query('EXECUTE add_item(99 + 1)'), { code: '0A000' });
    const listed = await tc.admin('GET', `/queries?cluster=${tc.cluster}&kind=write&limit=10`);
    const executed = listed.body.queries.find(
      (entry: { outcome: string; params: string[] | null }) =>
        entry.outcome === 'committed' && entry.params?.[0] === '99',
    );
    assert.equal(executed?.reversibility, 'exact');
    assert.deepEqual(await tc.checksums(1), await tc.checksums(0));
  });
});
