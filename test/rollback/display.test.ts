import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { renderLiteral } from '../../rollback/display.ts';
import { type Server, startServer } from './run.ts';

/** Values whose displayed literal must evaluate back to the same bytes. */
const SAMPLES: [expression: string, type: string][] = [
  ['true', 'boolean'],
  ['false', 'boolean'],
  ['-32768', 'smallint'],
  ['-2147483648', 'integer'],
  ['9223372036854775807', 'bigint'],
  ['-9223372036854775808', 'bigint'],
  ['4000000000', 'oid'],
  [`'it''s "q" \\ back\\slash, ünïcödé 日本語 😀'`, 'text'],
  [`''`, 'text'],
  [`'ab'`, 'character(5)'],
  [`'x''y'`, 'character varying(10)'],
  [`'pg_class'`, 'name'],
  ['0', 'numeric'],
  ['1.500', 'numeric'],
  ['-0.000001', 'numeric'],
  ['0.00001000', 'numeric'],
  ['12345678901234567890.123456789', 'numeric'],
  ['10000', 'numeric'],
  ['100000000.0', 'numeric'],
  [`'NaN'`, 'numeric'],
  [`'Infinity'`, 'numeric'],
  [`'-Infinity'`, 'numeric'],
  ['1e-30', 'numeric'],
  ['0.1', 'real'],
  ['3.4028235e38', 'real'],
  ['1.17549435e-38', 'real'],
  ['16777217', 'real'],
  [`'NaN'`, 'real'],
  [`'-Infinity'`, 'real'],
  ['0.1', 'double precision'],
  ['1e308', 'double precision'],
  ['5e-324', 'double precision'],
  ['-1.2345678901234567', 'double precision'],
  [`'-0'`, 'double precision'],
  [`'Infinity'`, 'double precision'],
  [`'NaN'`, 'double precision'],
  [`'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'`, 'uuid'],
  [`'{"b": [1, 2.50], "a":  "x''y"}'`, 'json'],
  [`'{"b": [1, 2.50], "a": "x''y", "c": null}'`, 'jsonb'],
  [`'\\x00ff10'`, 'bytea'],
  [`''`, 'bytea'],
  [`'2000-01-01'`, 'date'],
  [`'1999-12-31'`, 'date'],
  [`'0044-03-15 BC'`, 'date'],
  [`'4713-01-01 BC'`, 'date'],
  [`'5874897-12-31'`, 'date'],
  [`'infinity'`, 'date'],
  [`'-infinity'`, 'date'],
  [`'2024-02-29 12:34:56.789012'`, 'timestamp without time zone'],
  [`'1999-12-31 23:59:59.999999'`, 'timestamp without time zone'],
  [`'0044-03-15 12:00:00 BC'`, 'timestamp without time zone'],
  [`'294276-12-31 23:59:59.999999'`, 'timestamp without time zone'],
  [`'4713-11-24 00:00:00 BC'`, 'timestamp without time zone'],
  [`'infinity'`, 'timestamp without time zone'],
  [`'2024-06-01 00:00:00.5+02'`, 'timestamp with time zone'],
  [`'1900-01-01 00:00:00+00'`, 'timestamp with time zone'],
  [`'-infinity'`, 'timestamp with time zone'],
  [`'23:59:59.999999'`, 'time without time zone'],
  [`'00:00:00'`, 'time without time zone'],
  [`'24:00:00'`, 'time without time zone'],
  [`'1 year 2 mons 3 days 04:05:06.789'`, 'interval'],
  [`'-1 year +2 days -00:00:01.5'`, 'interval'],
  [`'-3 days'`, 'interval'],
  [`'1000 hours 5 minutes 0.000001 seconds'`, 'interval'],
  [`'-178000000 years -2147483647 days -2562047788 hours'`, 'interval'],
  [`'0'`, 'interval'],
];

describe('displayed literals', () => {
  let server: Server;

  before(async () => {
    server = await startServer();
    // Settings that change how values are written as text; binary values do not depend on them.
    await server.client.query(`SET TimeZone = 'America/Santiago'; SET DateStyle = 'SQL, DMY';
      SET IntervalStyle = 'sql_standard'; SET extra_float_digits = 0`);
  });
  after(() => server.close());

  test('each rendered literal evaluates to the same binary value, whatever the session settings', async () => {
    for (const [expression, type] of SAMPLES) {
      const original = await server.client.run(`SELECT (${expression})::${type}`);
      const oid = original.fields[0]!.oid;
      const value = original.rows[0]![0]!;
      const literal = renderLiteral(oid, value);
      assert.ok(literal !== undefined, `${type} ${expression} is rendered`);
      const again = await server.client.run(`SELECT (${literal})::${type}`);
      assert.deepEqual(again.rows[0]![0], value, `${type} ${expression} displayed as ${literal}`);
    }
  });

  test('literals read as people expect', async () => {
    const show = async (expression: string) => {
      const r = await server.client.run(`SELECT ${expression}`);
      return renderLiteral(r.fields[0]!.oid, r.rows[0]![0]!);
    };
    assert.equal(await show('2::int'), '2');
    assert.equal(await show(`'PEPE'::varchar`), `'PEPE'`);
    assert.equal(await show(`'it''s'::text`), `'it''s'`);
    assert.equal(await show('1.500::numeric'), '1.500');
    assert.equal(await show('0.1::float4'), '0.1');
    assert.equal(await show(`'NaN'::float8`), `'NaN'::double precision`);
    assert.equal(await show(`'\\x0aff'::bytea`), `'\\x0aff'::bytea`);
    assert.equal(await show(`'{"a": 1}'::jsonb`), `'{"a": 1}'::jsonb`);
    assert.equal(await show(`'2024-01-02'::date`), `'2024-01-02'::date`);
    assert.equal(
      await show(`'2024-01-02 03:04:05.25+00'::timestamptz`),
      `'2024-01-02 03:04:05.25+00'::timestamptz`,
    );
    assert.equal(await show(`'-infinity'::timestamp`), `'-infinity'::timestamp`);
    assert.equal(await show(`'-1 day +02:00'::interval`), `'-1 days +02:00:00'::interval`);
    assert.equal(
      await show(`'1 year 2 days 00:00:01.5'::interval`),
      `'12 mons 2 days 00:00:01.5'::interval`,
    );
    assert.equal(await show('NULL::int'), 'NULL');
  });

  test('types without a renderer are left to the placeholder', async () => {
    const r = await server.client.run(`SELECT ARRAY[1, 2], '10.0.0.1'::inet`);
    assert.equal(renderLiteral(r.fields[0]!.oid, r.rows[0]![0]!), undefined);
    assert.equal(renderLiteral(r.fields[1]!.oid, r.rows[0]![1]!), undefined);
  });
});
