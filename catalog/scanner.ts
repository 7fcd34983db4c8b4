/**
 * Reads what the proxy needs to know of a cluster's tables from a backend's pg_catalog:
 * columns, keys, foreign keys in both directions, triggers and rules. Runs at start and after
 * DDL passes through the proxy.
 */
import pg from 'pg';
import {
  type ClusterMetadata,
  type ColumnMeta,
  type ForeignKeyAction,
  type ForeignKeyMeta,
  type TableMeta,
  tableKey,
} from '../src/cluster/metadata.ts';
import type { BackendConfig } from '../src/config/types.ts';
import { QoError } from '../src/errors.ts';
import {
  type ColumnRow,
  type ForeignKeyRow,
  type KeyRow,
  type RelationRow,
  SCAN_SQL,
} from './scanner-sql.ts';

const CONNECT_TIMEOUT_MS = 5_000;
const STATEMENT_TIMEOUT_MS = 30_000;

/** Scans one backend over a short-lived connection. Unreachable: QoError BACKEND_UNAVAILABLE. */
export async function scanBackend(backend: BackendConfig): Promise<TableMeta[]> {
  const client = new pg.Client({
    host: backend.host,
    port: backend.port,
    user: backend.user,
    password: backend.password,
    database: backend.database,
    application_name: 'qo-scanner',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
  });
  // A connection dropped between queries is reported through the pending query; without a
  // listener the 'error' event would end the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (cause) {
    await client.end().catch(() => {});
    throw new QoError(
      'BACKEND_UNAVAILABLE',
      `backend ${backend.name} is unreachable: ${text(cause)}`,
      {
        cause,
      },
    );
  }
  try {
    const results = (await client.query(SCAN_SQL)) as unknown as pg.QueryResult[];
    // results[0] is BEGIN and results[5] COMMIT.
    return buildTables(
      rowsOf<RelationRow>(results[1]),
      rowsOf<ColumnRow>(results[2]),
      rowsOf<KeyRow>(results[3]),
      rowsOf<ForeignKeyRow>(results[4]),
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** Scans the first backend that answers: the backends of a cluster hold the same schema. */
export async function scanCluster(backends: BackendConfig[]): Promise<TableMeta[]> {
  const failures: string[] = [];
  for (const backend of backends) {
    try {
      return await scanBackend(backend);
    } catch (error) {
      if (!(error instanceof QoError && error.code === 'BACKEND_UNAVAILABLE')) throw error;
      failures.push(error.message);
    }
  }
  throw new QoError(
    'BACKEND_UNAVAILABLE',
    backends.length === 0
      ? 'the cluster has no backend to scan'
      : `no backend could be scanned: ${failures.join('; ')}`,
  );
}

/** The metadata map the proxy and the catalog use, keyed by `schema.table`. */
export function toClusterMetadata(
  cluster: string,
  tables: TableMeta[],
  scannedAt = new Date(),
): ClusterMetadata {
  return {
    cluster,
    tables: new Map(tables.map((t) => [tableKey(t.schema, t.name), t])),
    scannedAt,
  };
}

function buildTables(
  relations: RelationRow[],
  columns: ColumnRow[],
  keys: KeyRow[],
  foreignKeys: ForeignKeyRow[],
): TableMeta[] {
  const byOid = new Map<number, TableMeta>();
  for (const rel of relations) {
    byOid.set(rel.oid, {
      schema: rel.schema,
      name: rel.name,
      kind: rel.kind,
      columns: [],
      primaryKey: [],
      uniqueKeys: [],
      serialKey: false,
      foreignKeys: [],
      referencedBy: [],
      triggers: rel.triggers,
      hasRules: rel.has_rules,
    });
  }
  for (const row of columns) byOid.get(row.rel)?.columns.push(toColumn(row));
  for (const key of keys) {
    const table = byOid.get(key.rel);
    if (table === undefined) continue;
    if (key.primary) table.primaryKey = key.columns;
    else if (key.not_null && !hasKey(table.uniqueKeys, key.columns)) {
      table.uniqueKeys.push(key.columns);
    }
  }
  for (const row of foreignKeys) {
    const fk = toForeignKey(row);
    byOid.get(row.rel)?.foreignKeys.push(fk);
    byOid.get(row.referenced_rel)?.referencedBy.push(fk);
  }
  for (const table of byOid.values()) table.serialKey = isSerialKey(table);
  return [...byOid.values()];
}

function toColumn(row: ColumnRow): ColumnMeta {
  const generated = row.generated !== '';
  return {
    name: row.name,
    type: row.type,
    typeOid: Number(row.type_oid),
    notNull: row.not_null,
    // pg_attrdef holds a generated column's expression, which is not a default.
    default: generated ? null : row.default,
    identity: row.identity,
    generated,
  };
}

function toForeignKey(row: ForeignKeyRow): ForeignKeyMeta {
  return {
    name: row.name,
    schema: row.schema,
    table: row.table,
    columns: row.columns,
    referencedSchema: row.referenced_schema,
    referencedTable: row.referenced_table,
    referencedColumns: row.referenced_columns,
    onDelete: row.on_delete as ForeignKeyAction,
    onUpdate: row.on_update as ForeignKeyAction,
  };
}

/** A single-column key filled by an identity or a sequence default (serial, bigserial). */
function isSerialKey(table: TableMeta): boolean {
  if (table.primaryKey.length !== 1) return false;
  const column = table.columns.find((c) => c.name === table.primaryKey[0]);
  if (column === undefined) return false;
  return column.identity !== '' || /^nextval\(/i.test(column.default ?? '');
}

function hasKey(keys: string[][], columns: string[]): boolean {
  return keys.some((k) => k.length === columns.length && k.every((c, i) => c === columns[i]));
}

function rowsOf<T>(result: pg.QueryResult | undefined): T[] {
  if (result === undefined)
    throw new QoError('CATALOG_FAILURE', 'metadata scan returned too few results');
  return result.rows as T[];
}

function text(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
