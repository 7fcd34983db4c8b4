import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ResolveTable } from '../../rollback/plan.ts';
import type { AfterImage } from '../../rollback/values.ts';
import { scanMetadata } from './meta.ts';
import { execute, mustPlan, type Server, snapshot, startServer, undo } from './run.ts';

const SCHEMA = `
CREATE SCHEMA fk;
CREATE TABLE fk.artist (id int PRIMARY KEY, name text);
CREATE TABLE fk.album (id int PRIMARY KEY, artist int NOT NULL REFERENCES fk.artist ON DELETE CASCADE,
  title text);
CREATE TABLE fk.track (id int PRIMARY KEY, album int REFERENCES fk.album ON DELETE CASCADE,
  genre int, name text, data jsonb);
CREATE TABLE fk.playlist (id int PRIMARY KEY, favourite int REFERENCES fk.track ON DELETE SET NULL,
  fallback int DEFAULT 0 REFERENCES fk.track ON DELETE SET DEFAULT);
CREATE TABLE fk.employees (id int PRIMARY KEY, name text,
  manager int REFERENCES fk.employees ON DELETE SET NULL);
CREATE TABLE fk.tree (id int PRIMARY KEY, parent int REFERENCES fk.tree ON DELETE CASCADE,
  label text);
CREATE TABLE fk.pair (a int, b int, note text, PRIMARY KEY (a, b));
CREATE TABLE fk.pair_child (id int PRIMARY KEY, a int, b int,
  FOREIGN KEY (a, b) REFERENCES fk.pair ON DELETE CASCADE);
INSERT INTO fk.artist VALUES (1, 'A'), (2, 'B');
INSERT INTO fk.album VALUES (10, 1, 'a1'), (11, 1, 'a2'), (12, 2, 'b1');
INSERT INTO fk.track VALUES (0, NULL, NULL, 'placeholder', NULL), (100, 10, 1, 't1', '{"x": [1, 2]}'),
  (101, 10, 2, 't2', NULL), (102, 11, 1, 't3', '"s"'), (103, 12, 1, 't4', NULL);
INSERT INTO fk.playlist VALUES (1, 100, 101), (2, 103, 100), (3, NULL, 102);
INSERT INTO fk.employees VALUES (1, 'boss', NULL), (2, 'mid', 1), (3, 'low', 2), (4, 'other', 1);
INSERT INTO fk.tree VALUES (1, NULL, 'root'), (2, 1, 'a'), (3, 2, 'b'), (4, 3, 'c'), (5, NULL, 'x'),
  (6, 5, 'y');
INSERT INTO fk.pair VALUES (1, 1, 'p'), (1, 2, 'q');
INSERT INTO fk.pair_child VALUES (1, 1, 1), (2, 1, 2), (3, 1, 1);
`;

const TABLES = [
  'fk.artist',
  'fk.album',
  'fk.track',
  'fk.playlist',
  'fk.employees',
  'fk.tree',
  'fk.pair',
  'fk.pair_child',
];

describe('capture of deletes that foreign keys cascade', () => {
  let server: Server;
  let resolve: ResolveTable;

  before(async () => {
    server = await startServer();
    await server.client.query(SCHEMA);
    resolve = await scanMetadata(server.client, ['fk']);
  });
  after(() => server.close());

  async function all(): Promise<string[][]> {
    return Promise.all(TABLES.map((t) => snapshot(server.client, t)));
  }

  async function exactRoundTrip(sql: string, params: string[] = []) {
    const start = await all();
    const { outcome } = await execute(server.client, mustPlan(sql, resolve), params);
    assert.notDeepEqual(await all(), start, 'the statement changed nothing');
    assert.equal(outcome.reason, null);
    assert.equal(outcome.reversibility, 'exact');
    await undo(server.client, outcome.rollback);
    assert.deepEqual(await all(), start);
    return outcome;
  }

  test('a delete cascading two levels and into SET NULL and SET DEFAULT is undone exactly', async () => {
    const outcome = await exactRoundTrip('DELETE FROM fk.artist WHERE id = $1', ['1']);
    const display = outcome.rollback!.display.split('\n');
    // Parents before children; foreign keys set back last.
    assert.match(display[0]!, /^INSERT INTO fk\.artist/);
    assert.match(display[1]!, /^INSERT INTO fk\.album/);
    assert.match(display[2]!, /^INSERT INTO fk\.track/);
    assert.ok(display.slice(3).every((line) => line.startsWith('UPDATE fk.playlist SET')));
    const images = outcome.afterImage as AfterImage[];
    assert.deepEqual(
      images.map((i) => `${i.table}:${i.state}:${i.rows.length}`),
      [
        'artist:absent:1',
        'album:absent:2',
        'track:absent:3',
        'playlist:present:3',
        'playlist:present:1',
      ],
    );
  });

  test('deleting a manager sets back the manager of the employees it left without one', async () => {
    const outcome = await exactRoundTrip('DELETE FROM fk.employees WHERE id = 1');
    assert.equal(
      outcome.rollback!.display,
      [
        "INSERT INTO fk.employees (id, name, manager) VALUES (1, 'boss', NULL);",
        'UPDATE fk.employees SET manager = 1 WHERE id = 2;',
        'UPDATE fk.employees SET manager = 1 WHERE id = 4;',
      ].join('\n'),
    );
  });

  test('a self-referencing cascade is followed to any depth', async () => {
    const outcome = await exactRoundTrip('DELETE FROM fk.tree WHERE label = $1', ['a']);
    assert.equal((outcome.afterImage as AfterImage[])[0]!.rows.length, 3);
  });

  test('a delete with USING that cascades through a composite key is undone exactly', async () => {
    await exactRoundTrip(
      `DELETE FROM fk.pair p USING fk.pair_child c WHERE c.a = p.a AND c.b = p.b AND c.id = 1`,
    );
  });

  test('a delete whose rows both cascade and are deleted directly restores each row once', async () => {
    await exactRoundTrip('DELETE FROM fk.tree WHERE id IN (1, 3, 5)');
  });
});
