import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { backendError } from '../../proxy/backend-decode.ts';
import { BackendCode } from '../../proxy/codes.ts';
import * as fe from '../../proxy/frontend-encode.ts';
import { ProxyServer } from '../../proxy/server.ts';
import { MessageWriter } from '../../proxy/writer.ts';
import { silentLogger } from '../../src/log.ts';
import { SECRET, startTestCluster, type TestCluster } from '../harness/cluster.ts';
import { WireClient } from '../proxy/wire-client.ts';

const LIMIT_MS = 400;

const query = (sql: string) => fe.query(new MessageWriter(), sql).take();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('idle_in_transaction_timeout', () => {
  let tc: TestCluster;
  let proxy: ProxyServer;
  let port: number;

  before(async () => {
    tc = await startTestCluster();
    const setup = await tc.client();
    await setup.query('CREATE TABLE idle_rows (id int PRIMARY KEY)');
    proxy = new ProxyServer({
      secret: SECRET,
      clusters: tc.orchestrator.clusters,
      catalog: tc.orchestrator.catalog,
      logger: silentLogger,
      idleInTransactionTimeoutMs: LIMIT_MS,
    });
    port = (await proxy.listen('127.0.0.1', 0)).port;
  });
  after(async () => {
    await proxy?.close();
    await tc?.stop();
  });

  const connect = async () => {
    const client = await WireClient.connect(port);
    await client.startup({ user: 'app', database: tc.cluster }, tc.adminToken);
    return client;
  };

  /** Backend sessions of the proxy still inside a transaction, on every backend. */
  const openTransactions = async () => {
    let open = 0;
    for (const index of [0, 1]) {
      const direct = await tc.direct(index);
      const { rows } = await direct.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
      );
      open += rows[0]?.n ?? 0;
      await direct.end();
    }
    return open;
  };

  it('terminates a client idle in a transaction with FATAL 25P03 and rolls its changes back', async () => {
    const client = await connect();
    await client.send(query('BEGIN'));
    await client.untilReady();
    await client.send(query('INSERT INTO idle_rows VALUES (1)'));
    const inserted = await client.untilReady();
    assert.equal(inserted.at(-1)?.body.toString(), 'T');
    const started = Date.now();
    const frame = await client.next(5_000);
    const waited = Date.now() - started;
    assert.equal(frame?.code, BackendCode.ErrorResponse);
    const error = backendError((frame as { body: Buffer }).body);
    assert.equal(error.code, '25P03');
    assert.equal(error.severity, 'FATAL');
    assert.equal(error.message, 'terminating connection due to idle-in-transaction timeout');
    assert.ok(waited >= LIMIT_MS - 50 && waited < LIMIT_MS + 2_000, `after ${waited} ms`);
    assert.equal(await client.next(2_000), undefined);
    assert.ok(client.closed, 'the proxy closes the connection');
    for (let i = 0; i < 40 && (await openTransactions()) > 0; i++) await sleep(50);
    assert.equal(await openTransactions(), 0, 'no backend keeps the transaction');
    for (const index of [0, 1]) {
      const direct = await tc.direct(index);
      const { rows } = await direct.query('SELECT id FROM idle_rows');
      assert.deepEqual(rows, [], `backend ${index} has nothing of the transaction`);
      await direct.end();
    }
  });

  it('also ends a failed transaction left idle, and tells node-postgres', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'app',
      password: tc.adminToken,
      database: tc.cluster,
    });
    const failure = new Promise<Error>((resolve) => client.on('error', resolve));
    await client.connect();
    await client.query('BEGIN');
    await assert.rejects(client.query('SELECT 1/0'), { code: '22012' });
    const error = (await failure) as pg.DatabaseError;
    assert.equal(error.code, '25P03');
    await client.end().catch(() => {});
  });

  it('leaves alone an idle client outside a transaction, and a transaction busy longer than the limit', async () => {
    const client = await connect();
    try {
      await sleep(LIMIT_MS * 2);
      await client.send(query('BEGIN'));
      await client.untilReady();
      // Working (not idle) for longer than the limit is not idleness.
      await client.send(query(`SELECT pg_sleep(${(LIMIT_MS * 2) / 1000})`));
      const slept = await client.untilReady();
      assert.deepEqual(
        slept.map((f) => String.fromCharCode(f.code)),
        ['T', 'D', 'C', 'Z'],
      );
      // Activity inside the limit keeps the transaction.
      for (let i = 0; i < 3; i++) {
        await sleep(LIMIT_MS / 2);
        await client.send(query('SELECT 1'));
        await client.untilReady();
      }
      await client.send(query('COMMIT'));
      const committed = await client.untilReady();
      assert.equal(committed.at(-1)?.body.toString(), 'I');
      await sleep(LIMIT_MS * 2);
      await client.send(query('SELECT 1'));
      assert.equal((await client.untilReady()).length, 4);
    } finally {
      client.close();
    }
  });
});
