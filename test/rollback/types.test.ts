import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ResolveTable } from '../../rollback/plan.ts';
import { scanMetadata } from './meta.ts';
import { roundTrip, type Server, startServer } from './run.ts';

const SCHEMA = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS numeric CHECK (VALUE > 0);
CREATE TYPE pair AS (a int, b text);
CREATE TABLE samples (
  id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  n numeric, n2 numeric(20, 6), f4 real, f8 double precision,
  t text, vc varchar(40), bp char(5), b bytea,
  ts timestamp, tz timestamptz, d date, tm time, iv interval,
  j json, jb jsonb, arr text[], iarr int[], m mood, marr mood[], u uuid,
  pos positive, p pair, bits bit varying(10), ip inet, r int4range,
  twice int GENERATED ALWAYS AS (id * 2) STORED);
`;

const ROWS = `
INSERT INTO samples (n, n2, f4, f8, t, vc, bp, b, ts, tz, d, tm, iv, j, jb, arr, iarr, m, marr,
  u, pos, p, bits, ip, r) VALUES
 (1.500, 12.5, 0.1, 0.1, 'it''s "q" \\ back\\slash, ünïcödé 日本語 😀', 'a,b', 'ab', '\\x00ff10',
  '2024-02-29 12:34:56.789012', '2024-06-01 00:00:00.5+02', '2000-01-01', '23:59:59.999999',
  '1 year 2 mons 3 days 04:05:06.789', '{"b": [1, 2.50], "a":  "x"}', '{"b": [1, 2.50], "a": null}',
  ARRAY['a,b', NULL, 'c"d', '{x}', ''], '{{1,2},{3,NULL}}', 'happy', '{sad,happy}',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 3.14159, ROW(1, 'x,y'), B'101', '10.0.0.1/8', '[1,5)'),
 ('NaN', -0.000001, 'NaN', 'Infinity', '', NULL, NULL, '', 'infinity', '-infinity',
  '0044-03-15 BC', '00:00:00', '-1 day +02:00', 'null', '[]', '{}', '{}', 'sad', '{}',
  NULL, 1e-20, ROW(NULL, NULL), B'', '::1', 'empty'),
 ('-Infinity', NULL, '-Infinity', '-0', NULL, '''', '     ', NULL, NULL, '1900-01-01 00:00:00+00',
  NULL, NULL, NULL, NULL, 'null', ARRAY[NULL]::text[], NULL, NULL, ARRAY[NULL]::mood[],
  NULL, NULL, NULL, NULL, NULL, NULL),
 (12345678901234567890.123456789, 0, 3.4028235e38, 5e-324, repeat('x', 10000), 'ü', 'abcde',
  decode(repeat('ff00', 5000), 'hex'), '1999-12-31 23:59:59.999999', '2030-03-31 01:30:00+03',
  'infinity', '24:00:00', '0', '"s"', '"s"', ARRAY['NULL', 'null'], '{-1}', 'ok', '{ok,ok}',
  '00000000-0000-0000-0000-000000000000', 1, ROW(-1, ''), B'1111111111', '255.255.255.255', '(,)');
`;

describe('capture and undo round trip for many types', () => {
  let server: Server;
  let resolve: ResolveTable;

  before(async () => {
    server = await startServer();
    await server.client.query(SCHEMA);
    await server.client.query(ROWS);
    resolve = await scanMetadata(server.client, ['public']);
    // Settings that change how values are written as text; binary capture must not care.
    await server.client.query(`SET TimeZone = 'Asia/Kathmandu'; SET DateStyle = 'SQL, DMY';
      SET IntervalStyle = 'sql_standard'; SET extra_float_digits = -3; SET bytea_output = 'escape'`);
  });
  after(() => server.close());

  test('deleting every row and undoing restores each row byte for byte, identity values included', async () => {
    const { outcome } = await roundTrip(server.client, resolve, 'samples', 'DELETE FROM samples');
    assert.equal(outcome.reversibility, 'exact');
    assert.match(
      outcome.rollback!.display,
      /^INSERT INTO public\.samples \(id, n, .*\) OVERRIDING SYSTEM VALUE VALUES \(1, 1\.500, /,
    );
    assert.match(
      outcome.rollback!.display,
      /'NaN'::numeric, -0\.000001, 'NaN'::real, 'Infinity'::double precision/,
    );
    assert.match(outcome.rollback!.display, /\$19 \/\* mood \*\//);
  });

  test('setting every column and undoing restores the old values byte for byte', async () => {
    const set = `UPDATE samples SET n = 1, n2 = 2, f4 = 3, f8 = 4, t = 'new', vc = 'new', bp = 'new',
      b = '\\x01', ts = now(), tz = now(), d = current_date, tm = '12:00', iv = '1 hour',
      j = '{}', jb = '{}', arr = '{z}', iarr = '{9}', m = 'ok', marr = '{ok}',
      u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', pos = 7, p = ROW(7, 'z'), bits = B'0',
      ip = '1.2.3.4', r = '[7,8)'`;
    const { outcome } = await roundTrip(server.client, resolve, 'samples', set);
    assert.equal(outcome.reversibility, 'exact');
    assert.equal(outcome.rollback!.statements.length, 4);
  });

  test('multi-column assignments, subscripts and fields restore whole columns', async () => {
    const set = `UPDATE samples SET (n, t) = (SELECT 1, 'q'), iarr[1] = 42, iarr[2] = 43, p.a = 9
      WHERE id IN (2, 4)`;
    const { outcome } = await roundTrip(server.client, resolve, 'samples', set);
    assert.match(
      outcome.rollback!.statements[0]!.sql,
      /^UPDATE public\.samples SET n = \$1, t = \$2, iarr = \$3, p = \$4::pair WHERE id = \$5$/,
    );
  });

  test('setting columns to NULL and undoing restores them', async () => {
    const set = 'UPDATE samples SET n = NULL, t = NULL, b = NULL, arr = NULL, m = NULL, p = NULL';
    await roundTrip(server.client, resolve, 'samples', set);
  });

  test('inserting copies of every row and undoing deletes exactly those', async () => {
    const copy = `INSERT INTO samples (n, n2, f4, f8, t, vc, bp, b, ts, tz, d, tm, iv, j, jb, arr,
      iarr, m, marr, u, pos, p, bits, ip, r) SELECT n, n2, f4, f8, t, vc, bp, b, ts, tz, d, tm, iv,
      j, jb, arr, iarr, m, marr, u, pos, p, bits, ip, r FROM samples`;
    const { outcome } = await roundTrip(server.client, resolve, 'samples', copy);
    assert.equal(outcome.rollback!.display, 'DELETE FROM public.samples WHERE id IN (5, 6, 7, 8);');
  });

  test('a user-typed value is bound with an unspecified type and cast by name', async () => {
    const { outcome } = await roundTrip(
      server.client,
      resolve,
      'samples',
      'DELETE FROM samples WHERE m IS NOT NULL',
    );
    const stmt = outcome.rollback!.statements[0]!;
    assert.match(stmt.sql, /\$19::mood, \$20::mood\[\], \$21, \$22, \$23::pair/);
  });
});
