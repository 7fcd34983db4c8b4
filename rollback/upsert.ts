import type { InsertStmt, Node, ResTarget } from 'libpg-query';
import type { TableMeta } from '../src/cluster/metadata.ts';
import {
  clientReturns,
  columnRef,
  columnTargets,
  deparse,
  targetOf,
  visibleName,
  withHiddenReturning,
} from './ast.ts';
import { deleteByKeys } from './by-key.ts';
import { CONCURRENT_CHANGE, captured, failed, safeBuild, tooLarge } from './outcome.ts';
import { chooseKey, columnTypes, irreversible, sideEffectReasons } from './table.ts';
import {
  columnList,
  matchKey,
  quoteIdent,
  rollbackOf,
  tableName,
  UndoBuilder,
} from './template.ts';
import type { CapturedRow, CapturePlan, NoCapture } from './types.ts';
import { afterImageRows, hiddenPart, sameValue, tupleKey } from './values.ts';

/**
 * INSERT ... ON CONFLICT (cols) DO UPDATE: a locking read, before the statement, of the rows
 * whose conflict columns match a proposed row gives the before-images; RETURNING gives every
 * column of each row written plus `xmax = 0`, true for a row inserted (a row updated through
 * ON CONFLICT carries the locking transaction in xmax). The undo deletes the inserted rows and
 * sets back the columns DO UPDATE set on the updated ones.
 */
export function planUpsert(
  stmt: InsertStmt,
  table: TableMeta,
  options: { maxRows: number },
): CapturePlan | NoCapture {
  const conflict = stmt.onConflictClause!;
  const why = 'INSERT ... ON CONFLICT DO UPDATE is not captured';
  const target: string[] = [];
  for (const elem of conflict.infer?.indexElems ?? []) {
    const name = (elem as { IndexElem?: { name?: string } }).IndexElem?.name;
    if (name === undefined) return irreversible(`${why} when the conflict target is an expression`);
    target.push(name);
  }
  if (target.length === 0) {
    // NOTE: ON CONFLICT ON CONSTRAINT is not captured; the metadata has no constraint names.
    return irreversible(`${why} with ON CONFLICT ON CONSTRAINT`);
  }
  const setColumns = [
    ...new Set(
      (conflict.targetList ?? []).map((t) => (t as { ResTarget: ResTarget }).ResTarget.name!),
    ),
  ];
  for (const name of setColumns) {
    const column = table.columns.find((c) => c.name === name);
    if (column === undefined) {
      return irreversible(
        `column ${quoteIdent(name)} is not in the metadata of ${tableName(table)}`,
      );
    }
    if (column.identity === 'a') {
      return irreversible(`${why} when DO UPDATE sets identity column ${quoteIdent(name)}`);
    }
  }
  const key = chooseKey(table, new Set(setColumns));
  if (key === undefined) {
    return irreversible(`${why} when DO UPDATE sets every key column of ${tableName(table)}`);
  }
  const proposed = proposedConflictValues(stmt, table, target);
  if (typeof proposed !== 'string') return irreversible(`${why} ${proposed.why}`);

  const columns = table.columns.map((c) => c.name);
  const qualifier = visibleName(stmt.relation!);
  const inserted: Node = {
    A_Expr: {
      kind: 'AEXPR_OP',
      name: [{ String: { sval: '=' } }],
      lexpr: columnRef(qualifier, 'xmax'),
      rexpr: { A_Const: { ival: {} } },
    },
  };
  const hidden = [...columnTargets(qualifier, columns), targetOf(inserted)];
  const rewritten: Node = {
    InsertStmt: { ...stmt, returningClause: withHiddenReturning(stmt.returningClause, hidden) },
  };
  const read = [...new Set([...key, ...setColumns])];
  const matches = target.map((c) => `qo_row.${quoteIdent(c)}`).join(', ');
  const before =
    `SELECT ${read.map((c) => `qo_row.${quoteIdent(c)}`).join(', ')} ` +
    `FROM ${tableName(table)} AS qo_row WHERE (${matches}) IN (${proposed}) ` +
    `LIMIT ${options.maxRows + 1} FOR UPDATE OF qo_row`;
  const partial = sideEffectReasons(table);

  return {
    before: [before],
    statement: deparse(rewritten),
    hiddenColumns: hidden.length,
    clientReturns: clientReturns(stmt.returningClause),
    build: safeBuild(({ before: beforeRows, returned }) => {
      const old = beforeRows[0] ?? [];
      const rows = returned.map((row) => hiddenPart(row, hidden.length));
      if (rows.length > options.maxRows || old.length > options.maxRows) {
        return tooLarge(Math.max(rows.length, old.length), options.maxRows);
      }
      const oldByKey = new Map(old.map((row) => [tupleKey(row.slice(0, key.length)), row]));
      const keyAt = key.map((k) => columns.indexOf(k));
      const readAt = read.map((c) => columns.indexOf(c));
      const added: CapturedRow[] = [];
      const changed: { now: CapturedRow; before: CapturedRow }[] = [];
      for (const row of rows) {
        const flag = row[columns.length]?.value;
        const values = row.slice(0, columns.length);
        if (flag !== null && flag !== undefined && flag[0] === 1) {
          added.push(values);
          continue;
        }
        const previous = oldByKey.get(tupleKey(keyAt.map((i) => values[i]!)));
        if (previous === undefined) {
          return failed(
            `${CONCURRENT_CHANGE}: a row updated by ON CONFLICT DO UPDATE was not among the ` +
              `${old.length} locked before the statement (a concurrent insert made it conflict)`,
          );
        }
        changed.push({ now: readAt.map((i) => values[i]!), before: previous });
      }
      const built = deleteByKeys(
        table,
        key,
        added.map((row) => keyAt.map((i) => row[i]!)),
      );
      built.push(...setBack(table, key, read, changed));
      const images = [
        {
          schema: table.schema,
          table: table.name,
          state: 'present' as const,
          key,
          columns,
          oids: added[0]?.map((v) => v.oid) ?? table.columns.map((c) => c.typeOid),
          rows: afterImageRows(added),
        },
        {
          schema: table.schema,
          table: table.name,
          state: 'present' as const,
          key,
          columns: read,
          oids: changed[0]?.now.map((v) => v.oid) ?? columnOids(table, read),
          rows: afterImageRows(changed.map((c) => c.now)),
        },
      ];
      return captured(rollbackOf(built), partial, images);
    }),
  };
}

