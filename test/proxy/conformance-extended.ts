/** Conformance sequences of the extended query protocol. */
import * as fe from '../../proxy/frontend-encode.ts';
import { extended, int4, query, ready } from './conformance-build.ts';
import { messages, type Sequence } from './conformance-run.ts';

export const EXTENDED: Sequence[] = [
  {
    name: 'unnamed statement with a parameter: Parse, Bind, Describe portal, Execute, Sync',
    steps: [ready(extended('SELECT $1::int * 2 AS doubled', [Buffer.from('21')]))],
  },
  {
    name: 'named statement reused, closed, then unknown',
    steps: [
      ready(messages((w) => fe.sync(fe.parse(w, 'st', 'SELECT $1::text AS v', [25])))),
      ...['a', 'b'].map((v) =>
        ready(
          messages((w) => {
            fe.bind(w, '', 'st', [], [Buffer.from(v)], []);
            fe.execute(w, '', 0);
            fe.sync(w);
          }),
        ),
      ),
      ready(messages((w) => fe.sync(fe.close(w, 'S', 'st')))),
      ready(
        messages((w) =>
          fe.sync(fe.execute(fe.bind(w, '', 'st', [], [Buffer.from('c')], []), '', 0)),
        ),
      ),
    ],
  },
  {
    name: 'statement prepared in one batch, described and run in later ones',
    steps: [
      ready(messages((w) => fe.sync(fe.parse(w, 'later', 'SELECT $1::int AS n', [])))),
      // Several times, so that reads spread over every backend reach each of them.
      ...[1, 2, 3].map(() => ready(messages((w) => fe.sync(fe.describe(w, 'S', 'later'))))),
      ...[1, 2, 3].map((n) =>
        ready(
          messages((w) => {
            fe.bind(w, '', 'later', [], [Buffer.from(String(n))], []);
            fe.describe(w, 'P', '');
            fe.execute(w, '', 0);
            fe.sync(w);
          }),
        ),
      ),
    ],
  },
  {
    name: 'Describe statement: parameter types and columns',
    steps: [
      ready(
        messages((w) => {
          fe.parse(w, 'd1', 'SELECT $1::int + $2 AS sum, $3::text AS label', [0, 23]);
          fe.describe(w, 'S', 'd1');
          fe.sync(w);
        }),
      ),
    ],
  },
  {
    name: 'Describe of a change without RETURNING gives NoData',
    setup: 'CREATE TABLE e1 (id int PRIMARY KEY)',
    steps: [
      ready(
        messages((w) => {
          fe.parse(w, 'ins', 'INSERT INTO e1 VALUES ($1)', [23]);
          fe.describe(w, 'S', 'ins');
          fe.bind(w, '', 'ins', [], [Buffer.from('1')], []);
          fe.describe(w, 'P', '');
          fe.execute(w, '', 0);
          fe.sync(w);
        }),
      ),
      query('SELECT id FROM e1'),
    ],
  },
  {
    name: 'Execute with a row limit, resumed until done (PortalSuspended)',
    steps: [
      ready(
        messages((w) => {
          fe.parse(w, '', 'SELECT g FROM generate_series(1, 5) g', []);
          fe.bind(w, 'cur', '', [], [], []);
          fe.execute(w, 'cur', 2);
          fe.execute(w, 'cur', 2);
          fe.execute(w, 'cur', 2);
          fe.sync(w);
        }),
      ),
    ],
  },
  {
    name: 'row limit, Flush, and the rest of the portal after it',
    steps: [
      {
        send: messages((w) => {
          fe.parse(w, '', 'SELECT g FROM generate_series(1, 4) g', []);
          fe.bind(w, 'p', '', [], [], []);
          fe.describe(w, 'P', 'p');
          fe.execute(w, 'p', 3);
          fe.flush(w);
        }),
        until: { code: 's' },
      },
      ready(messages((w) => fe.sync(fe.execute(w, 'p', 0)))),
    ],
  },
  {
    name: 'portal suspended across Syncs inside a transaction block',
    steps: [
      query('BEGIN'),
      ready(
        messages((w) => {
          fe.parse(w, '', 'SELECT g FROM generate_series(1, 3) g', []);
          fe.bind(w, 'keep', '', [], [], []);
          fe.execute(w, 'keep', 2);
          fe.sync(w);
        }),
      ),
      ready(messages((w) => fe.sync(fe.execute(w, 'keep', 2)))),
      query('COMMIT'),
    ],
  },
  {
    name: 'Close of a statement, a portal and of names that do not exist',
    steps: [
      ready(
        messages((w) => {
          fe.parse(w, 'c1', 'SELECT 1', []);
          fe.bind(w, 'cp', 'c1', [], [], []);
          fe.close(w, 'P', 'cp');
          fe.close(w, 'S', 'c1');
          fe.close(w, 'S', 'never');
          fe.close(w, 'P', 'never');
          fe.sync(w);
        }),
      ),
    ],
  },
  {
    name: 'an error skips every message up to Sync',
    steps: [
      ready(
        messages((w) => {
          fe.parse(w, '', 'SELECT 1/0', []);
          fe.bind(w, '', '', [], [], []);
          fe.execute(w, '', 0);
          fe.parse(w, '', 'SELECT 1', []);
          fe.bind(w, '', '', [], [], []);
          fe.execute(w, '', 0);
          fe.sync(w);
        }),
      ),
      query('SELECT 2'),
    ],
  },
  {
    name: 'Parse errors: syntax, two commands, a name in use',
    steps: [
      ready(
        messages((w) =>
          fe.sync(fe.execute(fe.bind(fe.parse(w, '', 'SELEC 1', []), '', '', [], [], []), '', 0)),
        ),
      ),
      ready(messages((w) => fe.sync(fe.parse(w, '', 'SELECT 1; SELECT 2', [])))),
      ready(
        messages((w) =>
          fe.sync(fe.parse(fe.parse(w, 'dup', 'SELECT 1', []), 'dup', 'SELECT 2', [])),
        ),
      ),
    ],
  },
  {
    name: 'Bind of an unknown statement and Execute of an unknown portal',
    steps: [
      ready(messages((w) => fe.sync(fe.bind(w, '', 'missing', [], [], [])))),
      ready(messages((w) => fe.sync(fe.execute(w, 'missing', 0)))),
    ],
  },
  {
    name: 'pipeline of several Bind/Execute before one Sync',
    setup: 'CREATE TABLE e2 (id int PRIMARY KEY, v text)',
    steps: [
      ready(
        messages((w) => {
          fe.parse(w, 'put', 'INSERT INTO e2 VALUES ($1, $2)', [23, 25]);
          for (const id of [1, 2, 3]) {
            fe.bind(w, '', 'put', [], [Buffer.from(String(id)), Buffer.from(`v${id}`)], []);
            fe.execute(w, '', 0);
          }
          fe.parse(w, 'get', 'SELECT id, v FROM e2 ORDER BY id', []);
          fe.bind(w, '', 'get', [], [], []);
          fe.describe(w, 'P', '');
          fe.execute(w, '', 0);
          fe.sync(w);
        }),
      ),
    ],
  },
  {
    name: 'pipeline whose second change fails rolls the first back',
    setup: 'CREATE TABLE e3 (id int PRIMARY KEY)',
    steps: [
      ready(
        messages((w) => {
          fe.parse(w, 'put', 'INSERT INTO e3 VALUES ($1)', [23]);
          for (const id of [1, 1, 2]) {
            fe.bind(w, '', 'put', [], [Buffer.from(String(id))], []);
            fe.execute(w, '', 0);
          }
          fe.sync(w);
        }),
      ),
      query('SELECT count(*) FROM e3'),
    ],
  },
  {
    name: 'Flush without Sync answers at once, Sync later ends it',
    steps: [
      {
        send: messages((w) => {
          fe.parse(w, '', 'SELECT 42 AS answer', []);
          fe.bind(w, '', '', [], [], []);
          fe.describe(w, 'P', '');
          fe.execute(w, '', 0);
          fe.flush(w);
        }),
        until: { code: 'C' },
      },
      ready(messages((w) => fe.sync(w))),
    ],
  },
  {
    name: 'binary parameters and binary results',
    steps: [
      ready(
        messages((w) => {
          fe.parse(w, '', 'SELECT $1::int4 + 1 AS n, $2::text AS t, $3::int8 AS z', [23, 25, 20]);
          fe.bind(w, '', '', [1, 0, 1], [int4(41), Buffer.from('txt'), null], [1]);
          fe.describe(w, 'P', '');
          fe.execute(w, '', 0);
          fe.sync(w);
        }),
      ),
    ],
  },
  {
    name: 'a change with binary parameters and binary RETURNING',
    setup: 'CREATE TABLE e4 (id int PRIMARY KEY, n int4)',
    steps: [
      ready(
        messages((w) => {
          fe.parse(w, '', 'INSERT INTO e4 VALUES ($1, $2) RETURNING id, n * 2 AS twice', [23, 23]);
          fe.bind(w, '', '', [1], [int4(7), int4(50)], [1, 0]);
          fe.describe(w, 'P', '');
          fe.execute(w, '', 0);
          fe.sync(w);
        }),
      ),
      query('SELECT id, n FROM e4'),
    ],
  },
  { name: 'empty statement through the extended protocol', steps: [ready(extended(''))] },
];
