import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';
import { NO_SHARED_DATA, sharedData } from '../harness/shared.ts';

const PAGILA = (name: string) => sharedData(`pagila/${name}`);

describe('COPY through the proxy', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster();
    const setup = await tc.psql([
      '-c',
      'CREATE TABLE c (id int PRIMARY KEY, v text, at timestamptz)',
    ]);
    assert.equal(setup.code, 0, setup.stderr);
  });
  after(() => tc?.stop());

  it('copies from stdin and \\copy to every backend, and rolls the copy back by key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qo-copy-'));
    const file = join(dir, 'rows.tsv');
    writeFileSync(
      file,
      '1\tone\t2024-01-01 10:00:00+02\n2\t\\N\t\\N\n3\tthree, with comma\t2024-02-29 23:59:59.999999+00\n',
    );
    const start = await tc.checksums(0);
    const copied = await tc.psql(['-v', 'ON_ERROR_STOP=1', '-c', `\\copy c from '${file}'`]);
    assert.equal(copied.code, 0, copied.stderr);
    assert.match(copied.stdout, /COPY 3/);
    const stdin = await tc.psql(
      ['-v', 'ON_ERROR_STOP=1'],
      'COPY c (id, v) FROM STDIN;\n4\tfour\n5\tfive\n\\.\n',
    );
    assert.equal(stdin.code, 0, stdin.stderr);
    assert.deepEqual(await tc.checksums(1), await tc.checksums(0));
    assert.equal((await tc.checksums(0))['public.c']?.split(':')[0], '5');

    const out = await tc.psql(['-c', '\\copy (SELECT id, v FROM c ORDER BY id) to stdout']);
    assert.equal(out.stdout, '1\tone\n2\t\\N\n3\tthree, with comma\n4\tfour\n5\tfive\n');

    const listed = await tc.admin('GET', `/queries?cluster=${tc.cluster}&kind=write&limit=2`);
    for (const entry of listed.body.queries) {
      assert.equal(entry.reversibility, 'exact', entry.reason);
      const done = await tc.admin('POST', `/queries/${entry.id}/rollback`, {});
      assert.equal(done.status, 200, JSON.stringify(done.body));
    }
    assert.deepEqual(await tc.checksums(0), start);
    assert.deepEqual(await tc.checksums(1), start);
  });

  it('keeps nothing of a COPY that fails on a backend, nor of one inside a rolled-back transaction', async () => {
    const start = await tc.checksums(0);
    const dup = await tc.psql(
      [],
      "INSERT INTO c VALUES (10, 'x');\nCOPY c (id, v) FROM STDIN;\n11\ty\n10\tdup\n\\.\n",
    );
    assert.match(dup.stderr, /duplicate key value violates unique constraint "c_pkey"/);
    const rolled = await tc.psql([], 'BEGIN;\nCOPY c (id, v) FROM STDIN;\n20\tz\n\\.\nROLLBACK;\n');
    assert.equal(rolled.code, 0, rolled.stderr);
    const after = await tc.checksums(0);
    assert.deepEqual(await tc.checksums(1), after);
    const client = await tc.client();
    const ids = await client.query('SELECT id FROM c WHERE id >= 10 ORDER BY id');
    assert.deepEqual(ids.rows, [{ id: 10 }], 'only the INSERT before the failed COPY stayed');
    assert.notDeepEqual(after, start);
  });

  const pagila = PAGILA('pagila-data.sql') === undefined ? NO_SHARED_DATA : false;
  it('loads Pagila (schema, then 21 COPY blocks) with psql and leaves both backends identical', {
    skip: pagila,
  }, async () => {
    for (const name of ['pagila-schema.sql', 'pagila-data.sql']) {
      const load = await tc.psql(['-q', '-v', 'ON_ERROR_STOP=1', '-f', PAGILA(name) as string]);
      assert.equal(load.code, 0, `${name}: ${load.stderr}`);
    }
    const left = await tc.checksums(0);
    assert.equal(left['public.rental']?.split(':')[0], '16044');
    assert.deepEqual(await tc.checksums(1), left);
  });
});
