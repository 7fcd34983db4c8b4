import type { InsertStmt, Node } from 'libpg-query';
import {
  clientReturns,
  columnTargets,
  deparse,
  hasModifyingCte,
  visibleName,
  withHiddenReturning,
} from './ast.ts';
import { insertedRows } from './by-key.ts';
import { safeBuild } from './outcome.ts';
import {
  chooseKey,
  isNoCapture,
  modifyingCte,
  noKey,
  type ResolveTable,
  resolveTarget,
} from './table.ts';
import type { CapturePlan, NoCapture } from './types.ts';
import { planUpsert } from './upsert.ts';
import { hiddenPart } from './values.ts';

/**
 * INSERT: every column of each inserted row comes back as hidden RETURNING columns; the undo
 * deletes the inserted rows by key, and the whole rows are the after-image.
 */
export function planInsert(
  stmt: InsertStmt,
  resolve: ResolveTable,
  options: { maxRows: number },
): CapturePlan | NoCapture {
  // ON CONFLICT DO NOTHING needs nothing more: RETURNING lists only the rows it inserted.
  const select = (stmt.selectStmt as { SelectStmt?: { withClause?: InsertStmt['withClause'] } })
    ?.SelectStmt;
  if (hasModifyingCte(stmt.withClause) || hasModifyingCte(select?.withClause)) {
    return modifyingCte();
  }
  const table = resolveTarget(stmt.relation, resolve);
  if (isNoCapture(table)) return table;
  const key = chooseKey(table);
  if (key === undefined) return noKey(table);
  if (stmt.onConflictClause?.action === 'ONCONFLICT_UPDATE')
    return planUpsert(stmt, table, options);

  const columns = table.columns.map((c) => c.name);
  const hidden = columnTargets(visibleName(stmt.relation!), columns);
  const rewritten: Node = {
    InsertStmt: { ...stmt, returningClause: withHiddenReturning(stmt.returningClause, hidden) },
  };
  return {
    before: [],
    statement: deparse(rewritten),
    hiddenColumns: columns.length,
    clientReturns: clientReturns(stmt.returningClause),
    build: safeBuild(({ returned }) =>
      insertedRows(
        table,
        key,
        columns,
        returned.map((row) => hiddenPart(row, columns.length)),
        options.maxRows,
      ),
    ),
  };
}
