import type { CopyStmt } from 'libpg-query';
import { insertedRows } from './by-key.ts';
import { safeBuild } from './outcome.ts';
import {
  chooseKey,
  irreversible,
  isNoCapture,
  noKey,
  type ResolveTable,
  resolveTarget,
} from './table.ts';
import { columnList, tableName } from './template.ts';
import type { CapturedRow, CaptureOutcome, NoCapture } from './types.ts';

/** How to capture a COPY FROM once its rows are in: read them back, then build the undo. */
export interface CopyCapture {
  /** Run after the COPY, in its transaction, on every backend; returns the copied rows (binary). */
  after: string;
  build(rows: CapturedRow[]): CaptureOutcome;
}

/**
 * COPY ... FROM STDIN has no RETURNING. Its rows are the ones whose xmin is the current
 * transaction's id, provided nothing else in the transaction wrote that table before (the
 * caller checks): COPY only inserts. The undo deletes them by key, like an INSERT's.
 */
export function planCopy(
  stmt: CopyStmt,
  resolve: ResolveTable,
  options: { maxRows: number },
): CopyCapture | NoCapture {
  if (stmt.query !== undefined) return irreversible('COPY from a query changes no table');
  const table = resolveTarget(stmt.relation, resolve);
  if (isNoCapture(table)) return table;
  const key = chooseKey(table);
  if (key === undefined) return noKey(table);
  const columns = table.columns.map((c) => c.name);
  // xid8 modulo 2^32 is the 32-bit xid that xmin holds.
  const after =
    `SELECT ${columnList(columns)} FROM ${tableName(table)} ` +
    `WHERE xmin::text::bigint = pg_catalog.pg_current_xact_id()::text::bigint % 4294967296`;
  const build = safeBuild(({ returned }) =>
    insertedRows(table, key, columns, returned, options.maxRows),
  );
  return { after, build: (rows) => build({ before: [], returned: rows }) };
}
