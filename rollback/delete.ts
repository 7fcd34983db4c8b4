import type { DeleteStmt, Node } from 'libpg-query';
import type { TableMeta } from '../src/cluster/metadata.ts';
import {
  clientReturns,
  columnTargets,
  deparse,
  hasModifyingCte,
  visibleName,
  withHiddenReturning,
} from './ast.ts';
import {
  type CascadePlan,
  cascadeAfterImages,
  cascades,
  planCascade,
  RowsByTable,
  restoreSetRows,
  setColumnsOf,
  storedColumns,
} from './cascade.ts';
import { captured, safeBuild, tooLarge } from './outcome.ts';
import {
  cascadeReason,
  chooseKey,
  columnTypes,
  isNoCapture,
  modifyingCte,
  noKey,
  type ResolveTable,
  resolveTarget,
  sideEffectReasons,
} from './table.ts';
import {
  chunk,
  columnList,
  rollbackOf,
  rowsPerStatement,
  tableName,
  UndoBuilder,
} from './template.ts';
import type { CapturedRow, CapturePlan, NoCapture } from './types.ts';
import { afterImageRows, hiddenPart, tupleKey } from './values.ts';

/**
 * DELETE: every stored column of each deleted row comes back as hidden RETURNING columns (of the
 * target only, also with USING); the undo inserts the rows again with their original keys.
 * `WHERE CURRENT OF` works too, since RETURNING needs no second read.
 */
export function planDelete(
  stmt: DeleteStmt,
  resolve: ResolveTable,
  options: { maxRows: number },
): CapturePlan | NoCapture {
  if (hasModifyingCte(stmt.withClause)) {
    return modifyingCte();
  }
  const table = resolveTarget(stmt.relation, resolve);
  if (isNoCapture(table)) return table;
  const key = chooseKey(table);
  if (key === undefined) return noKey(table);

  // Generated columns are computed again by the INSERT that restores the row.
  const columns = storedColumns(table);
  const relation = stmt.relation!;
  const hidden = columnTargets(visibleName(relation), columns);
  const rewritten: Node = {
    DeleteStmt: { ...stmt, returningClause: withHiddenReturning(stmt.returningClause, hidden) },
  };
  const partial = sideEffectReasons(table);
  let cascade: CascadePlan = { before: [], reads: [], partial: [] };
  if (cascades(table)) {
    if (stmt.whereClause !== undefined && 'CurrentOfExpr' in stmt.whereClause) {
      // NOTE: a DELETE ... WHERE CURRENT OF that cascades is not captured beyond its own rows;
      // the rows it matches cannot be read before the change through the cursor.
      partial.push(cascadeReason(table, 'delete')!);
    } else {
      const base: Node = {
        SelectStmt: {
          targetList: columnTargets(visibleName(relation), setColumnsOf(table, key)),
          fromClause: [{ RangeVar: relation }, ...(stmt.usingClause ?? [])],
          whereClause: stmt.whereClause,
          withClause: stmt.withClause,
          op: 'SETOP_NONE',
        },
      };
      cascade = planCascade(table, key, deparse(base), resolve, options.maxRows);
      partial.push(...cascade.partial);
      for (const read of cascade.reads) {
        if (read.table !== table) partial.push(...sideEffectReasons(read.table));
      }
    }
  }

  return {
    before: cascade.before,
    statement: deparse(rewritten),
    hiddenColumns: columns.length,
    clientReturns: clientReturns(stmt.returningClause),
    build: safeBuild(({ before, returned }) => {
      const rows = returned.map((row) => hiddenPart(row, columns.length));
      if (rows.length > options.maxRows) return tooLarge(rows.length, options.maxRows);
      if (cascade.reads.length === 0) {
        const keyAt = key.map((k) => columns.indexOf(k));
        const keys = rows.map((row) => keyAt.map((i) => row[i]!));
        return captured(
          rollbackOf(insertRows(table, columns, parentsFirst(table, columns, rows))),
          partial,
          {
            schema: table.schema,
            table: table.name,
            state: 'absent',
            key,
            columns: key,
            oids: keys[0]?.map((v) => v.oid) ?? [],
            rows: afterImageRows(keys),
          },
        );
      }
      const all = new RowsByTable();
      all.add({ table, effect: 'delete', key, columns, setColumns: [], action: 'c' }, rows);
      cascade.reads.forEach((read, i) => {
        all.add(read, before[i] ?? []);
      });
      if (all.count() > options.maxRows) return tooLarge(all.count(), options.maxRows);
      const built = all
        .parentsFirst()
        .flatMap(({ read, rows: restored }) =>
          insertRows(read.table, read.columns, parentsFirst(read.table, read.columns, restored)),
        );
      for (const { read, rows: changed } of all.setRows()) {
        built.push(...restoreSetRows(read, changed));
      }
      return captured(rollbackOf(built), partial, cascadeAfterImages(all));
    }),
  };
}

