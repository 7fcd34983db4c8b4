import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { count, eq, sql } from 'drizzle-orm';
import { columns, constraints, schemas, tables } from '../../catalog/schema.ts';
import { type DrizzleCatalog, openCatalog } from '../../catalog/store.ts';
import type { AuditEntry } from '../../src/cluster/audit.ts';
import type { CatalogConfig } from '../../src/config/types.ts';
import { QoError } from '../../src/errors.ts';
import { startTestPostgres, type TestPostgres } from '../harness/postgres.ts';
import { employees, employeesProjects, entry, metadata, readEntry } from './fixtures.ts';
import { closedPort, createDatabase } from './support.ts';

let server: TestPostgres | undefined;
const scratch = mkdtempSync(join(tmpdir(), 'qo-catalog-test-'));
let databases = 0;

before(async () => {
  server = await startTestPostgres();
});
after(async () => {
  await server?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

interface Driver {
  name: string;
  /** A catalog location nobody has used yet. */
  fresh(): Promise<CatalogConfig>;
}

const drivers: Driver[] = [
  {
    name: 'embedded PGlite',
    // The parent directories do not exist yet: opening must create them.
    fresh: async () => ({ kind: 'embedded', dataDir: join(scratch, `pglite-${databases++}`, 'c') }),
  },
  {
    name: 'PostgreSQL',
    fresh: async () => ({
      kind: 'postgres',
      url: await createDatabase(server!, `catalog_${databases++}`),
    }),
  },
];

for (const driver of drivers) {
  describe(`catalog on ${driver.name}`, () => {
    let catalog: DrizzleCatalog;
    let config: CatalogConfig;

    before(async () => {
      config = await driver.fresh();
      catalog = await openCatalog(config);
    });
    after(async () => {
      await catalog.close();
    });

    test('reopening applies no migration twice and keeps the data', async () => {
      const [id] = await catalog.recordCommit(null, 'prod', [entry()]);
      await catalog.close();
      catalog = await openCatalog(config);
      assert.equal(await appliedMigrations(catalog), 1);
      assert.equal((await catalog.getEntry(id!))?.sql, entry().sql);
    });

    test('recordCommit returns ascending ids in input order and records the decision', async () => {
      const inputs = [1, 2, 3].map((n) => entry({ sql: `INSERT ${n}`, transaction: 'tx-a' }));
      const ids = await catalog.recordCommit('qo_gid_1', 'prod', inputs);
      assert.equal(ids.length, 3);
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => a - b),
      );
      const stored = await Promise.all(ids.map((id) => catalog.getEntry(id)));
      assert.deepEqual(
        stored.map((e) => e?.sql),
        ['INSERT 1', 'INSERT 2', 'INSERT 3'],
      );
      assert.equal(await catalog.decisionFor('qo_gid_1'), 'commit');
      assert.equal(await catalog.decisionFor('qo_gid_unknown'), undefined);
    });

    test('recordCommit with a gid already decided records nothing', async () => {
      await catalog.recordCommit('qo_gid_dup', 'prod', [entry()]);
      const before = await catalog.listEntries({ limit: 1 });
      await assert.rejects(catalog.recordCommit('qo_gid_dup', 'prod', [entry({ sql: 'LOST' })]));
      const afterwards = await catalog.listEntries({ limit: 1 });
      assert.equal(afterwards[0]?.id, before[0]?.id);
    });

    test('recordCommit with a decision and no entries records the decision', async () => {
      assert.deepEqual(await catalog.recordCommit('qo_gid_empty', 'prod', []), []);
      assert.equal(await catalog.decisionFor('qo_gid_empty'), 'commit');
    });

    test('recordCommit marks the entry a rollback undoes', async () => {
      const [original] = await catalog.recordCommit('qo_gid_2', 'prod', [entry()]);
      const [undo] = await catalog.recordCommit('qo_gid_3', 'prod', [
        entry({
          kind: 'rollback',
          sql: 'DELETE FROM test1.employees WHERE id = 2',
          rollbackOf: original!,
        }),
      ]);
      assert.equal((await catalog.getEntry(original!))?.rolledBackBy, undo);
      const rollbackEntry = await catalog.getEntry(undo!);
      assert.equal(rollbackEntry?.rollbackOf, original);
      assert.equal(rollbackEntry?.rolledBackBy, null);
    });

    test('recordCommit refuses a second rollback of one entry and records nothing of it', async () => {
      const [original] = await catalog.recordCommit('qo_gid_twice_1', 'prod', [entry()]);
      const undo = (sql: string) => entry({ kind: 'rollback', sql, rollbackOf: original! });
      const [first] = await catalog.recordCommit('qo_gid_twice_2', 'prod', [undo('FIRST')]);
      const before = await catalog.listEntries({ limit: 1 });
      await assert.rejects(
        catalog.recordCommit('qo_gid_twice_3', 'prod', [entry({ sql: 'OTHER' }), undo('SECOND')]),
        (error: unknown) =>
          error instanceof QoError &&
          error.code === 'ROLLBACK_UNAVAILABLE' &&
          error.message === `query ${original} was already rolled back by query ${first}`,
      );
      assert.equal((await catalog.listEntries({ limit: 1 }))[0]?.id, before[0]?.id);
      assert.equal(await catalog.decisionFor('qo_gid_twice_3'), undefined);
      assert.equal((await catalog.getEntry(original!))?.rolledBackBy, first);
    });

    test('recordCommit lets one of many simultaneous rollbacks of an entry commit', async () => {
      const [original] = await catalog.recordCommit('qo_gid_race', 'prod', [entry()]);
      const attempts = await Promise.allSettled(
        Array.from({ length: 10 }, (_, n) =>
          catalog.recordCommit(`qo_gid_race_${n}`, 'prod', [
            entry({ kind: 'rollback', sql: `UNDO ${n}`, rollbackOf: original! }),
          ]),
        ),
      );
      const won = attempts.filter((a) => a.status === 'fulfilled');
      assert.equal(won.length, 1);
      for (const attempt of attempts) {
        if (attempt.status === 'rejected') {
          assert.ok(attempt.reason instanceof QoError);
          assert.equal(attempt.reason.code, 'ROLLBACK_UNAVAILABLE');
        }
      }
      const [winner] = (won[0] as PromiseFulfilledResult<number[]>).value;
      assert.equal((await catalog.getEntry(original!))?.rolledBackBy, winner);
      const undos = await catalog.listEntries({ kind: 'rollback', limit: 1000 });
      assert.equal(undos.filter((undo) => undo.rollbackOf === original).length, 1);
    });

    test('recordCommit marks again an entry whose rollback was itself rolled back', async () => {
      const [original] = await catalog.recordCommit('qo_gid_redo_1', 'prod', [entry()]);
      const [undo] = await catalog.recordCommit('qo_gid_redo_2', 'prod', [
        entry({ kind: 'rollback', rollbackOf: original! }),
      ]);
      await catalog.recordCommit('qo_gid_redo_3', 'prod', [
        entry({ kind: 'rollback', rollbackOf: undo! }),
      ]);
      const [again] = await catalog.recordCommit('qo_gid_redo_4', 'prod', [
        entry({ kind: 'rollback', rollbackOf: original! }),
      ]);
      assert.equal((await catalog.getEntry(original!))?.rolledBackBy, again);
    });

    test('recordCommit writes thousands of entries in input order', async () => {
      const inputs = Array.from({ length: 2500 }, (_, n) => entry({ sql: `INSERT ${n}` }));
      const ids = await catalog.recordCommit('qo_gid_big', 'bulk', inputs);
      assert.equal(ids.length, 2500);
      assert.ok(ids.every((id, n) => n === 0 || id > ids[n - 1]!));
      assert.equal((await catalog.getEntry(ids[2499]!))?.sql, 'INSERT 2499');
      assert.equal(await catalog.decisionFor('qo_gid_big'), 'commit');
    });

    test('an entry reads back exactly as it was written', async () => {
      const input = entry({
        transaction: 'tx-exact',
        params: ['42', null, 'ZGF0YQ=='],
        durationMs: 0.123456789,
        rowCount: 2 ** 40,
        rollback: {
          statements: [
            {
              sql: 'UPDATE test1.employees SET name = $1 WHERE id = $2',
              params: [
                { oid: 1043, type: 'character varying(100)', binary: 'UEVQRQ==', text: "'PEPE'" },
                { oid: 23, type: 'integer', binary: 'AAAAAg==' },
              ],
            },
          ],
          display: "UPDATE test1.employees SET name = 'PEPE' WHERE id = 2",
        },
        reversibility: 'partial',
        reason: 'a trigger fired',
        afterImage: { rows: [{ id: '2', name: 'ALVARO' }], nested: [1, 'two', null, true] },
      });
      const started = Date.now();
      const [id] = await catalog.recordCommit(null, 'prod', [input]);
      const stored = await catalog.getEntry(id!);
      assert.ok(stored);
      const { at, ...rest } = stored;
      assert.ok(at instanceof Date);
      assert.ok(Math.abs(at.getTime() - started) < 60_000);
      assert.deepEqual(rest, { ...input, id: id!, rolledBackBy: null } satisfies Omit<
        AuditEntry,
        'at'
      >);
      assert.equal(await catalog.getEntry(987_654_321), undefined);
    });

    test('recordLater writes many entries in few inserts and resolves every id', async () => {
      const inserts = catalog.batchedInserts;
      const pending = Array.from({ length: 450 }, (_, n) =>
        catalog.recordLater(readEntry({ sql: `SELECT ${n}` })),
      );
      const ids = await Promise.all(pending);
      assert.equal(new Set(ids).size, 450);
      assert.ok(
        ids.every((id, n) => n === 0 || id > ids[n - 1]!),
        'ids follow submission order',
      );
      assert.ok(
        catalog.batchedInserts - inserts <= 3,
        `${catalog.batchedInserts - inserts} inserts`,
      );
      assert.equal((await catalog.getEntry(ids[449]!))?.sql, 'SELECT 449');
    });

    test('characters PostgreSQL cannot store become U+FFFD instead of failing the batch', async () => {
      const odd = readEntry({
        sql: 'SELECT $1\0',
        params: ['a\0b', '\\u0000', 'lone \ud800', 'pair \u{1F600}'],
        outcome: 'failed',
        error: 'invalid byte sequence for encoding "UTF8": 0x00',
      });
      const pending = [
        catalog.recordLater(readEntry({ sql: 'SELECT before' })),
        catalog.recordLater(odd),
        catalog.recordLater(readEntry({ sql: 'SELECT after' })),
      ];
      await catalog.flush();
      const ids = [
        ...(await Promise.all(pending)),
        ...(await catalog.recordCommit(null, 'prod', [odd])),
      ];
      const stored = await Promise.all(ids.map((id) => catalog.getEntry(id)));
      const cleaned = ['SELECT $1\uFFFD', ['a\uFFFDb', '\\u0000', 'lone \uFFFD', 'pair \u{1F600}']];
      assert.deepEqual(
        stored.map((e) => [e?.sql, e?.params]),
        [['SELECT before', null], cleaned, ['SELECT after', null], cleaned],
      );
    });

    test('recordLater writes a lone entry within the batching delay', async () => {
      const started = performance.now();
      const id = await catalog.recordLater(readEntry({ sql: 'SELECT lone' }));
      assert.ok(performance.now() - started < 1000);
      assert.equal((await catalog.getEntry(id))?.sql, 'SELECT lone');
    });

    test('flush and close write every batched entry', async () => {
      const promise = catalog.recordLater(readEntry({ sql: 'SELECT flushed' }));
      await catalog.flush();
      const id = await promise;
      assert.equal((await catalog.getEntry(id))?.sql, 'SELECT flushed');
      const late = catalog.recordLater(readEntry({ sql: 'SELECT at close', cluster: 'closing' }));
      await catalog.close();
      const lateId = await late;
      catalog = await openCatalog(config);
      assert.equal((await catalog.getEntry(lateId))?.sql, 'SELECT at close');
    });

    test('listEntries filters, orders newest first and bounds the limit', async () => {
      const ids = await catalog.recordCommit(null, 'listing', [
        entry({ cluster: 'listing', user: 'bob', transaction: 't1' }),
        entry({ cluster: 'listing', user: 'carol', transaction: 't1', kind: 'ddl' }),
        entry({ cluster: 'listing', user: 'bob', transaction: 't2' }),
      ]);
      const readId = await catalog.recordLater(readEntry({ cluster: 'listing', user: 'bob' }));
      const idsOf = (list: AuditEntry[]) => list.map((e) => e.id);
      assert.deepEqual(idsOf(await catalog.listEntries({ cluster: 'listing' })), [
        readId,
        ...[...ids].reverse(),
      ]);
      assert.deepEqual(
        idsOf(await catalog.listEntries({ cluster: 'listing', user: 'bob', kind: 'write' })),
        [ids[2], ids[0]],
      );
      assert.deepEqual(idsOf(await catalog.listEntries({ transaction: 't1' })), [ids[1], ids[0]]);
      assert.deepEqual(idsOf(await catalog.listEntries({ cluster: 'listing', afterId: ids[1]! })), [
        readId,
        ids[2],
      ]);
      assert.deepEqual(idsOf(await catalog.listEntries({ cluster: 'listing', limit: 2 })), [
        readId,
        ids[2],
      ]);
      assert.equal((await catalog.listEntries({})).length, 100);
      assert.equal((await catalog.listEntries({ limit: 5000 })).length, 1000);
      assert.equal((await catalog.listEntries({ limit: 0 })).length, 1);
      assert.deepEqual(await catalog.listEntries({ cluster: 'nowhere' }), []);
    });

    test('tokens are recorded, listed newest first and revoked by jti', async () => {
      const issuedAt = new Date('2026-01-02T03:04:05.678Z');
      await catalog.recordToken({
        jti: 'jti-1',
        subject: 'alice',
        claims: { sub: 'alice', clusters: { prod: ['read', 'write'] } },
        issuedAt,
        expiresAt: new Date('2026-02-02T00:00:00.000Z'),
      });
      await catalog.recordToken({
        jti: 'jti-2',
        subject: 'bob',
        claims: { sub: 'bob', admin: true },
        issuedAt: new Date(issuedAt.getTime() + 1000),
        expiresAt: null,
      });
      const listed = await catalog.listTokens();
      assert.deepEqual(
        listed.map((t) => t.jti),
        ['jti-2', 'jti-1'],
      );
      assert.deepEqual(listed[1], {
        jti: 'jti-1',
        subject: 'alice',
        claims: { sub: 'alice', clusters: { prod: ['read', 'write'] } },
        issuedAt,
        expiresAt: new Date('2026-02-02T00:00:00.000Z'),
        revokedAt: null,
      });
      assert.equal(await catalog.isRevoked('jti-1'), false);
      assert.equal(await catalog.revokeToken('jti-1'), true);
      assert.equal(await catalog.isRevoked('jti-1'), true);
      const firstRevocation = (await catalog.listTokens())[1]?.revokedAt;
      assert.ok(firstRevocation instanceof Date);
      assert.equal(await catalog.revokeToken('jti-1'), true);
      assert.deepEqual((await catalog.listTokens())[1]?.revokedAt, firstRevocation);
      assert.equal(await catalog.isRevoked('jti-unknown'), false);
      assert.equal(await catalog.revokeToken('jti-unknown'), false);
      assert.equal(await catalog.isRevoked('jti-unknown'), true);
      assert.equal(await catalog.revokeToken('jti-unknown'), false);
      assert.deepEqual(
        (await catalog.listTokens()).map((t) => t.jti),
        ['jti-2', 'jti-1'],
      );
      await assert.rejects(catalog.recordToken({ ...listed[0]!, jti: 'jti-2' }));
    });

    test('saveMetadata replaces the metadata of one cluster only', async () => {
      await catalog.saveMetadata(metadata('alpha', [employees, employeesProjects]));
      await catalog.saveMetadata(metadata('beta', [employees]));
      await catalog.saveMetadata(metadata('alpha', [employeesProjects]));
      const db = catalog.db;
      const tableRows = await db.select().from(tables).where(eq(tables.cluster, 'alpha'));
      assert.deepEqual(
        tableRows.map((t) => [t.schema, t.name, t.primaryKey, t.uniqueKeys, t.serialKey]),
        [['test1', 'employees_projects', ['employee_id', 'project_id'], [], false]],
      );
      const [columnCount] = await db
        .select({ n: count() })
        .from(columns)
        .where(eq(columns.cluster, 'alpha'));
      assert.equal(columnCount?.n, 2);
      const fks = await db.select().from(constraints).where(eq(constraints.cluster, 'alpha'));
      assert.deepEqual(
        fks.map((fk) => [fk.name, fk.columns, fk.referencedTable, fk.onDelete]),
        [['employees_projects_employee_id_fkey', ['employee_id'], 'employees', 'c']],
      );
      const betaTables = await db.select().from(tables).where(eq(tables.cluster, 'beta'));
      assert.deepEqual(
        betaTables.map((t) => t.name),
        ['employees'],
      );
      const schemaRows = await db.select().from(schemas).where(eq(schemas.cluster, 'beta'));
      assert.deepEqual(
        schemaRows.map((s) => s.name),
        ['test1'],
      );
    });

    test('a closed catalog refuses new entries', async () => {
      const closing = await openCatalog(config);
      await closing.close();
      // A dropped promise of a refused entry must not end the process as an unhandled rejection.
      void closing.recordLater(readEntry());
      await assert.rejects(closing.recordLater(readEntry()), (error: unknown) => {
        return error instanceof QoError && error.code === 'CATALOG_FAILURE';
      });
    });
  });
}

