/** Conformance sequences of COPY, LISTEN/NOTIFY, very large messages and CancelRequest. */
import * as fe from '../../proxy/frontend-encode.ts';
import {
  CHUNK,
  copyData,
  copyDone,
  copyFail,
  extended,
  MB,
  q,
  query,
  ready,
} from './conformance-build.ts';
import { messages, type Sequence } from './conformance-run.ts';

export const MORE: Sequence[] = [
  // COPY.
  {
    name: 'COPY FROM STDIN, data sent after CopyInResponse, then CopyDone',
    setup: 'CREATE TABLE c1 (id int PRIMARY KEY, v text)',
    steps: [
      { send: q('COPY c1 FROM STDIN'), until: { code: 'G' } },
      ready(
        messages((w) => {
          copyData(w, '1\tone\n2\ttwo\n');
          copyData(w, '3\tthree\n');
          copyDone(w);
        }),
      ),
      query('SELECT id, v FROM c1 ORDER BY id'),
    ],
  },
  {
    name: 'COPY FROM STDIN through the extended protocol: the Sync sent with Execute waits for the copy',
    setup: 'CREATE TABLE cx (id int PRIMARY KEY)',
    steps: [
      { send: extended('COPY cx FROM STDIN'), until: { code: 'G' } },
      ready(
        messages((w) => {
          copyData(w, '1\n2\n');
          copyDone(w);
          fe.sync(w);
        }),
      ),
      query('SELECT count(*) FROM cx'),
    ],
  },
  {
    name: 'COPY FROM STDIN with its data in the same write as the query',
    setup: 'CREATE TABLE c2 (id int PRIMARY KEY)',
    steps: [
      ready(
        Buffer.concat([
          q('COPY c2 FROM STDIN'),
          messages((w) => {
            copyData(w, '1\n2\n');
            copyDone(w);
          }),
        ]),
      ),
      query('SELECT count(*) FROM c2'),
    ],
  },
  {
    name: 'COPY FROM STDIN, CopyDone and the next query in one write',
    setup: 'CREATE TABLE c6 (id int PRIMARY KEY)',
    steps: [
      { send: q('COPY c6 FROM STDIN'), until: { code: 'G' } },
      ready(
        Buffer.concat([
          messages((w) => {
            copyData(w, '1\n2\n3\n');
            copyDone(w);
          }),
          q('SELECT count(*) FROM c6'),
        ]),
        2,
      ),
    ],
  },
  {
    name: 'two COPY statements in one query string, every message in one write',
    setup: 'CREATE TABLE c7 (id int PRIMARY KEY); CREATE TABLE c8 (id int PRIMARY KEY)',
    steps: [
      ready(
        Buffer.concat([
          q('COPY c7 FROM STDIN; COPY c8 FROM STDIN; SELECT 1'),
          messages((w) => {
            copyData(w, '1\n');
            copyDone(w);
            copyData(w, '2\n3\n');
            copyDone(w);
          }),
          q('SELECT (SELECT count(*) FROM c7), (SELECT count(*) FROM c8)'),
        ]),
        2,
      ),
    ],
  },
  {
    name: 'COPY into a missing table, its pipelined data ignored',
    steps: [
      ready(
        Buffer.concat([
          q('COPY no_such_table FROM STDIN'),
          messages((w) => {
            copyData(w, '1\n');
            copyDone(w);
          }),
          q('SELECT 1'),
        ]),
        2,
      ),
    ],
  },
  {
    name: 'COPY FROM STDIN ended by CopyFail',
    setup: 'CREATE TABLE c3 (id int PRIMARY KEY)',
    steps: [
      { send: q('COPY c3 FROM STDIN'), until: { code: 'G' } },
      ready(
        messages((w) => {
          copyData(w, '1\n');
          copyFail(w, 'the client changed its mind');
        }),
      ),
      query('SELECT count(*) FROM c3'),
    ],
  },
  {
    name: 'COPY FROM STDIN with a bad row',
    setup: 'CREATE TABLE c4 (id int PRIMARY KEY)',
    steps: [
      { send: q('COPY c4 FROM STDIN'), until: { code: 'G' } },
      ready(
        messages((w) => {
          copyData(w, '1\nnot a number\n');
          copyDone(w);
        }),
      ),
      query('SELECT count(*) FROM c4'),
    ],
  },
  {
    name: 'COPY TO STDOUT',
    setup:
      "CREATE TABLE c5 (id int PRIMARY KEY, v text); INSERT INTO c5 VALUES (1, 'a'), (2, NULL)",
    steps: [
      query('COPY c5 TO STDOUT'),
      query('COPY (SELECT id FROM c5 ORDER BY id) TO STDOUT (FORMAT csv, HEADER)'),
    ],
  },

  // LISTEN and NOTIFY.
  {
    name: 'LISTEN, then NOTIFY heard by the same session',
    steps: [
      query('LISTEN conformance'),
      { ...query("NOTIFY conformance, 'hello'"), linger: 300 },
      query('UNLISTEN conformance'),
      { ...query("NOTIFY conformance, 'unheard'"), linger: 300 },
    ],
  },
  {
    name: 'pg_notify() heard by the same session',
    steps: [
      query('LISTEN by_function'),
      { ...query("SELECT pg_notify('by_function', 'payload')"), linger: 300 },
    ],
  },
  {
    name: 'NOTIFY in a transaction is heard at COMMIT, not at ROLLBACK',
    steps: [
      query('LISTEN later'),
      query('BEGIN'),
      { ...query("NOTIFY later, 'committed'"), linger: 200 },
      { ...query('COMMIT'), linger: 300 },
      query('BEGIN'),
      query("NOTIFY later, 'rolled back'"),
      { ...query('ROLLBACK'), linger: 300 },
    ],
  },

  // Large messages, split across many TCP writes.
  {
    name: 'a 10 MB query sent in 64 kB writes',
    steps: [{ ...query(`SELECT length('${'q'.repeat(10 * MB)}') AS n`), chunk: CHUNK }],
  },
  {
    name: 'a 20 MB row written in 64 kB writes and read back',
    setup: 'CREATE TABLE big (id int PRIMARY KEY, body text)',
    steps: [
      {
        ...ready(
          messages((w) => {
            fe.parse(w, '', 'INSERT INTO big VALUES ($1, $2)', [23, 25]);
            fe.bind(w, '', '', [], [Buffer.from('1'), Buffer.alloc(20 * MB, 'r')], []);
            fe.execute(w, '', 0);
            fe.sync(w);
          }),
        ),
        chunk: CHUNK,
      },
      query('SELECT id, length(body), md5(body) FROM big'),
      query('SELECT body FROM big'),
      ready(extended('SELECT body || $1 FROM big', [Buffer.from('!')])),
    ],
  },

  // CancelRequest.
  {
    name: 'CancelRequest stops a simple-query pg_sleep with 57014',
    withinMs: 4_000,
    steps: [{ ...query('SELECT pg_sleep(10)'), cancelAfterMs: 300 }, query('SELECT 1')],
  },
  {
    name: 'CancelRequest stops an extended-protocol pg_sleep inside a transaction',
    withinMs: 4_000,
    steps: [
      query('BEGIN'),
      { ...ready(extended('SELECT pg_sleep($1)', [Buffer.from('10')])), cancelAfterMs: 300 },
      query('ROLLBACK'),
    ],
  },
];
