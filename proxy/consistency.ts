import type {
  ConsistencyOptions,
  ConsistencyReport,
  KeyDifference,
  TableDifference,
} from '../src/cluster/consistency.ts';
import type { ClusterConfig } from '../src/config/types.ts';
import { BackendConnection } from './backend-connection.ts';

/**
 * Text output of values depends on these settings; every backend is read with the same ones,
 * so equal rows hash alike. extra_float_digits 3 prints floats exactly on any server version.
 */
const CHECK_SESSION: Record<string, string> = {
  application_name: 'qo-check',
  default_transaction_read_only: 'on',
  DateStyle: 'ISO, MDY',
  IntervalStyle: 'postgres',
  TimeZone: 'UTC',
  extra_float_digits: '3',
  bytea_output: 'hex',
  standard_conforming_strings: 'on',
  search_path: 'pg_catalog',
};

interface KeyColumn {
  name: string;
  type: string;
  collatable: boolean;
}

interface TableInfo {
  name: string;
  /** Hash of the column names and types, in order. */
  columns: string;
  /** Primary key, or a unique key on NOT NULL columns; empty when the table has neither. */
  key: KeyColumn[];
}

interface Chunk {
  count: number;
  hash: string;
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;

/**
 * Compares the backends of a cluster table by table, without the catalog: each table's rows
 * are hashed in key order, in chunks of key ranges (bounds taken from the first backend), and
 * the chunks that differ are listed row by row when small. Reads run in separate snapshots on
 * each backend, so a chunk that differs is compared once more before it is reported.
 */
export async function checkConsistency(
  cluster: ClusterConfig,
  options: ConsistencyOptions = {},
): Promise<ConsistencyReport> {
  const started = performance.now();
  const chunkRows = options.chunkRows ?? 10_000;
  const names = cluster.backends.map((b) => b.name);
  const report: ConsistencyReport = {
    cluster: cluster.name,
    backends: names,
    status: 'consistent',
    tables: 0,
    differences: [],
    unreachable: [],
    durationMs: 0,
  };
  const opened = await Promise.all(
    cluster.backends.map((config) =>
      BackendConnection.connect(config, CHECK_SESSION).catch((error: Error) => {
        report.unreachable.push({ backend: config.name, error: error.message });
        return undefined;
      }),
    ),
  );
  const backends = opened.filter((b): b is BackendConnection => b !== undefined);
  try {
    if (backends.length < 2) {
      report.status = report.unreachable.length > 0 ? 'incomplete' : 'consistent';
      return report;
    }
    const catalogs = await Promise.all(backends.map(listTables));
    const reference = catalogs[0] as Map<string, TableInfo>;
    const all = new Set(catalogs.flatMap((tables) => [...tables.keys()]));
    report.tables = all.size;
    for (const name of [...all].sort()) {
      const missingOn = backends.filter((_, i) => !catalogs[i]?.has(name)).map((b) => b.name);
      if (missingOn.length > 0) {
        report.differences.push({ table: name, missingOn });
        continue;
      }
      const info = reference.get(name) as TableInfo;
      const columnsDifferOn = backends
        .filter((_, i) => catalogs[i]?.get(name)?.columns !== info.columns)
        .map((b) => b.name);
      if (columnsDifferOn.length > 0) {
        report.differences.push({ table: name, columnsDifferOn });
        continue;
      }
      const difference = await compareTable(backends, info, { ...options, chunkRows });
      if (difference !== undefined) report.differences.push(difference);
    }
    if (report.unreachable.length > 0) report.status = 'incomplete';
    else if (report.differences.length > 0) report.status = 'different';
    return report;
  } finally {
    for (const backend of backends) backend.close();
    report.durationMs = Math.round(performance.now() - started);
  }
}

async function query(backend: BackendConnection, sql: string): Promise<(string | null)[][]> {
  const reply = await backend.simple(sql);
  if (reply.error !== null) throw reply.error;
  return (reply.results.at(-1)?.rows ?? []).map((row) =>
    row.map((value) => (value === null ? null : value.toString('utf8'))),
  );
}

/** Ordinary tables (partitions included) outside the system schemas, with their best key. */
async function listTables(backend: BackendConnection): Promise<Map<string, TableInfo>> {
  const rows = await query(
    backend,
    `SELECT format('%I.%I', n.nspname, c.relname),
       (SELECT md5(string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod), ',' ORDER BY a.attnum))
          FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
       i.indisprimary,
       (SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                 'collatable', a.attcollation <> 0, 'notnull', a.attnotnull) ORDER BY k.ord)
          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
          WHERE k.ord <= i.indnkeyatts)
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisunique AND i.indisvalid
       AND i.indpred IS NULL AND i.indexprs IS NULL
     WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
     ORDER BY 1, i.indisprimary DESC NULLS LAST, i.indnatts, i.indexrelid`,
  );
  const tables = new Map<string, TableInfo>();
  for (const [name, columns, , keyJson] of rows) {
    if (name === null || name === undefined) continue;
    const key = JSON.parse(keyJson ?? 'null') as (KeyColumn & { notnull: boolean })[] | null;
    const usable = key !== null && key.length > 0 && key.every((column) => column.notnull);
    const known = tables.get(name);
    if (known === undefined) tables.set(name, { name, columns: columns ?? '', key: [] });
    if (usable && (known === undefined || known.key.length === 0)) {
      (tables.get(name) as TableInfo).key = key.map(({ name, type, collatable }) => ({
        name,
        type,
        collatable,
      }));
    }
  }
  return tables;
}

/** SQL pieces to address a table's rows in key order. */
function shape(info: TableInfo) {
  const keyed = info.key.length > 0;
  const order = keyed
    ? info.key.map((k) => `qo_row.${ident(k.name)}${k.collatable ? ' COLLATE "C"' : ''}`)
    : ['md5(ROW(qo_row.*)::text)'];
  const tuple = `ROW(${order.join(', ')})`;
  const bound = (values: string[]) =>
    `ROW(${values.map((v, i) => `${literal(v)}::${info.key[i]?.type}`).join(', ')})`;
  return {
    keyed,
    from: `${info.name} AS qo_row`,
    order: order.join(', '),
    keyText: info.key.map((k) => `qo_row.${ident(k.name)}::text`).join(', '),
    /** The chunk after `low` (exclusive) up to `high` (inclusive); undefined means open. */
    range: (low: string[] | undefined, high: string[] | undefined) => {
      const parts: string[] = [];
      if (low !== undefined) parts.push(`${tuple} > ${bound(low)}`);
      if (high !== undefined) parts.push(`${tuple} <= ${bound(high)}`);
      return parts.length === 0 ? 'true' : parts.join(' AND ');
    },
  };
}

async function compareTable(
  backends: readonly BackendConnection[],
  info: TableInfo,
  options: ConsistencyOptions & { chunkRows: number },
): Promise<TableDifference | undefined> {
  const sql = shape(info);
  // Chunk bounds: every chunkRows-th key of the first backend, in key order.
  const bounds = sql.keyed
    ? await query(
        backends[0] as BackendConnection,
        `SELECT ${sql.keyText} FROM (SELECT qo_row.*, row_number() OVER (ORDER BY ${sql.order}) AS qo_n FROM ${sql.from}) AS qo_row
         WHERE qo_n % ${options.chunkRows} = 0 ORDER BY qo_n`,
      )
    : [];
  const edges = bounds.map((row) => row.map((value) => value ?? ''));
  const ranges = Array.from({ length: edges.length + 1 }, (_, i) =>
    sql.range(edges[i - 1], edges[i]),
  );
  const hashAll = (range: string) =>
    Promise.all(
      backends.map(async (backend): Promise<Chunk> => {
        const [row] = await query(
          backend,
          `SELECT count(*), md5(string_agg(md5(ROW(qo_row.*)::text), '' ORDER BY ${sql.order})) FROM ${sql.from} WHERE ${range}`,
        );
        return { count: Number(row?.[0] ?? 0), hash: row?.[1] ?? '' };
      }),
    );
  const rows: Record<string, number> = Object.fromEntries(backends.map((b) => [b.name, 0]));
  const differing: { range: string; chunks: Chunk[] }[] = [];
  for (const range of ranges) {
    let chunks = await hashAll(range);
    // A commit may reach one backend a moment before the other: look twice before reporting.
    if (!alike(chunks)) chunks = await hashAll(range);
    chunks.forEach((chunk, i) => {
      rows[backends[i]?.name ?? '?'] = (rows[backends[i]?.name ?? '?'] ?? 0) + chunk.count;
    });
    if (!alike(chunks)) differing.push({ range, chunks });
  }
  if (differing.length === 0) return undefined;
  const difference: TableDifference = {
    table: info.name,
    rows,
    chunks: { differing: differing.length, total: ranges.length },
  };
  if (!sql.keyed) {
    difference.note = 'the table has no primary key or non-null unique key: rows cannot be named';
    return difference;
  }
  const keyRows = options.keyRows ?? 1_000;
  const maxKeys = options.maxKeys ?? 100;
  const keys: KeyDifference[] = [];
  for (const { range, chunks } of differing) {
    if (chunks.some((chunk) => chunk.count > keyRows) || keys.length >= maxKeys) {
      difference.keysOmitted = true;
      continue;
    }
    keys.push(...(await differingKeys(backends, info, range)));
  }
  if (keys.length > maxKeys) difference.keysOmitted = true;
  difference.keys = keys.slice(0, maxKeys);
  return difference;
}

function alike(chunks: readonly Chunk[]): boolean {
  const first = chunks[0];
  return chunks.every((chunk) => chunk.count === first?.count && chunk.hash === first.hash);
}

/** Row by row within one key range: keys missing somewhere or whose rows differ. */
async function differingKeys(
  backends: readonly BackendConnection[],
  info: TableInfo,
  range: string,
): Promise<KeyDifference[]> {
  const sql = shape(info);
  const width = info.key.length;
  const listed = await Promise.all(
    backends.map(async (backend) => {
      const rows = await query(
        backend,
        `SELECT ${sql.keyText}, md5(ROW(qo_row.*)::text) FROM ${sql.from} WHERE ${range} ORDER BY ${sql.order}`,
      );
      return new Map(rows.map((row) => [JSON.stringify(row.slice(0, width)), row[width] ?? '']));
    }),
  );
  const keys = new Set(listed.flatMap((map) => [...map.keys()]));
  const found: KeyDifference[] = [];
  for (const key of keys) {
    const hashes = listed.map((map) => map.get(key));
    const reference = hashes.find((hash) => hash !== undefined);
    const missingOn = backends.filter((_, i) => hashes[i] === undefined).map((b) => b.name);
    const differsOn = backends
      .filter((_, i) => hashes[i] !== undefined && hashes[i] !== reference)
      .map((b) => b.name);
    if (missingOn.length === 0 && differsOn.length === 0) continue;
    const values = JSON.parse(key) as string[];
    found.push({
      key: Object.fromEntries(info.key.map((column, i) => [column.name, values[i] ?? ''])),
      missingOn,
      differsOn,
    });
  }
  return found;
}
