import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';

describe('writes that backends would evaluate differently', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster();
    const client = await tc.client();
    await client.query(`CREATE TABLE events (
      id serial PRIMARY KEY,
      at timestamptz NOT NULL DEFAULT now(),
      token uuid NOT NULL DEFAULT gen_random_uuid(),
      score float8,
      note text)`);
    await client.query(`CREATE TABLE ids (
      id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      made timestamp DEFAULT localtimestamp,
      note text)`);
  });
  after(() => tc?.stop());

  it('gives every backend the same serial keys, clock and random values under concurrent sessions', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => tc.client()));
    await Promise.all(
      clients.map(async (client: pg.Client, c) => {
        for (let i = 0; i < 25; i++) {
          await client.query(
            'INSERT INTO events (score, note) VALUES (random(), $1), (random() * 10, $2)',
            [`c${c}-${i}a`, `c${c}-${i}b`],
          );
          await client.query('INSERT INTO ids (note) VALUES ($1)', [`c${c}-${i}`]);
          if (i % 5 === 0)
            await client.query('UPDATE events SET at = now() WHERE note = $1', [`c${c}-${i}a`]);
        }
      }),
    );
    const left = await tc.checksums(0);
    assert.equal(left['public.events']?.split(':')[0], '400');
    assert.equal(left['public.ids']?.split(':')[0], '200');
    assert.deepEqual(await tc.checksums(1), left);
    for (const index of [0, 1]) {
      const direct = await tc.direct(index);
      const seq = await direct.query('SELECT last_value FROM events_id_seq');
      assert.equal(seq.rows[0].last_value, '400', `backend ${index} sequence is level`);
    }
  });

  it('makes DEFAULT in VALUES and explicit nextval() identical too', async () => {
    const client = await tc.client();
    await client.query("INSERT INTO events VALUES (DEFAULT, DEFAULT, DEFAULT, 1.5, 'defaults')");
    await client.query(
      "INSERT INTO events (id, note) VALUES (nextval('events_id_seq'), 'explicit')",
    );
    await client.query('INSERT INTO events DEFAULT VALUES');
    // A clock default gets one value for every row of INSERT ... SELECT; a random one cannot.
    await client.query(
      "INSERT INTO ids (note) SELECT 'from select ' || g FROM generate_series(1, 3) g",
    );
    await assert.rejects(
      client.query("INSERT INTO events (note) SELECT 'x' || g FROM generate_series(1, 2) g"),
      {
        code: 'XX001',
      },
    );
    await client.query('INSERT INTO ids DEFAULT VALUES');
    const rows = await client.query(
      "SELECT id FROM events WHERE note IN ('defaults', 'explicit') OR note IS NULL ORDER BY id",
    );
    assert.deepEqual(
      rows.rows.map((r) => r.id),
      [401, 402, 403],
    );
    assert.deepEqual(await tc.checksums(1), await tc.checksums(0));
  });

  it('refuses, before it runs, a per-row random value it cannot make identical', async () => {
    const client = await tc.client();
    await assert.rejects(
      client.query('UPDATE events SET score = random()'),
      (error: pg.DatabaseError) => {
        assert.equal(error.code, '0A000');
        assert.match(
          error.message,
          /cannot make this change identical on every backend: random\(\)/,
        );
        return true;
      },
    );
    const direct = await tc.direct(0);
    const unchanged = await direct.query("SELECT score FROM events WHERE note = 'defaults'");
    assert.equal(unchanged.rows[0].score, 1.5);
  });

  it('compares what a fanned-out SELECT nextval() returns on each backend', async () => {
    const client = await tc.client();
    const direct = await tc.direct(1);
    const last = await direct.query('SELECT last_value FROM events_id_seq');
    const first = await client.query("SELECT nextval('events_id_seq') AS n");
    assert.equal(first.rows[0].n, String(BigInt(last.rows[0].last_value) + 1n));
    await direct.query("SELECT setval('events_id_seq', 1000)");
    await assert.rejects(
      client.query("SELECT nextval('events_id_seq')"),
      (error: pg.DatabaseError) => {
        assert.equal(error.code, 'XX001');
        assert.match(error.message, /backends diverged: demo\/1/);
        return true;
      },
    );
  });
});