function columnOids(table: TableMeta, columns: readonly string[]): number[] {
  return columns.map((c) => table.columns.find((m) => m.name === c)?.typeOid ?? 0);
}

/** The undo of the updated rows: their set columns back, row by row, where they changed. */
function setBack(
  table: TableMeta,
  key: string[],
  read: string[],
  changed: { now: CapturedRow; before: CapturedRow }[],
) {
  const keyTypes = columnTypes(table, key);
  const setAt = read.map((_, i) => i).filter((i) => i >= key.length || !key.includes(read[i]!));
  const types = columnTypes(table, read);
  const built = [];
  for (const { now, before } of changed) {
    const differs = setAt.filter((i) => !sameValue(now[i]!, before[i]!));
    if (differs.length === 0) continue;
    const b = new UndoBuilder().text(`UPDATE ${tableName(table)} SET `);
    differs.forEach((at, n) => {
      b.text(`${n === 0 ? '' : ', '}${quoteIdent(read[at]!)} = `).value(before[at]!, types[at]!);
    });
    b.text(' WHERE ');
    matchKey(b, key, now.slice(0, key.length), keyTypes);
    built.push(b.finish());
  }
  return built;
}

/**
 * A query returning the conflict-target values of every row the INSERT proposes, cast to the
 * columns' types (a literal in a VALUES list of a subquery is text), or why there is none.
 */
function proposedConflictValues(
  stmt: InsertStmt,
  table: TableMeta,
  target: readonly string[],
): string | { why: string } {
  const select = (stmt.selectStmt as { SelectStmt?: Record<string, unknown> } | undefined)
    ?.SelectStmt;
  if (select === undefined) return { why: 'for DEFAULT VALUES' };
  const lists = select['valuesLists'] as { List: { items: Node[] } }[] | undefined;
  let columns = (stmt.cols ?? []).map((c) => (c as { ResTarget: ResTarget }).ResTarget.name!);
  if (columns.length === 0) {
    if (lists === undefined) return { why: 'for INSERT ... SELECT without a column list' };
    columns = table.columns.slice(0, lists[0]?.List.items.length ?? 0).map((c) => c.name);
  }
  const at = target.map((c) => columns.indexOf(c));
  if (at.some((i) => i < 0)) {
    return { why: 'when a conflict column takes its default (the value is not known beforehand)' };
  }
  let source: Node;
  let names: string[];
  if (lists !== undefined) {
    const picked = lists.map((list) => at.map((i) => list.List.items[i]!));
    if (
      picked.some((items) => items.some((item) => item === undefined || 'SetToDefault' in item))
    ) {
      return { why: 'when a conflict column is given as DEFAULT' };
    }
    source = {
      SelectStmt: {
        valuesLists: picked.map((items) => ({ List: { items } })),
        op: 'SETOP_NONE',
      },
    } as Node;
    names = [...target];
  } else {
    source = stmt.selectStmt!;
    names = columns;
  }
  const outer: Node = {
    SelectStmt: {
      targetList: columnTargets('qo_new', target),
      fromClause: [
        {
          RangeSubselect: {
            subquery: source,
            alias: { aliasname: 'qo_new', colnames: names.map((sval) => ({ String: { sval } })) },
          },
        },
      ],
      withClause: stmt.withClause,
      op: 'SETOP_NONE',
    },
  };
  const types = columnTypes(table, target);
  const casts = target.map((c, i) => `CAST(qo_pick.${quoteIdent(c)} AS ${types[i]})`).join(', ');
  return `SELECT ${casts} FROM (${deparse(outer)}) AS qo_pick (${columnList(target)})`;
}
