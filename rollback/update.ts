import type { Node, ResTarget, UpdateStmt } from 'libpg-query';
import type { TableMeta } from '../src/cluster/metadata.ts';
import {
  clientReturns,
  columnTargets,
  deparse,
  hasModifyingCte,
  visibleName,
  withHiddenReturning,
} from './ast.ts';
import { CONCURRENT_CHANGE, captured, failed, safeBuild, tooLarge } from './outcome.ts';
import {
  cascadeReason,
  chooseKey,
  columnTypes,
  hasKey,
  irreversible,
  isNoCapture,
  modifyingCte,
  noKey,
  type ResolveTable,
  resolveTarget,
  sideEffectReasons,
} from './table.ts';
import { matchKey, quoteIdent, rollbackOf, tableName, UndoBuilder } from './template.ts';
import type { CapturedRow, CapturePlan, NoCapture } from './types.ts';
import { afterImageRows, hiddenPart, sameValue, tupleKey } from './values.ts';

/**
 * UPDATE: a locking SELECT with the statement's own FROM and WHERE reads the key and the old
 * values of the set columns of every row it will change; the statement returns the key and the
 * new values. The undo sets back, row by row, only the columns the statement set.
 */
export function planUpdate(
  stmt: UpdateStmt,
  resolve: ResolveTable,
  options: { maxRows: number },
): CapturePlan | NoCapture {
  if (stmt.whereClause !== undefined && 'CurrentOfExpr' in stmt.whereClause) {
    // NOTE: UPDATE ... WHERE CURRENT OF is not captured; its rows cannot be read beforehand.
    return irreversible(
      'UPDATE ... WHERE CURRENT OF is not captured: ' +
        'the rows cannot be read before the change through the cursor',
    );
  }
  if (hasModifyingCte(stmt.withClause)) {
    return modifyingCte();
  }
  const table = resolveTarget(stmt.relation, resolve);
  if (isNoCapture(table)) return table;
  if (!hasKey(table)) return noKey(table);

  const setColumns = [
    ...new Set((stmt.targetList ?? []).map((t) => (t as { ResTarget: ResTarget }).ResTarget.name!)),
  ];
  for (const name of setColumns) {
    const column = table.columns.find((c) => c.name === name);
    if (column === undefined) {
      return irreversible(
        `column ${quoteIdent(name)} is not in the scanned metadata of ${tableName(table)}`,
      );
    }
    if (column.identity === 'a') {
      return irreversible(
        `UPDATE sets identity column ${quoteIdent(name)} of ${tableName(table)} ` +
          '(GENERATED ALWAYS), which an undo cannot set back',
      );
    }
  }
  const key = chooseKey(table, new Set(setColumns));
  if (key === undefined) {
    const touched = [...table.primaryKey, ...table.uniqueKeys.flat()].filter((c) =>
      setColumns.includes(c),
    );
    const columns = [...new Set(touched)].map(quoteIdent).join(', ');
    return irreversible(
      `UPDATE sets key column(s) ${columns} of ${tableName(table)}, and the table has no other ` +
        'primary or unique not-null key to match rows before and after the change',
    );
  }

  const relation = stmt.relation!;
  const qualifier = visibleName(relation);
  const read = [...key, ...setColumns];
  const before: Node = {
    SelectStmt: {
      targetList: columnTargets(qualifier, read),
      fromClause: [{ RangeVar: relation }, ...(stmt.fromClause ?? [])],
      whereClause: stmt.whereClause,
      withClause: stmt.withClause,
      // One row over the limit is enough to know the undo would be too large.
      limitCount: { A_Const: { ival: { ival: options.maxRows + 1 } } },
      limitOption: 'LIMIT_OPTION_COUNT',
      lockingClause: [
        {
          LockingClause: {
            lockedRels: [{ RangeVar: { relname: qualifier, inh: true, relpersistence: 'p' } }],
            strength: 'LCS_FORUPDATE',
            waitPolicy: 'LockWaitBlock',
          },
        },
      ],
      op: 'SETOP_NONE',
    },
  };
  const rewritten: Node = {
    UpdateStmt: {
      ...stmt,
      returningClause: withHiddenReturning(stmt.returningClause, columnTargets(qualifier, read)),
    },
  };
  const partial = sideEffectReasons(table);
  const cascade = cascadeReason(table, 'update', new Set(setColumns));
  if (cascade !== undefined) partial.push(cascade);

  return {
    before: [deparse(before)],
    statement: deparse(rewritten),
    hiddenColumns: read.length,
    clientReturns: clientReturns(stmt.returningClause),
    build: safeBuild(({ before: beforeRows, returned }) => {
      const old = (beforeRows[0] ?? []).map((row) => hiddenPart(row, read.length));
      const now = returned.map((row) => hiddenPart(row, read.length));
      return buildUndo(table, key, setColumns, old, now, partial, options.maxRows);
    }),
  };
}

function buildUndo(
  table: TableMeta,
  key: string[],
  setColumns: string[],
  old: CapturedRow[],
  now: CapturedRow[],
  partial: string[],
  maxRows: number,
) {
  // A join in FROM can read a target row more than once; the UPDATE changes it once.
  const oldByKey = new Map<string, CapturedRow>();
  for (const row of old) oldByKey.set(tupleKey(row.slice(0, key.length)), row);
  if (now.length > maxRows || old.length > maxRows) {
    return tooLarge(Math.max(now.length, oldByKey.size), maxRows);
  }
  // Every updated row needs its before-image. A locked row the UPDATE then skipped (a trigger
  // returned NULL, a joined row changed) needs no undo.
  const unread = now.filter((row) => !oldByKey.has(tupleKey(row.slice(0, key.length)))).length;
  if (unread > 0) {
    return failed(
      `${CONCURRENT_CHANGE}: ${unread} of ${now.length} updated rows were not among the ` +
        `${oldByKey.size} locked before the UPDATE (a concurrent change made them match)`,
    );
  }

  const keyTypes = columnTypes(table, key);
  const setTypes = columnTypes(table, setColumns);
  const set = setColumns.map((c) => `${quoteIdent(c)} = `);
  const built = [];
  for (const after of now) {
    const keyValues = after.slice(0, key.length);
    const previous = oldByKey.get(tupleKey(keyValues))!;
    const oldValues = previous.slice(key.length);
    if (oldValues.every((v, i) => sameValue(v, after[key.length + i]!))) continue;
    const b = new UndoBuilder().text(`UPDATE ${tableName(table)} SET `);
    oldValues.forEach((v, i) => {
      b.text(i === 0 ? set[i]! : `, ${set[i]!}`).value(v, setTypes[i]!);
    });
    b.text(' WHERE ');
    matchKey(b, key, keyValues, keyTypes);
    built.push(b.finish());
  }
  // NOTE: setting back a unique column row by row can collide transiently, since PostgreSQL
  // checks non-deferrable unique constraints per row, so undoing a key shift such as
  // `SET code = code + 1` may fail.
  return captured(rollbackOf(built), partial, {
    schema: table.schema,
    table: table.name,
    state: 'present',
    key,
    columns: [...key, ...setColumns],
    oids: now[0]?.map((v) => v.oid) ?? [],
    rows: afterImageRows(now),
  });
}
