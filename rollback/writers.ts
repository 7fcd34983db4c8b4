import type { Node, RangeVar, WithClause } from 'libpg-query';
import type { TableMeta } from '../src/cluster/metadata.ts';
import { tableKey } from '../src/cluster/metadata.ts';
import { columnTargets, deparse, visibleName } from './ast.ts';
import { storedColumns } from './cascade.ts';
import { failed, safeBuild, tooLarge } from './outcome.ts';
import {
  classify,
  countAll,
  countOf,
  countRows,
  lockTable,
  readBack,
  type TableChanges,
} from './readback.ts';
import {
  cascadeReason,
  chooseKey,
  irreversible,
  isNoCapture,
  type ResolveTable,
  resolveTarget,
  sideEffectReasons,
} from './table.ts';
import { quoteIdent, tableName } from './template.ts';
import type { CapturedRow, CaptureOutcome, CapturePlan, NoCapture } from './types.ts';
import { composeUndo, type TableUndo } from './undo-compose.ts';

/** One part of a statement that changes a table: a MERGE, or an INSERT, UPDATE or DELETE. */
export interface Writer {
  relation: RangeVar;
  /** How reasons name the part: `MERGE`, `DELETE in WITH d`. */
  label: string;
  inserts: boolean;
  updates: boolean;
  deletes: boolean;
  /** Columns its UPDATE (or a MERGE's UPDATE actions) sets. */
  setColumns: string[];
  /** FROM items and WHERE of a query matching every target row it may update or delete. */
  reach?: { from: Node[]; where: Node | undefined };
  /** The client's main statement, whose command tag counts the rows it changed. */
  main: boolean;
}

export interface WritesOptions {
  maxRows: number;
  /** Tables (`schema.table`) this transaction changed before the statement. */
  changedTables?: ReadonlySet<string>;
  /** The statement runs inside a savepoint, in a subtransaction of its own. */
  inSavepoint?: boolean;
}

interface Group {
  table: TableMeta;
  writers: Writer[];
  key: string[];
  setColumns: string[];
  inserts: boolean;
  updates: boolean;
  deletes: boolean;
  /** Indexes in `before`: the count, then each candidate read. */
  countAt: number;
  candidatesAt: number[];
  /** Indexes in `after`: the read-back, then (locked tables) the count. */
  readAt: number;
  countAfterAt: number;
}

/**
 * Plans the capture of statements whose changes cannot come back through RETURNING: per table,
 * lock it and count its rows, read and lock the rows its UPDATE and DELETE parts match; after
 * the statement, read back the rows it wrote and count again. The undo re-inserts deleted
 * rows, sets back changed columns of updated rows and deletes inserted rows.
 */
