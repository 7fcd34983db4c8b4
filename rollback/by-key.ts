import type { TableMeta } from '../src/cluster/metadata.ts';
import { columnTypes } from './table.ts';
import {
  chunk,
  columnList,
  matchKey,
  quoteIdent,
  rowsPerStatement,
  tableName,
  UndoBuilder,
} from './template.ts';
import type { CapturedRow } from './types.ts';

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