describe('opening a PostgreSQL catalog', () => {
  test('a catalog that cannot be reached fails to open without showing its URL', async () => {
    const url = `postgres://qo:secret-password@127.0.0.1:${await closedPort()}/catalog`;
    await assert.rejects(openCatalog({ kind: 'postgres', url }), (error: unknown) => {
      assert.ok(error instanceof QoError);
      assert.equal(error.code, 'CATALOG_FAILURE');
      assert.match(error.message, /ECONNREFUSED/);
      assert.doesNotMatch(error.message, /secret-password/);
      return true;
    });
  });

  test('instances opening a fresh catalog together apply its migrations once', async () => {
    const url = await createDatabase(server!, 'catalog_shared');
    const opened = await Promise.all([1, 2, 3].map(() => openCatalog({ kind: 'postgres', url })));
    try {
      const ids = await Promise.all(
        opened.map((c, n) => c.recordCommit(null, 'prod', [entry({ sql: `by ${n}` })])),
      );
      assert.equal(new Set(ids.flat()).size, 3);
      assert.equal(await appliedMigrations(opened[0]!), 1);
    } finally {
      await Promise.all(opened.map((c) => c.close()));
    }
  });
});

/** Rows in drizzle's migrations table; both drivers answer `execute` with `{ rows }`. */
async function appliedMigrations(catalog: DrizzleCatalog): Promise<number> {
  const result = (await catalog.db.execute(
    sql`SELECT count(*)::int AS n FROM drizzle.qo_catalog_migrations`,
  )) as { rows: { n: number }[] };
  return Number(result.rows[0]?.n);
}
