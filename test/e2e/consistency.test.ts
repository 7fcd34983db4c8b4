import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { run, startTestCluster, type TestCluster } from '../harness/cluster.ts';
import { writeConfig } from '../harness/proxy-child.ts';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

describe('the consistency check', () => {
  let tc: TestCluster;
  let dir: string;
  before(async () => {
    tc = await startTestCluster();
    dir = mkdtempSync(join(tmpdir(), 'qo-check-'));
    const client = await tc.client();
    await client.query(`CREATE TABLE small (id int PRIMARY KEY, v text)`);
    await client.query(`CREATE TABLE big (a int, b text, v numeric, PRIMARY KEY (a, b))`);
    await client.query(`CREATE TABLE nokey (v text)`);
    await client.query(`CREATE TABLE "Mixed Case" (k text PRIMARY KEY, at timestamptz)`);
    await client.query(`INSERT INTO small SELECT i, 'v' || i FROM generate_series(1, 20) i`);
    await client.query(
      `INSERT INTO big SELECT i, 'x' || i, i / 7.0 FROM generate_series(1, 2500) i`,
    );
    await client.query(`INSERT INTO nokey VALUES ('a'), ('b'), ('b')`);
    await client.query(
      `INSERT INTO "Mixed Case" VALUES ('a', '2024-01-01 00:00+00'), ('B', '2024-06-01 12:00+02'), ('c''q', NULL)`,
    );
  });
  after(async () => {
    await tc?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('finds identical backends consistent', async () => {
    const reply = await tc.admin('GET', `/clusters/${tc.cluster}/consistency?chunk_rows=300`);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body.status, 'consistent', JSON.stringify(reply.body.differences));
    assert.equal(reply.body.tables, 4);
    assert.deepEqual(reply.body.backends, ['demo/0', 'demo/1']);
  });

  it('reports the tables and keys that differ when a backend is changed behind the proxy', async () => {
    const direct = await tc.direct(1);
    await direct.query(`UPDATE small SET v = 'changed' WHERE id = 3`);
    await direct.query(`DELETE FROM small WHERE id = 5`);
    await direct.query(`INSERT INTO small VALUES (100, 'extra')`);
    await direct.query(`UPDATE big SET v = v + 1 WHERE a = 1500`);
    await direct.query(`INSERT INTO nokey VALUES ('c')`);
    await direct.query(`CREATE TABLE only_here (id int)`);
    await direct.query(`UPDATE "Mixed Case" SET at = at + interval '1 microsecond' WHERE k = 'B'`);

    const reply = await tc.admin('GET', `/clusters/${tc.cluster}/consistency?chunk_rows=300`);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const body = reply.body;
    assert.equal(body.status, 'different');
    const byTable = Object.fromEntries(
      body.differences.map((d: { table: string }) => [d.table, d]),
    );
    assert.deepEqual(Object.keys(byTable).sort(), [
      'public."Mixed Case"',
      'public.big',
      'public.nokey',
      'public.only_here',
      'public.small',
    ]);
    assert.deepEqual(byTable['public.only_here'].missing_on, ['demo/0']);
    assert.deepEqual(byTable['public.small'].rows, { 'demo/0': 20, 'demo/1': 20 });
    assert.deepEqual(byTable['public.small'].keys, [
      { key: { id: '3' }, missing_on: [], differs_on: ['demo/1'] },
      { key: { id: '5' }, missing_on: ['demo/1'], differs_on: [] },
      { key: { id: '100' }, missing_on: ['demo/0'], differs_on: [] },
    ]);
    // 2,500 rows in chunks of 300: nine chunks, and only the one holding a = 1500 differs.
    assert.deepEqual(byTable['public.big'].chunks, { differing: 1, total: 9 });
    assert.deepEqual(byTable['public.big'].keys, [
      { key: { a: '1500', b: 'x1500' }, missing_on: [], differs_on: ['demo/1'] },
    ]);
    assert.deepEqual(byTable['public.nokey'].rows, { 'demo/0': 3, 'demo/1': 4 });
    assert.match(byTable['public.nokey'].note, /no primary key/);
    assert.deepEqual(byTable['public."Mixed Case"'].keys, [
      { key: { k: 'B' }, missing_on: [], differs_on: ['demo/1'] },
    ]);

    const missing = await tc.admin('GET', '/clusters/nope/consistency');
    assert.equal(missing.status, 404, JSON.stringify(missing.body));
  });

  it('is a CLI command that prints the differences and exits 1 when backends differ', async () => {
    const config = writeConfig(dir, tc.cluster, tc.backends);
    const text = await run(process.execPath, [
      '--import',
      'tsx',
      MAIN,
      'check',
      '--config',
      config,
      '--chunk-rows',
      '300',
    ]);
    assert.equal(text.code, 1, text.stderr);
    assert.match(text.stdout, /^cluster demo: 5 tables on demo\/0, demo\/1: 5 of them differ/);
    assert.match(text.stdout, /public\.small: rows demo\/0=20 demo\/1=20; 1 of 1 chunks differ/);
    assert.match(text.stdout, /id=5: missing on demo\/1/);
    assert.match(text.stdout, /public\.only_here: missing on demo\/0/);

    const json = await run(process.execPath, [
      '--import',
      'tsx',
      MAIN,
      'check',
      '-c',
      config,
      '--json',
    ]);
    assert.equal(json.code, 1, json.stderr);
    const reports = JSON.parse(json.stdout);
    assert.equal(reports[0].status, 'different');

    const unknown = await run(process.execPath, [
      '--import',
      'tsx',
      MAIN,
      'check',
      '-c',
      config,
      '--cluster',
      'nope',
    ]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /cluster "nope" is not in/);
  });
});
