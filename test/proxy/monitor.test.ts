import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { openCatalog } from '../../catalog/store.ts';
import type { Catalog } from '../../catalog/types.ts';
import { ClusterRuntime } from '../../proxy/cluster.ts';
import { ClusterMonitor } from '../../proxy/monitor.ts';
import type { ClusterConfig } from '../../src/config/types.ts';
import { silentLogger } from '../../src/log.ts';
import { startTestPostgres, type TestPostgres } from '../harness/postgres.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

const gid = (instance: string, n: number) => `qo_${instance}_${String(n).padStart(32, '0')}`;

describe('the cluster monitor', () => {
  let servers: TestPostgres[] = [];
  let catalog: Catalog;
  let runtime: ClusterRuntime;
  let monitor: ClusterMonitor;
  const clients: pg.Client[] = [];

  const connect = async (server: TestPostgres, applicationName = 'test') => {
    const client = new pg.Client({
      host: server.host,
      port: server.port,
      user: server.user,
      database: server.database,
      application_name: applicationName,
    });
    client.on('error', () => {});
    await client.connect();
    clients.push(client);
    return client;
  };

  /** Prepares a transaction that inserts `id` on backend `index`. */
  const prepare = async (index: number, name: string, id: number) => {
    const client = await connect(servers[index] as TestPostgres);
    await client.query('BEGIN');
    await client.query('INSERT INTO t VALUES ($1)', [id]);
    await client.query(`PREPARE TRANSACTION '${name}'`);
    await client.end();
  };

  const prepared = async (index: number) =>
    (
      await (
        await connect(servers[index] as TestPostgres)
      ).query('SELECT gid FROM pg_prepared_xacts ORDER BY gid')
    ).rows.map((row) => row.gid as string);

  const ids = async (index: number) =>
    (
      await (await connect(servers[index] as TestPostgres)).query('SELECT id FROM t ORDER BY id')
    ).rows.map((row) => row.id as number);

  before(async () => {
    servers = await Promise.all([0, 1, 2].map(() => startTestPostgres()));
    for (const server of servers.slice(0, 2)) {
      await (await connect(server)).query('CREATE TABLE t (id int PRIMARY KEY)');
    }
    catalog = await openCatalog({ kind: 'postgres', url: (servers[2] as TestPostgres).url });
    const config: ClusterConfig = {
      name: 'm',
      requireRollback: false,
      maxCaptureRows: 1000,
      backends: servers.slice(0, 2).map((server, i) => ({
        name: `m/${i}`,
        host: server.host,
        port: server.port,
        user: server.user,
        database: server.database,
      })),
    };
    runtime = new ClusterRuntime(config, catalog, silentLogger);
    // Left by an instance that is gone: one decided, one not.
    await prepare(0, gid('deadbeef', 1), 1);
    await prepare(1, gid('deadbeef', 1), 1);
    await catalog.recordCommit(gid('deadbeef', 1), 'm', []);
    await prepare(0, gid('deadbeef', 2), 2);
    monitor = new ClusterMonitor(runtime, catalog, silentLogger, {
      healthIntervalMs: 100,
      resolveIntervalMs: 300,
    });
    await monitor.start();
  });

  after(async () => {
    await monitor?.stop();
    await Promise.allSettled(clients.map((client) => client.end()));
    await catalog?.close();
    await Promise.allSettled(servers.map((server) => server.stop()));
  });

  it('finishes at start what a dead instance left prepared, from the recorded decisions', async () => {
    assert.deepEqual(await prepared(0), []);
    assert.deepEqual(await prepared(1), []);
    assert.deepEqual(await ids(0), [1]);
    assert.deepEqual(await ids(1), [1]);
    assert.equal(runtime.twoPhase, true);
  });

  it('leaves a running instance its prepared transactions, and resolves them once it is gone', async () => {
    const owner = await connect(servers[1] as TestPostgres, 'qo-monitor 0badcafe');
    await prepare(0, gid('0badcafe', 3), 3);
    await prepare(1, gid('0badcafe', 4), 4);
    await catalog.recordCommit(gid('0badcafe', 4), 'm', []);
    await sleep(1_000);
    assert.deepEqual(await prepared(0), [gid('0badcafe', 3)], 'resolved while its owner runs');
    assert.deepEqual(await prepared(1), [gid('0badcafe', 4)], 'resolved while its owner runs');
    await owner.end();
    await until('resolved after the owner left', async () => {
      return (await prepared(0)).length === 0 && (await prepared(1)).length === 0;
    });
    assert.deepEqual(await ids(0), [1], 'an undecided one is rolled back');
    assert.deepEqual(await ids(1), [1, 4], 'a decided one is committed');
  });

  it('marks a backend unhealthy when it goes away and healthy again once it is back', async () => {
    const server = servers[1] as TestPostgres;
    await server.kill('SIGINT');
    await until('unhealthy', () => runtime.health.get('m/1')?.healthy === false);
    assert.match(runtime.health.get('m/1')?.error ?? '', /m\/1/);
    assert.equal(runtime.health.get('m/0')?.healthy, true);
    await server.restart();
    await until('healthy', () => runtime.health.get('m/1')?.healthy === true);
  });
});
