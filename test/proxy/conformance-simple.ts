/** Conformance sequences of the simple query protocol and of transactions. */
import * as fe from '../../proxy/frontend-encode.ts';
import { query, ready } from './conformance-build.ts';
import { messages, type Sequence } from './conformance-run.ts';

export const SIMPLE: Sequence[] = [
  { name: 'simple query, one statement', steps: [query("SELECT 1 AS a, 'x'::text AS b")] },
  {
    name: 'simple query, several statements in one string',
    steps: [query("SELECT 1; SELECT 'two' AS t; VALUES (3), (4)")],
  },
  { name: 'empty query string', steps: [query('')] },
  { name: 'query of semicolons and spaces only', steps: [query(' ; ;  ')] },
  { name: 'comment-only query', steps: [query('-- nothing here'), query('/* nor here */')] },
  {
    name: 'error in the middle of a query string stops the rest',
    steps: [query('SELECT 1; SELECT 1/0; SELECT 2'), query('SELECT 3')],
  },
  { name: 'syntax error', steps: [query('SELEC 1'), query('SELECT 1')] },
  {
    name: 'BEGIN, statements, COMMIT as separate queries',
    setup: 'CREATE TABLE s1 (id int PRIMARY KEY)',
    steps: [
      query('BEGIN'),
      query('INSERT INTO s1 VALUES (1), (2)'),
      query('SELECT count(*) FROM s1'),
      query('COMMIT'),
      query('SELECT id FROM s1 ORDER BY id'),
    ],
  },
  {
    name: 'BEGIN, a change, ROLLBACK leaves nothing',
    setup: 'CREATE TABLE s2 (id int PRIMARY KEY)',
    steps: [
      query('BEGIN'),
      query('INSERT INTO s2 VALUES (1)'),
      query('ROLLBACK'),
      query('SELECT count(*) FROM s2'),
    ],
  },
  {
    name: 'failed transaction block ignores statements until ROLLBACK',
    steps: [
      query('BEGIN'),
      query('SELECT 1/0'),
      query('SELECT 1'),
      query('COMMIT'),
      query('SELECT 2'),
    ],
  },
  {
    name: 'implicit transaction of a query string is rolled back by its error',
    setup: 'CREATE TABLE s3 (id int PRIMARY KEY)',
    steps: [
      query('INSERT INTO s3 VALUES (1); INSERT INTO s3 VALUES (1)'),
      query('SELECT count(*) FROM s3'),
    ],
  },
  {
    name: 'explicit transaction inside one query string',
    setup: 'CREATE TABLE s4 (id int PRIMARY KEY)',
    steps: [
      query('BEGIN; INSERT INTO s4 VALUES (1); COMMIT; SELECT id FROM s4'),
      query('BEGIN; INSERT INTO s4 VALUES (2)'),
      query('ROLLBACK'),
      query('SELECT count(*) FROM s4'),
    ],
  },
  {
    name: 'warnings for COMMIT without a transaction and BEGIN inside one',
    steps: [query('COMMIT'), query('ROLLBACK'), query('BEGIN'), query('BEGIN'), query('COMMIT')],
  },
  {
    name: 'SET of reported parameters sends ParameterStatus',
    steps: [
      query("SET TimeZone = 'UTC'"),
      query("SET application_name = 'conformance'"),
      query("SET work_mem = '5MB'"),
      query("SELECT current_setting('TimeZone'), current_setting('application_name')"),
    ],
  },
  {
    name: 'SET inside a rolled-back transaction is undone',
    steps: [
      query('BEGIN'),
      query("SET TimeZone = 'Pacific/Auckland'"),
      query('ROLLBACK'),
      query("SELECT current_setting('TimeZone') = 'Pacific/Auckland'"),
    ],
  },
  {
    name: 'SAVEPOINT, ROLLBACK TO and RELEASE',
    setup: 'CREATE TABLE s6 (id int PRIMARY KEY)',
    steps: [
      query('BEGIN'),
      query('INSERT INTO s6 VALUES (1)'),
      query('SAVEPOINT a'),
      query('INSERT INTO s6 VALUES (1)'),
      query('ROLLBACK TO SAVEPOINT a'),
      query('INSERT INTO s6 VALUES (2)'),
      query('RELEASE a'),
      query('COMMIT'),
      query('SELECT id FROM s6 ORDER BY id'),
    ],
  },
  {
    name: 'NoticeResponse from the server, relayed in order',
    steps: [
      query("DO $$ BEGIN RAISE NOTICE 'first'; RAISE WARNING 'second'; END $$"),
      query('DROP TABLE IF EXISTS no_such_table_here'),
    ],
  },
  {
    name: 'DECLARE a cursor, FETCH from it, Describe its portal',
    steps: [
      query('BEGIN'),
      query('DECLARE cur CURSOR FOR SELECT g FROM generate_series(1, 5) g'),
      query('FETCH 2 FROM cur'),
      ready(messages((w) => fe.sync(fe.describe(w, 'P', 'cur')))),
      query('FETCH ALL FROM cur'),
      query('CLOSE cur'),
      query('COMMIT'),
    ],
  },
  {
    name: 'command tags of DDL and changes, with RETURNING',
    steps: [
      query('CREATE TABLE s5 (id int PRIMARY KEY, v text)'),
      query("INSERT INTO s5 VALUES (1, 'a'), (2, 'b'), (3, 'c')"),
      query("UPDATE s5 SET v = 'z' WHERE id > 1 RETURNING id, v"),
      query('DELETE FROM s5 WHERE id = 3'),
      query('DROP TABLE s5'),
    ],
  },
];
