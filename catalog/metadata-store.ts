/** Stores the scanned metadata of a cluster in the catalog's metadata tables. */
import { eq } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import type { ClusterMetadata } from '../src/cluster/metadata.ts';
import type { CatalogDb } from './connect.ts';
import { clusters, columns, constraints, schemas, tables } from './schema.ts';

/** Rows per INSERT, far below the 65535 bind parameters of one statement. */
const ROWS_PER_STATEMENT = 2000;

/**
 * Replaces the metadata rows of one cluster in one transaction. The upsert of the cluster row
 * comes first: it locks that row, so two proxy instances saving the same cluster at once run
 * one after the other instead of colliding on the unique keys.
 */
export async function saveMetadata(db: CatalogDb, metadata: ClusterMetadata): Promise<void> {
  const cluster = metadata.cluster;
  const all = [...metadata.tables.values()];
  const schemaRows = [...new Set(all.map((table) => table.schema))].map((name) => ({
    cluster,
    name,
  }));
  const tableRows = all.map((table) => ({
    cluster,
    schema: table.schema,
    name: table.name,
    kind: table.kind,
    primaryKey: table.primaryKey,
    serialKey: table.serialKey,
    uniqueKeys: table.uniqueKeys,
    triggers: table.triggers,
    hasRules: table.hasRules,
  }));
  const columnRows = all.flatMap((table) =>
    table.columns.map((column, index) => ({
      cluster,
      schema: table.schema,
      table: table.name,
      position: index + 1,
      name: column.name,
      type: column.type,
      typeOid: column.typeOid,
      notNull: column.notNull,
      default: column.default,
      identity: column.identity,
      generated: column.generated,
    })),
  );
  // Each foreign key is stored once, with the table that declares it.
  const constraintRows = all.flatMap((table) =>
    table.foreignKeys.map((fk) => ({ cluster, ...fk })),
  );

  await db.transaction(async (tx) => {
    await tx
      .insert(clusters)
      .values({ name: cluster, scannedAt: metadata.scannedAt })
      .onConflictDoUpdate({ target: clusters.name, set: { scannedAt: metadata.scannedAt } });
    await tx.delete(constraints).where(eq(constraints.cluster, cluster));
    await tx.delete(columns).where(eq(columns.cluster, cluster));
    await tx.delete(tables).where(eq(tables.cluster, cluster));
    await tx.delete(schemas).where(eq(schemas.cluster, cluster));
    await insertAll(tx, schemas, schemaRows);
    await insertAll(tx, tables, tableRows);
    await insertAll(tx, columns, columnRows);
    await insertAll(tx, constraints, constraintRows);
  });
}

async function insertAll<T extends PgTable>(
  db: CatalogDb,
  table: T,
  rows: T['$inferInsert'][],
): Promise<void> {
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    await db.insert(table).values(rows.slice(i, i + ROWS_PER_STATEMENT));
  }
}