/** `INSERT INTO t (c1, ...) [OVERRIDING SYSTEM VALUE] VALUES (...), ...`, in chunks. */
export function insertRows(table: TableMeta, columns: string[], rows: readonly CapturedRow[]) {
  const types = columnTypes(table, columns);
  // OVERRIDING SYSTEM VALUE lets the original value into a GENERATED ALWAYS identity column.
  const overriding = table.columns.some((c) => c.identity !== '') ? ' OVERRIDING SYSTEM VALUE' : '';
  const head = `INSERT INTO ${tableName(table)} (${columnList(columns)})${overriding} VALUES `;
  return chunk(rows, rowsPerStatement(columns.length)).map((part) => {
    const b = new UndoBuilder().text(head);
    part.forEach((row, i) => {
      b.text(i === 0 ? '(' : ', (')
        .values(row, types)
        .text(')');
    });
    return b.finish();
  });
}

/**
 * Orders rows so that a row referenced through a foreign key of the table to itself (an
 * employee's manager) comes before the rows referencing it, so that restoring in chunks
 * never inserts a child before its parent. Within one statement order does not matter:
 * foreign keys are checked at the end of each statement.
 */
export function parentsFirst(
  table: TableMeta,
  columns: readonly string[],
  rows: readonly CapturedRow[],
): CapturedRow[] {
  const selfKeys = table.foreignKeys
    .filter((fk) => fk.referencedSchema === table.schema && fk.referencedTable === table.name)
    .map((fk) => ({
      from: fk.columns.map((c) => columns.indexOf(c)),
      to: fk.referencedColumns.map((c) => columns.indexOf(c)),
    }))
    .filter((fk) => [...fk.from, ...fk.to].every((i) => i >= 0));
  if (selfKeys.length === 0 || rows.length < 2) return [...rows];

  const parents: number[][] = rows.map(() => []);
  for (const fk of selfKeys) {
    const byReferenced = new Map<string, number>();
    rows.forEach((row, i) => {
      byReferenced.set(tupleKey(fk.to.map((c) => row[c]!)), i);
    });
    rows.forEach((row, i) => {
      const values = fk.from.map((c) => row[c]!);
      if (values.some((v) => v.value === null)) return;
      const parent = byReferenced.get(tupleKey(values));
      if (parent !== undefined && parent !== i) parents[i]!.push(parent);
    });
  }
  // Depth-first, parents emitted before children; iterative so long chains cannot overflow.
  const state = new Uint8Array(rows.length);
  const order: CapturedRow[] = [];
  for (let start = 0; start < rows.length; start++) {
    const stack = [start];
    while (stack.length > 0) {
      const i = stack[stack.length - 1]!;
      if (state[i] === 0) {
        state[i] = 1;
        for (const p of parents[i]!) if (state[p] === 0) stack.push(p);
      } else {
        stack.pop();
        if (state[i] === 1) {
          state[i] = 2;
          order.push(rows[i]!);
        }
      }
    }
  }
  return order;
}
