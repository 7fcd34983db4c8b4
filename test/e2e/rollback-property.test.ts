import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';

/*
 * Random sequences of INSERT, UPDATE, DELETE, upsert, MERGE and data-modifying WITH queries over
 * many column types and Chinook-like foreign keys (cascades, SET NULL, a self-reference) run
 * through the proxy on two backends;
 * then every change is rolled back, newest first, through the admin API (the cluster back to
 * where the run began, which refuses on any conflict), and both backends must hold their
 * starting contents again, table by table.
 * QO_PROPERTY_SEED replays a run; a failing seed belongs in REGRESSION_SEEDS.
 */

const SCHEMA = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy, really');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TYPE pair AS (n int, label text);
CREATE TABLE kinds (id int PRIMARY KEY, i2 smallint, i8 bigint, num numeric, r real,
  d double precision, t text, b bytea, bo boolean, dt date, tm time, ts timestamp,
  tz timestamptz, iv interval, u uuid, j json, jb jsonb, ta text[], e mood, dom posint,
  comp pair, rng int4range, ip inet, m money);
CREATE TABLE artist (id int PRIMARY KEY, name text);
CREATE TABLE album (id int PRIMARY KEY, artist_id int NOT NULL REFERENCES artist ON DELETE CASCADE,
  title text);
CREATE TABLE track (id int PRIMARY KEY, album_id int REFERENCES album ON DELETE CASCADE,
  name text, price numeric(6, 2), meta jsonb);
CREATE TABLE playlist_track (playlist int, track_id int REFERENCES track ON DELETE CASCADE,
  PRIMARY KEY (playlist, track_id));
CREATE TABLE review (id int PRIMARY KEY, track_id int REFERENCES track ON DELETE SET NULL,
  body text);
CREATE TABLE employee (id int PRIMARY KEY, manager int REFERENCES employee ON DELETE SET NULL,
  name text, hired date);
