import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { mintToken } from '../../src/auth/tokens.ts';
import { SECRET, tableChecksums } from '../harness/cluster.ts';
import { startTestPostgres, type TestPostgres } from '../harness/postgres.ts';
import { type ProxyChild, startProxyChild, writeConfig } from '../harness/proxy-child.ts';

const CLUSTER = 'crash';

/** Each step of the commit protocol, and whether the change must survive a crash there. */
const STEPS = [
  { fault: 'after-prepare-one', committed: false, preparedAtCrash: [1, 0] },
  { fault: 'after-prepare-all', committed: false, preparedAtCrash: [1, 1] },
  { fault: 'after-decision', committed: true, preparedAtCrash: [1, 1] },
  { fault: 'after-commit-one', committed: true, preparedAtCrash: [0, 1] },
] as const;

async function connect(settings: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(settings);
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function withClient<T>(server: TestPostgres, use: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect({
    host: server.host,
    port: server.port,
    user: server.user,
    database: server.database,
  });
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

describe('a proxy killed at any step of a two-phase commit', () => {
  let servers: TestPostgres[] = [];
  let backends: TestPostgres[] = [];
  let catalog: TestPostgres;
  let dir: string;
  let config: string;
  let token: string;
  const children: ProxyChild[] = [];

  before(async () => {
    servers = await Promise.all([0, 1, 2].map(() => startTestPostgres()));
    backends = servers.slice(0, 2);
    catalog = servers[2] as TestPostgres;
    dir = mkdtempSync(join(tmpdir(), 'qo-crash-'));
    config = writeConfig(dir, CLUSTER, backends, catalog);
    token = await mintToken(SECRET, { subject: 'crash-test', clusters: { [CLUSTER]: ['write'] } });
    // Tables exist before the proxy starts, so that only the changes under test commit through it.
    for (const backend of backends) {
      await withClient(backend, async (c) => {
        for (const { fault } of STEPS) {
          await c.query(`CREATE TABLE ${tableFor(fault)} (id int PRIMARY KEY, v text NOT NULL)`);
        }
      });
    }
  });

  after(async () => {
    await Promise.allSettled(children.map((child) => child.stop()));
    await Promise.allSettled(servers.map((server) => server.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const through = (child: ProxyChild) =>
    connect({
      host: '127.0.0.1',
      port: child.port,
      user: 'app',
      password: token,
      database: CLUSTER,
    });

  const prepared = (backend: TestPostgres) =>
    withClient(backend, (c) =>
      c.query('SELECT gid FROM pg_prepared_xacts').then((r) => r.rows.map((row) => row.gid)),
    );

  for (const { fault, committed, preparedAtCrash } of STEPS) {
    it(`${fault}: after a restart the backends agree, keep every acknowledged commit and hold no prepared transaction`, async () => {
      const table = tableFor(fault);
      // The third two-phase commit of the process is the one that crashes.
      const crashing = await startProxyChild(config, { QO_FAULT: `${fault}@3` });
      children.push(crashing);
      const client = await through(crashing);
      await client.query(`INSERT INTO ${table} VALUES (1, 'one')`);
      await client.query(`INSERT INTO ${table} VALUES (2, 'two')`);
      await client.query('BEGIN');
      await client.query(`INSERT INTO ${table} VALUES (3, 'three')`);
      await client.query(`UPDATE ${table} SET v = 'two, updated' WHERE id = 2`);
      await assert.rejects(client.query('COMMIT'), 'the commit is never acknowledged');
      await client.end().catch(() => {});
      const exit = await crashing.exited;
      assert.equal(
        exit.signal,
        'SIGKILL',
        `the proxy should have killed itself:\n${crashing.output()}`,
      );
      const atCrash = await Promise.all(backends.map(prepared));
      assert.deepEqual(
        atCrash.map((gids) => gids.length),
        [...preparedAtCrash],
        'prepared transactions on each backend when the proxy died',
      );

      const restarted = await startProxyChild(config);
      children.push(restarted);
      try {
        for (const backend of backends) {
          assert.deepEqual(await prepared(backend), [], `prepared left on port ${backend.port}`);
        }
        const sums = await Promise.all(backends.map((b) => withClient(b, tableChecksums)));
        assert.deepEqual(sums[1], sums[0], 'the backends differ');

        const expected = committed
          ? [
              { id: 1, v: 'one' },
              { id: 2, v: 'two, updated' },
              { id: 3, v: 'three' },
            ]
          : [
              { id: 1, v: 'one' },
              { id: 2, v: 'two' },
            ];
        for (const backend of backends) {
          const rows = await withClient(backend, (c) =>
            c.query(`SELECT id, v FROM ${table} ORDER BY id`).then((r) => r.rows),
          );
          assert.deepEqual(rows, expected, `rows on port ${backend.port}`);
        }

        // One committed audit entry per committed statement: two autocommits, plus two if the
        // crashed transaction's decision was recorded.
        const audited = await withClient(catalog, (c) =>
          c
            .query(
              `SELECT sql FROM qo.audit_entries WHERE cluster = $1 AND outcome = 'committed' AND sql LIKE $2 ORDER BY id`,
              [CLUSTER, `% ${table} %`],
            )
            .then((r) => r.rows.map((row) => row.sql as string)),
        );
        assert.equal(audited.length, committed ? 4 : 2, audited.join('\n'));

        // The restarted proxy goes on committing.
        const after = await through(restarted);
        await after.query(`INSERT INTO ${table} VALUES (4, 'four')`);
        await after.end();
        const again = await Promise.all(backends.map((b) => withClient(b, tableChecksums)));
        assert.deepEqual(again[1], again[0], 'the backends differ after a later write');
      } finally {
        await restarted.stop();
      }
    });
  }
});

function tableFor(fault: string): string {
  return `t_${fault.replaceAll('-', '_')}`;
}