export function planWrites(
  writers: readonly Writer[],
  context: { readWith: WithClause | undefined; statement: string; clientReturns: boolean },
  resolve: ResolveTable,
  options: WritesOptions,
): CapturePlan | NoCapture {
  const what = writers.find((w) => w.main)?.label ?? writers[0]?.label ?? 'the statement';
  if (options.inSavepoint) {
    // NOTE: inside a savepoint, rows carry the subtransaction's id, which SQL cannot name, so
    // MERGE and data-modifying WITH are not captured there.
    return irreversible(
      `${what} inside a savepoint is not captured: its rows carry the savepoint's own ` +
        'transaction id and cannot be read back',
    );
  }
  const groups: Group[] = [];
  for (const writer of writers) {
    const table = resolveTarget(writer.relation, resolve);
    if (isNoCapture(table)) return table;
    const id = tableKey(table.schema, table.name);
    if (options.changedTables?.has(id)) {
      return irreversible(
        `${what} writes ${tableName(table)}, which this transaction changed before; the rows ` +
          'it writes cannot be told apart from the earlier ones',
      );
    }
    let group = groups.find((g) => g.table === table);
    if (group === undefined) {
      group = {
        table,
        writers: [],
        key: [],
        setColumns: [],
        inserts: false,
        updates: false,
        deletes: false,
        countAt: 0,
        candidatesAt: [],
        readAt: 0,
        countAfterAt: -1,
      };
      groups.push(group);
    }
    group.writers.push(writer);
    group.inserts ||= writer.inserts;
    group.updates ||= writer.updates;
    group.deletes ||= writer.deletes;
    group.setColumns = [...new Set([...group.setColumns, ...writer.setColumns])];
  }

  for (const group of groups) {
    const refusal = checkGroup(group);
    if (refusal !== undefined) return refusal;
  }
  // Tables are locked in one order (by name), so that two statements locking the same tables
  // wait for each other instead of deadlocking.
  const before = groups
    .filter((g) => g.updates || g.deletes)
    .map((g) => g.table)
    .sort((a, b) => tableName(a).localeCompare(tableName(b), 'en'))
    .map(lockTable);
  const after: string[] = [];
  const partial: string[] = [];
  for (const group of groups) {
    const { table } = group;
    const locked = group.updates || group.deletes;
    group.countAt = before.length;
    before.push(countRows(table));
    for (const writer of group.writers) {
      if (writer.reach === undefined) continue;
      group.candidatesAt.push(before.length);
      before.push(candidateRead(writer, table, context.readWith, options.maxRows));
    }
    group.readAt = after.length;
    after.push(readBack(table, group.deletes, readLimit(group, options.maxRows)));
    if (locked) {
      group.countAfterAt = after.length;
      after.push(countAll(table));
    }
    partial.push(...sideEffectReasons(table));
    if (group.deletes) partial.push(...optional(cascadeReason(table, 'delete')));
    if (group.updates) {
      partial.push(...optional(cascadeReason(table, 'update', new Set(group.setColumns))));
    }
  }

  return {
    before,
    after,
    statement: context.statement,
    hiddenColumns: 0,
    clientReturns: context.clientReturns,
    build: safeBuild((captured) => buildUndo(groups, captured, partial, options.maxRows)),
  };
}

function optional(reason: string | undefined): string[] {
  return reason === undefined ? [] : [reason];
}

/** Why the group's changes cannot be captured, if they cannot; else fills in its key. */
function checkGroup(group: Group): NoCapture | undefined {
  const { table } = group;
  for (const name of group.setColumns) {
    const column = table.columns.find((c) => c.name === name);
    if (column === undefined) {
      return irreversible(
        `column ${quoteIdent(name)} is not in the scanned metadata of ${tableName(table)}`,
      );
    }
    if (column.identity === 'a') {
      return irreversible(
        `${group.writers[0]!.label} sets identity column ${quoteIdent(name)} of ` +
          `${tableName(table)} (GENERATED ALWAYS), which an undo cannot set back`,
      );
    }
  }
  const key = chooseKey(table, new Set(group.setColumns));
  if (key === undefined) {
    return irreversible(
      table.primaryKey.length > 0 || table.uniqueKeys.length > 0
        ? `${group.writers[0]!.label} sets key columns of ${tableName(table)}, and the table has ` +
            'no other primary or unique not-null key to match rows before and after the change'
        : `table ${tableName(table)} has no primary key or unique not-null key`,
    );
  }
  const stored = storedColumns(table);
  if (!key.every((k) => stored.includes(k))) {
    return irreversible(`the key of ${tableName(table)} includes a generated column`);
  }
  group.key = key;
  return undefined;
}

/** Rows a read-back may return: written rows plus candidates still locked, both capped. */
function readLimit(group: Group, maxRows: number): number {
  return maxRows * (1 + group.candidatesAt.length) + group.candidatesAt.length;
}