`;

const SEED_DATA = `
INSERT INTO artist SELECT g, 'artist ' || g FROM generate_series(1, 8) g;
INSERT INTO album SELECT g, 1 + g % 8, 'album ' || g FROM generate_series(1, 16) g;
INSERT INTO track SELECT g, 1 + g % 16, 'track ' || g, g * 0.99, '{"n": 1}' FROM generate_series(1, 40) g;
INSERT INTO playlist_track SELECT p, t FROM generate_series(1, 3) p, generate_series(1, 40, 3) t;
INSERT INTO review SELECT g, g, 'review ' || g FROM generate_series(1, 20) g;
INSERT INTO employee VALUES (1, NULL, 'boss', '2001-01-01');
INSERT INTO employee SELECT g, g / 2, 'emp ' || g, '2010-01-01'::date + g FROM generate_series(2, 12) g;
INSERT INTO kinds (id, t, num) SELECT g, 'row ' || g, g FROM generate_series(1, 20) g;
`;

/**
 * Seeds that once failed, replayed first. Both found backends returning the rows of a
 * multi-row undo in different physical orders, which the proxy took for a divergence.
 */
const REGRESSION_SEEDS: { seed: number; todo?: string }[] = [{ seed: 1105335568 }, { seed: 1234 }];
const STATEMENTS_PER_RUN = 260;
const RUNS = 4;

type Param = string | number | boolean | null | Buffer | (string | null)[];
interface Statement {
  sql: string;
  params: Param[];
}

const nullable = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null, freq: 5 });
const awkwardText = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom("it's", 'back\\slash', '$$dollar$$', 'ñandú 日本 🎉', 'a,b', '"quoted"', ''),
);
const COLUMNS: Record<string, fc.Arbitrary<Param>> = {
  i2: fc.integer({ min: -32768, max: 32767 }),
  i8: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
  num: fc.oneof(
    fc.constantFrom('NaN', '0.000', '-1.50', '123456789012345678901234567890.123456789'),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  ),
  r: fc.oneof(fc.constantFrom('NaN', 'Infinity', '-Infinity', '-0'), fc.float().map(String)),
  d: fc.oneof(fc.constantFrom('NaN', 'Infinity', '-Infinity'), fc.double().map(String)),
  t: awkwardText,
  b: fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)),
  bo: fc.boolean(),
  dt: fc.constantFrom('2024-02-29', '1999-12-31', '0001-01-01 BC', 'infinity'),
  tm: fc.constantFrom('00:00:00', '23:59:59.999999', '12:34:56.5'),
  ts: fc.constantFrom('2024-02-29 12:00:00', '1970-01-01 00:00:00.000001', '-infinity'),
  tz: fc.constantFrom(
    '2024-06-01 12:00:00+02',
    '2000-01-01 00:00:00-11:30',
    '2038-01-19 03:14:08Z',
  ),
  iv: fc.constantFrom('1 day 02:00:00', '-1 mon 3 days', '1 year 2 mons 00:00:00.000001', '0'),
  u: fc.uuid(),
  j: fc.constantFrom('{"a": [1, 2.50, null]}', '"text"', '{"b":1,  "b":2}', '[]'),
  jb: fc.constantFrom('{"a": [1, 2.50, null]}', '"ñ"', '{"z": {"y": true}}', 'null'),
  ta: fc.array(nullable(awkwardText), { maxLength: 3 }),
  e: fc.constantFrom('sad', 'ok', 'happy, really'),
  dom: fc.integer({ min: 1, max: 1000 }),
  comp: fc.constantFrom('(1,"a, b")', '(,)', '(-3,"quote\\"d")'),
  rng: fc.constantFrom('[1,5)', 'empty', '(,10]', '[3,)'),
  ip: fc.constantFrom('192.168.0.1/24', '::1', '10.0.0.0/8'),
  m: fc.constantFrom('12.34', '-0.01', '1000000.00'),
};
const NAMES = Object.keys(COLUMNS);
const id = (max: number) => fc.integer({ min: 1, max });

const columnSubset = fc.subarray(NAMES, { minLength: 1, maxLength: 6 });
const values = (columns: string[]) =>
  fc.tuple(...columns.map((c) => nullable(COLUMNS[c]!))) as fc.Arbitrary<Param[]>;

function placeholders(count: number, from = 1): string {
  return Array.from({ length: count }, (_, i) => `$${from + i}`).join(', ');
}

const insertKinds = fc
  .tuple(columnSubset, fc.integer({ min: 1, max: 3 }))
  .chain(([columns, rows]) =>
    fc.tuple(
      fc.constant(columns),
      fc.array(fc.tuple(id(40), values(columns)), { minLength: rows, maxLength: rows }),
      fc.boolean(),
    ),
  )
  .map(([columns, rows, upsert]): Statement => {
    const width = columns.length + 1;
    const tuples = rows.map((_, r) => `(${placeholders(width, 1 + r * width)})`).join(', ');
    const conflict = upsert
      ? `ON CONFLICT (id) DO UPDATE SET ${columns.map((c) => `${c} = excluded.${c}`).join(', ')}`
      : 'ON CONFLICT DO NOTHING';
    return {
      sql: `INSERT INTO kinds (id, ${columns.join(', ')}) VALUES ${tuples} ${conflict}`,
      params: rows.flatMap(([k, v]) => [k, ...v]),
    };
  });

const updateKinds = columnSubset
  .chain((columns) => fc.tuple(fc.constant(columns), values(columns), id(40), id(8)))
  .map(([columns, v, low, span]): Statement => {
    const set = columns.map((c, i) => `${c} = $${i + 1}`).join(', ');
    const n = columns.length;
    return {
      sql: `UPDATE kinds SET ${set} WHERE id BETWEEN $${n + 1} AND $${n + 2}`,
      params: [...v, low, low + span - 1],
    };
  });

const deleteKinds = fc.tuple(id(40), id(4)).map(
  ([low, span]): Statement => ({
    sql: 'DELETE FROM kinds WHERE id >= $1 AND id < $2',
    params: [low, low + span],
  }),
);

const chinook: fc.Arbitrary<Statement> = fc.oneof(
  fc.tuple(id(12), nullable(awkwardText)).map(([k, name]) => ({
    sql: 'INSERT INTO artist VALUES ($1, $2) ON CONFLICT DO NOTHING',
    params: [k, name],
  })),
  fc.tuple(id(24), id(12), awkwardText).map(([k, artist, title]) => ({
    sql: 'INSERT INTO album VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET title = excluded.title',
    params: [k, artist, title],
  })),
  fc
    .tuple(id(60), nullable(id(24)), awkwardText, fc.integer({ min: 0, max: 9999 }))
    .map(([k, album, name, cents]) => ({
      sql: `INSERT INTO track VALUES ($1, $2, $3, $4, '{"new": true}')
            ON CONFLICT (id) DO UPDATE SET price = excluded.price, name = track.name || '+'`,
      params: [k, album, name, (cents / 100).toFixed(2)],
    })),
  fc.tuple(id(3), id(60)).map(([p, t]) => ({
    sql: 'INSERT INTO playlist_track VALUES ($1, $2) ON CONFLICT DO NOTHING',
    params: [p, t],
  })),
  id(12).map((k) => ({ sql: 'DELETE FROM artist WHERE id = $1', params: [k] })),
  id(24).map((k) => ({ sql: 'DELETE FROM album WHERE id = $1', params: [k] })),
  fc.tuple(id(60), id(5)).map(([k, n]) => ({
    sql: 'DELETE FROM track WHERE id BETWEEN $1 AND $2',
    params: [k, k + n],
  })),
  fc.tuple(id(24), id(60)).map(([album, k]) => ({
    sql: 'UPDATE track SET album_id = $1, meta = meta || \'{"moved": 1}\' WHERE id = $2',
    params: [album, k],
  })),
  id(16).map((k) => ({ sql: 'DELETE FROM employee WHERE id = $1', params: [k] })),
  fc.tuple(id(16), nullable(id(16)), awkwardText).map(([k, manager, name]) => ({
    sql: 'INSERT INTO employee VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET manager = excluded.manager',
    params: [k, manager, name],
  })),
  fc.tuple(id(30), nullable(id(60))).map(([k, track]) => ({
    sql: "INSERT INTO review VALUES ($1, $2, 'r') ON CONFLICT (id) DO UPDATE SET track_id = excluded.track_id",
    params: [k, track],
  })),
  id(24).map((album) => ({
    sql: 'UPDATE review r SET body = r.body || t.name FROM track t WHERE t.id = r.track_id AND t.album_id = $1',
    params: [album],
  })),
);

/** The type of each column of `kinds`, for the casts a MERGE's VALUES source needs. */
const TYPES: Record<string, string> = {
  i2: 'smallint',
  i8: 'bigint',
  num: 'numeric',
  r: 'real',
  d: 'double precision',
  t: 'text',
  b: 'bytea',
  bo: 'boolean',
  dt: 'date',
  tm: 'time',
  ts: 'timestamp',
  tz: 'timestamptz',
  iv: 'interval',
  u: 'uuid',
  j: 'json',
  jb: 'jsonb',
  ta: 'text[]',
  e: 'mood',
  dom: 'posint',
  comp: 'pair',
  rng: 'int4range',
  ip: 'inet',
  m: 'money',
};

/** MERGE over `kinds` from a VALUES list: some matched rows deleted, some left, others updated. */
const mergeKinds = fc
  .tuple(columnSubset, fc.uniqueArray(id(40), { minLength: 1, maxLength: 4 }))
  .chain(([columns, keys]) =>
    fc.tuple(
      fc.constant(columns),
      fc.tuple(...keys.map((k) => fc.tuple(fc.constant(k), values(columns)))),
    ),
  )
  .map(([columns, rows]): Statement => {
    const width = columns.length + 1;
    const tuples = rows
      .map((_, r) => {
        const at = 1 + r * width;
        const cast = columns.map((c, i) => `$${at + 1 + i}::${TYPES[c]}`);
        return `($${at}::int, ${cast.join(', ')})`;
      })
      .join(', ');
    const set = columns.map((c) => `${c} = s.${c}`).join(', ');
    return {
      sql: `MERGE INTO kinds k USING (VALUES ${tuples}) AS s (id, ${columns.join(', ')})
        ON k.id = s.id
        WHEN MATCHED AND s.id % 4 = 0 THEN DELETE
        WHEN MATCHED AND s.id % 4 = 1 THEN DO NOTHING
        WHEN MATCHED THEN UPDATE SET ${set}
        WHEN NOT MATCHED THEN INSERT (id, ${columns.join(', ')})
          VALUES (s.id, ${columns.map((c) => `s.${c}`).join(', ')})`,
      params: rows.flatMap(([k, v]) => [k, ...v]),
    };
  });

/** MERGE over the Chinook-like tables, and statements with data-modifying WITH queries. */
const mergeChinook: fc.Arbitrary<Statement> = fc.oneof(
  fc
    .tuple(id(60), nullable(id(24)), awkwardText, fc.integer({ min: 0, max: 9999 }))
    .map(([k, album, name, cents]) => ({
      sql: `MERGE INTO track t USING (VALUES ($1::int, $2::int, $3::text, $4::numeric))
              AS s (id, album, name, price) ON t.id = s.id
            WHEN MATCHED THEN UPDATE SET price = s.price, name = t.name || '~'
            WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.album, s.name, s.price, '{"m": 1}')`,
      params: [k, album, name, (cents / 100).toFixed(2)],
    })),
  fc.tuple(id(16), nullable(id(16)), awkwardText).map(([k, manager, name]) => ({
    sql: `MERGE INTO employee e USING (VALUES ($1::int, $2::int, $3::text)) AS s (id, manager, name)
            ON e.id = s.id
          WHEN MATCHED THEN UPDATE SET manager = s.manager
          WHEN NOT MATCHED THEN INSERT (id, manager, name) VALUES (s.id, s.manager, s.name)`,
    params: [k, manager, name],
  })),
  fc.tuple(id(3), id(60)).map(([p, t]) => ({
    sql: `MERGE INTO playlist_track p USING (VALUES ($1::int, $2::int)) AS s (pl, tr)
            ON p.playlist = s.pl AND p.track_id = s.tr
          WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.pl, s.tr)`,
    params: [p, t],
  })),
  id(24).map((album) => ({
    sql: `MERGE INTO review r USING track t ON r.track_id = t.id AND t.album_id = $1
          WHEN MATCHED AND r.id % 3 = 0 THEN DELETE
          WHEN MATCHED THEN UPDATE SET body = r.body || '#'`,
    params: [album],
  })),
  fc.tuple(id(40), id(3)).map(([low, span]) => ({
    sql: `WITH gone AS (DELETE FROM kinds WHERE id BETWEEN $1 AND $2 RETURNING id, t)
          INSERT INTO review (id, track_id, body) SELECT id + 100, NULL, coalesce(t, '-') FROM gone
          ON CONFLICT DO NOTHING`,
    params: [low, low + span - 1],
  })),
  fc.tuple(id(24), id(60)).map(([album, k]) => ({
    sql: `WITH moved AS (UPDATE track SET album_id = $1 WHERE id = $2 RETURNING id)
          INSERT INTO playlist_track SELECT 3, id FROM moved ON CONFLICT DO NOTHING`,
    params: [album, k],
  })),
  id(3).map((p) => ({
    sql: `WITH cleared AS (DELETE FROM playlist_track WHERE playlist = $1 AND track_id % 2 = 0
            RETURNING track_id)
          SELECT count(*) FROM cleared`,
    params: [p],
  })),
);

const statement = fc.oneof(
  { arbitrary: insertKinds, weight: 3 },
  { arbitrary: updateKinds, weight: 3 },
  { arbitrary: deleteKinds, weight: 1 },
  { arbitrary: chinook, weight: 5 },
  { arbitrary: mergeKinds, weight: 2 },
  { arbitrary: mergeChinook, weight: 3 },
);

describe('random changes through the proxy, all rolled back', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster();
    const client = await tc.client();
    await client.query(SCHEMA);
    await client.query(SEED_DATA);
  });
  after(() => tc?.stop());

  async function newestWriteId(): Promise<number> {
    const { body } = await tc.admin('GET', `/queries?cluster=${tc.cluster}&limit=1`);
    return body.queries[0]?.id ?? 0;
  }

  /** Runs the statements, then rolls every committed change back, newest first. */
  async function runAndRollBack(statements: Statement[]): Promise<number> {
    const start = await tc.checksums(0);
    assert.deepEqual(await tc.checksums(1), start);
    const since = await newestWriteId();
    const client = await tc.client();
    await client.query("SET TimeZone = 'Pacific/Chatham'; SET DateStyle = 'SQL, DMY'");
    let applied = 0;
    for (const { sql, params } of statements) {
      try {
        await client.query(sql, params);
        applied++;
      } catch {
        // A foreign key or a duplicate row made the statement fail: nothing changed.
      }
    }
    await client.end();
    assert.deepEqual(await tc.checksums(1), await tc.checksums(0), 'the backends diverged');
    const { body } = await tc.admin(
      'GET',
      `/queries?cluster=${tc.cluster}&kind=write&after_id=${since}&limit=1000`,
    );
    for (const entry of body.queries) {
      assert.notEqual(entry.reversibility, 'irreversible', `${entry.sql}: ${entry.reason}`);
      assert.notEqual(entry.reversibility, 'partial', `${entry.sql}: ${entry.reason}`);
    }
    // Every change since the start, newest first, in one transaction; a conflict refuses it.
    const undone = await tc.admin('POST', `/clusters/${tc.cluster}/rollback`, {
      to_query_id: since,
    });
    assert.equal(undone.status, 200, JSON.stringify(undone.body).slice(0, 2000));
    assert.deepEqual(await tc.checksums(0), start, 'backend 0 is not back to its start');
    assert.deepEqual(await tc.checksums(1), start, 'backend 1 is not back to its start');
    return applied;
  }

  const sequence = fc.array(statement, {
    minLength: STATEMENTS_PER_RUN,
    maxLength: STATEMENTS_PER_RUN,
  });

  for (const { seed, todo } of REGRESSION_SEEDS) {
    it(`restores the starting contents for regression seed ${seed}`, { todo }, async () => {
      await fc.assert(
        fc.asyncProperty(sequence, async (list) => {
          await runAndRollBack(list);
        }),
        { seed, numRuns: 1 },
      );
    });
  }

  it(`restores the starting contents after ${RUNS} x ${STATEMENTS_PER_RUN} random statements`, async () => {
    const seed = Number(process.env['QO_PROPERTY_SEED'] ?? Date.now() % 2 ** 31);
    let statements = 0;
    let applied = 0;
    const started = performance.now();
    try {
      await fc.assert(
        fc.asyncProperty(sequence, async (list) => {
          statements += list.length;
          try {
            applied += await runAndRollBack(list);
          } catch (error) {
            console.error((error as Error).message.slice(0, 4000));
            throw error;
          }
        }),
        { seed, numRuns: RUNS, endOnFailure: true },
      );
    } catch (error) {
      console.error(`rollback property failed; replay with QO_PROPERTY_SEED=${seed}`);
      throw error;
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`seed ${seed}: ${statements} statements, ${applied} applied, ${seconds} s`);
  });
});
