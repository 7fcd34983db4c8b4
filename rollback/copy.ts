import type { CopyStmt } from 'libpg-query';
import { deleteByKeys } from './by-key.ts';
import { captured, safeBuild, tooLarge } from './outcome.ts';
import {
  chooseKey,
  irreversible,
  isNoCapture,
  noKey,
  type ResolveTable,
  resolveTarget,
  sideEffectReasons,
} from './table.ts';
import { columnList, rollbackOf, tableName } from './template.ts';
import type { CapturedRow, CaptureOutcome, NoCapture } from './types.ts';
import { afterImageRows } from './values.ts';

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
  const build = safeBuild(({ returned }) => {
    if (returned.length > options.maxRows) return tooLarge(returned.length, options.maxRows);
    const keyAt = key.map((k) => columns.indexOf(k));
    const keys = returned.map((row) => keyAt.map((i) => row[i]!));
    return captured(rollbackOf(deleteByKeys(table, key, keys)), sideEffectReasons(table), {
      schema: table.schema,
      table: table.name,
      state: 'present',
      key,
      columns,
      oids: returned[0]?.map((v) => v.oid) ?? table.columns.map((c) => c.typeOid),
      rows: afterImageRows(returned),
    });
  });
  return { after, build: (rows) => build({ before: [], returned: rows }) };
}