/** `SELECT <stored columns> FROM <target> ... WHERE ... LIMIT n FOR UPDATE OF <target>`. */
function candidateRead(
  writer: Writer,
  table: TableMeta,
  readWith: WithClause | undefined,
  maxRows: number,
): string {
  const qualifier = visibleName(writer.relation);
  const read: Node = {
    SelectStmt: {
      targetList: columnTargets(qualifier, storedColumns(table)),
      fromClause: writer.reach!.from,
      whereClause: writer.reach!.where,
      withClause: readWith,
      limitCount: { A_Const: { ival: { ival: maxRows + 1 } } },
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
  return deparse(read);
}

function buildUndo(
  groups: readonly Group[],
  captured: { before: CapturedRow[][]; after?: CapturedRow[][]; rowCount?: number | null },
  partial: string[],
  maxRows: number,
): CaptureOutcome {
  const undos: TableUndo[] = [];
  let total = 0;
  for (const group of groups) {
    const { table } = group;
    const name = tableName(table);
    const label = group.writers.map((w) => w.label).join(' and ');
    if (countOf(captured.before[group.countAt], 1) > 0) {
      return failed(
        `${name} already holds rows this transaction wrote (through a trigger or a foreign key ` +
          `action of an earlier statement), so the rows ${label} wrote cannot be told apart`,
      );
    }
    const reads = group.candidatesAt.map((at) => captured.before[at] ?? []);
    if (reads.some((rows) => rows.length > maxRows)) {
      return tooLarge(Math.max(...reads.map((rows) => rows.length)), maxRows);
    }
    const readRows = captured.after?.[group.readAt] ?? [];
    if (readRows.length > readLimit(group, maxRows)) return tooLarge(readRows.length, maxRows);
    const changes = classify(table, group.key, reads.flat(), readRows, group.deletes);
    const mismatch = checkChanges(group, changes, captured);
    if (mismatch !== undefined) return failed(`${label} on ${name}: ${mismatch}`);
    total += changes.inserted.length + changes.updated.length + changes.deleted.length;
    undos.push({ table, key: group.key, ...changes });
  }
  if (total > maxRows) return tooLarge(total, maxRows);
  const { rollback, afterImages } = composeUndo(undos);
  return {
    rollback,
    reversibility: partial.length > 0 ? 'partial' : 'exact',
    reason: partial.length > 0 ? partial.join('; ') : null,
    afterImage: afterImages,
  };
}

/**
 * Checks that the rows read back account for what the statement did. Only this transaction can
 * write a locked table, so its row count moves by exactly the rows inserted minus the rows
 * deleted; the main statement's command tag counts every row it changed. A row a part updated
 * or deleted without having locked it first (the rows it reads changed in between) breaks one
 * of these.
 */
function checkChanges(
  group: Group,
  changes: TableChanges,
  captured: { before: CapturedRow[][]; after?: CapturedRow[][]; rowCount?: number | null },
): string | undefined {
  const inserted = changes.inserted.length;
  const updated = changes.updated.length;
  const deleted = changes.deleted.length;
  if (inserted > 0 && !group.inserts) {
    return (
      `${inserted} rows were written that it does not insert and that were not locked before ` +
      'it (a trigger, a foreign key action or a concurrent change of the rows it reads)'
    );
  }
  if (updated > 0 && !group.updates && !(group.inserts && group.deletes)) {
    return `${updated} rows it does not update were written`;
  }
  // NOTE: when parts of one WITH query insert into and delete from the same table, a concurrent
  // change that makes one part update a row it did not lock and another delete a row it did not
  // lock balances both counts and is not seen.
  if (group.countAfterAt >= 0) {
    const moved =
      countOf(captured.after?.[group.countAfterAt]) - countOf(captured.before[group.countAt]);
    if (moved !== inserted - deleted) {
      return (
        `its row count changed by ${moved}, but ${inserted} inserted and ${deleted} deleted rows ` +
        'were read back (a trigger, a foreign key action or a concurrent change of the rows it ' +
        'reads made a difference)'
      );
    }
  }
  const main = group.writers.length === 1 && group.writers[0]!.main;
  const reported = captured.rowCount;
  if (main && reported !== null && reported !== undefined) {
    const found = inserted + updated + deleted;
    if (reported !== found) {
      return (
        `it reported ${reported} rows changed, but ${found} were read back (rows a trigger or ` +
        'a foreign key action wrote in the same table cannot be told apart)'
      );
    }
  }
  return undefined;
}
