import type { TableMeta } from '../src/cluster/metadata.ts';
import { captured, tooLarge } from './outcome.ts';
import { columnTypes, sideEffectReasons } from './table.ts';
import {
  chunk,
  columnList,
  matchKey,
  quoteIdent,
  rollbackOf,
  rowsPerStatement,
  tableName,
  UndoBuilder,
} from './template.ts';
import type { CapturedRow, CaptureOutcome } from './types.ts';
import { afterImageRows } from './values.ts';

/**
 * `DELETE FROM t WHERE k = $1` for one row, `k IN (...)` for several, `(k1, k2) IN ((...), ...)`
 * for a composite key; in chunks that keep each statement within the parameter limit.
 */
export function deleteByKeys(table: TableMeta, key: string[], keys: readonly CapturedRow[]) {
  const types = columnTypes(table, key);
  return chunk(keys, rowsPerStatement(key.length)).map((rows) => {
    const b = new UndoBuilder().text(`DELETE FROM ${tableName(table)} WHERE `);
    if (rows.length === 1) {
      matchKey(b, key, rows[0]!, types);
    } else if (key.length === 1) {
      const values = rows.map((r) => r[0]!);
      const type = types[0]!;
      b.text(`${quoteIdent(key[0]!)} IN (`);
      b.values(
        values,
        values.map(() => type),
      ).text(')');
    } else {
      b.text(`(${columnList(key)}) IN (`);
      rows.forEach((row, i) => {
        b.text(i === 0 ? '(' : ', (');
        b.values(row, types).text(')');
      });
      b.text(')');
    }
    return b.finish();
  });
}

/**
 * The outcome for rows a statement inserted (whole rows, every column of the table in order):
 * the undo deletes them by key, and they are the after-image.
 */
export function insertedRows(
  table: TableMeta,
  key: string[],
  columns: string[],
  rows: readonly CapturedRow[],
  maxRows: number,
): CaptureOutcome {
  if (rows.length > maxRows) return tooLarge(rows.length, maxRows);
  const keyAt = key.map((k) => columns.indexOf(k));
  const keys = rows.map((row) => keyAt.map((i) => row[i]!));
  return captured(rollbackOf(deleteByKeys(table, key, keys)), sideEffectReasons(table), {
    schema: table.schema,
    table: table.name,
    state: 'present',
    key,
    columns,
    oids: rows[0]?.map((v) => v.oid) ?? table.columns.map((c) => c.typeOid),
    rows: afterImageRows(rows),
  });
}
