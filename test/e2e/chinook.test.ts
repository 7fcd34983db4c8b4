import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';

const CHINOOK = fileURLToPath(
  new URL('../../../shared/data/chinook/chinook-serial.sql', import.meta.url),
);

/** The dump without its first 28 lines, which drop, create and switch databases. */
function chinookBody(): string {
  return readFileSync(CHINOOK, 'utf8').split('\n').slice(28).join('\n');
}

describe('Chinook loaded through the proxy', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster();
  });
  after(() => tc?.stop());

  it('loads with psql and leaves both backends identical, table by table', async () => {
    const load = await tc.psql(['-q', '-v', 'ON_ERROR_STOP=1'], chinookBody());
    assert.equal(load.code, 0, load.stderr);
    const left = await tc.checksums(0);
    assert.equal(Object.keys(left).length, 11, 'eleven tables');
    assert.equal(left['public.track']?.split(':')[0], '3503');
    assert.deepEqual(await tc.checksums(1), left);
  });

  it('rolls back a batch of updates and deletes, newest first, to the exact starting contents', async () => {
    const start = await tc.checksums(0);
    const client = await tc.client();
    const changes = [
      [
        'UPDATE track SET unit_price = unit_price * 2, name = name || $1 WHERE album_id = $2',
        [' (remaster)', 1],
      ],
      [
        'UPDATE customer SET company = NULL, email = $1 WHERE country = $2',
        ['x@example.com', 'Brazil'],
      ],
      ['DELETE FROM playlist_track WHERE playlist_id = $1 AND track_id < $2', [1, 100]],
      [
        'DELETE FROM invoice_line WHERE invoice_id IN (SELECT invoice_id FROM invoice WHERE customer_id = $1)',
        [2],
      ],
      ['DELETE FROM invoice WHERE customer_id = $1', [2]],
      [
        'UPDATE employee SET reports_to = NULL, title = $1 WHERE employee_id > $2',
        ['Contractor', 5],
      ],
      ["INSERT INTO artist (artist_id, name) VALUES (1000, 'Añadido ''quoted'' \\ artist')", []],
      ['UPDATE album SET title = upper(title) WHERE artist_id = $1', [1000 - 910]],
    ] as const;
    for (const [sql, params] of changes) await client.query(sql, [...params]);
    assert.notDeepEqual(await tc.checksums(0), start, 'the batch changed something');
    assert.deepEqual(await tc.checksums(1), await tc.checksums(0));

    const listed = await tc.admin(
      'GET',
      `/queries?cluster=${tc.cluster}&kind=write&limit=${changes.length}`,
    );
    assert.equal(listed.status, 200);
    assert.equal(listed.body.queries.length, changes.length);
    for (const entry of listed.body.queries) {
      assert.equal(entry.reversibility, 'exact', `${entry.sql}: ${entry.reason}`);
      const done = await tc.admin('POST', `/queries/${entry.id}/rollback`, {});
      assert.equal(done.status, 200, `${entry.sql}: ${JSON.stringify(done.body)}`);
    }
    assert.deepEqual(await tc.checksums(0), start, 'backend 0 holds the starting contents');
    assert.deepEqual(await tc.checksums(1), start, 'backend 1 holds the starting contents');
  });
});
