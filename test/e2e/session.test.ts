import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';

describe('session behaviour through the proxy', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster();
    const client = await tc.client();
    await client.query('CREATE TABLE notes (id int PRIMARY KEY, body text)');
  });
  after(() => tc?.stop());

  it('delivers each NOTIFY once, at commit, and none from a rolled-back transaction', async () => {
    const listener = await tc.client();
    const notifier = await tc.client();
    const heard: string[] = [];
    listener.on('notification', (message) => heard.push(`${message.channel}:${message.payload}`));
    await listener.query('LISTEN events');
    await notifier.query("NOTIFY events, 'alone'");
    await notifier.query('BEGIN');
    await notifier.query("INSERT INTO notes VALUES (1, 'with a change')");
    await notifier.query("NOTIFY events, 'with a change'");
    await notifier.query('COMMIT');
    await notifier.query('BEGIN');
    await notifier.query("NOTIFY events, 'never'");
    await notifier.query('ROLLBACK');
    for (let i = 0; i < 20 && heard.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    await listener.query('SELECT 1');
    assert.deepEqual(heard, ['events:alone', 'events:with a change']);
    assert.deepEqual(await tc.checksums(1), await tc.checksums(0));
  });

  it('routes and authorizes SQL-level EXECUTE as the statement it prepared', async () => {
    const reader = await tc.client(await tc.token({ [tc.cluster]: ['read'] }));
    await reader.query('PREPARE count_notes AS SELECT count(*)::int AS n FROM notes');
    assert.deepEqual((await reader.query('EXECUTE count_notes')).rows, [{ n: 1 }]);
    // PREPARE needs the permission of what it prepares.
    await assert.rejects(
      reader.query("PREPARE add_note(int) AS INSERT INTO notes VALUES ($1, 'x')"),
      (error: pg.DatabaseError) => {
        assert.equal(error.code, '42501');
        assert.match(error.message, /INSERT \(a write statement\) needs the "write" permission/);
        return true;
      },
    );
  });

  it('records changes of a rolled-back transaction as rolled back, and failed ones as failed', async () => {
    const client = await tc.client();
    await client.query('BEGIN');
    await client.query("INSERT INTO notes VALUES (50, 'undone')");
    await client.query('ROLLBACK');
    await assert.rejects(client.query("INSERT INTO notes VALUES (1, 'duplicate')"), {
      code: '23505',
    });
    let entries: { sql: string; outcome: string; kind: string }[] = [];
    for (let i = 0; i < 40; i++) {
      const listed = await tc.admin('GET', `/queries?cluster=${tc.cluster}&kind=write&limit=20`);
      entries = listed.body.queries;
      if (entries.some((e) => e.outcome === 'failed')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const undone = entries.find((e) => e.sql.includes("'undone'"));
    assert.equal(undone?.outcome, 'rolled_back');
    const duplicate = entries.find((e) => e.sql.includes("'duplicate'"));
    assert.equal(duplicate?.outcome, 'failed');
  });

  it('keeps a named statement whose first execution failed, as a driver expects', async () => {
    const client = await tc.client();
    const query = { name: 'by-id', text: 'SELECT body FROM notes WHERE id = $1::int' };
    await assert.rejects(client.query({ ...query, values: ['not a number'] }), { code: '22P02' });
    const rows = await client.query({ ...query, values: [1] });
    assert.equal(rows.rows.length, 1);
  });
});
