import type { TableMeta } from '../src/cluster/metadata.ts';
import { storedColumns } from './cascade.ts';
import { quoteIdent, tableName } from './template.ts';
import type { CapturedRow } from './types.ts';
import { tupleKey } from './values.ts';

/*
 * MERGE has no RETURNING on PostgreSQL 15, and the parts of a data-modifying WITH cannot hand
 * hidden columns to the client's statement, so their rows are read back instead. A row version
 * this transaction wrote carries the transaction's id in xmin; a row it locked FOR UPDATE and
 * left alone carries it in xmax (so does the new version of a row it locked and then updated:
 * PostgreSQL keeps the locker's lock on it). This tells the written rows apart only when nothing
 * else in the transaction wrote the table before, which a count checks before the statement.
 * https://www.postgresql.org/docs/current/ddl-system-columns.html
 */

/** The 32-bit id xmin and xmax hold: the top-level transaction's xid8 modulo 2^32. */
const XID = 'pg_catalog.pg_current_xact_id()::text::bigint % 4294967296';

function writtenHere(alias: string): string {
  return `${alias}.xmin::text::bigint = ${XID}`;
}

function lockedHere(alias: string): string {
  return `${alias}.xmax::text::bigint = ${XID}`;
}

/**
 * Keeps every other transaction from writing the table until this one ends, so that the rows a
 * statement matches are the rows read and locked just before it (a row committed in between
 * would otherwise be updated without a before-image). SHARE ROW EXCLUSIVE conflicts with itself
 * and with the ROW EXCLUSIVE lock of INSERT, UPDATE, DELETE and MERGE.
 * https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
 */
export function lockTable(table: TableMeta): string {
  return `LOCK TABLE ${tableName(table)} IN SHARE ROW EXCLUSIVE MODE`;
}

/** Rows of the table, and how many of them this transaction wrote already (which must be none). */
export function countRows(table: TableMeta): string {
  return (
    `SELECT count(*), count(*) FILTER (WHERE ${writtenHere('qo_row')}) ` +
    `FROM ${tableName(table)} AS qo_row`
  );
}

export function countAll(table: TableMeta): string {
  return `SELECT count(*) FROM ${tableName(table)} AS qo_row`;
}

/**
 * Every column of each row the statement wrote, then `true`; with `locked`, also the rows this
 * transaction locked and did not write (their columns, then `false`), which shows which locked
 * rows are still there. One row over `limit` is enough to know the capture is too large.
 */
export function readBack(table: TableMeta, locked: boolean, limit: number): string {
  const columns = table.columns.map((c) => `qo_row.${quoteIdent(c.name)}`).join(', ');
  const where = locked
    ? `${writtenHere('qo_row')} OR ${lockedHere('qo_row')}`
    : writtenHere('qo_row');
  return (
    `SELECT ${columns}, ${writtenHere('qo_row')} FROM ${tableName(table)} AS qo_row ` +
    `WHERE ${where} LIMIT ${limit + 1}`
  );
}

/** A count(*) result as a number. */
export function countOf(rows: readonly CapturedRow[] | undefined, column = 0): number {
  const value = rows?.[0]?.[column]?.value;
  if (value === null || value === undefined) throw new Error('a row count is missing');
  return Number(value.readBigInt64BE(0));
}

/** What one statement did to one table, classified by key. */
export interface TableChanges {
  /** Every column (table order) of each inserted row. */
  inserted: CapturedRow[];
  /** The stored columns before, and every column after, of each row updated in place. */
  updated: { before: CapturedRow; after: CapturedRow }[];
  /** The stored columns of each deleted row. */
  deleted: CapturedRow[];
}

/**
 * Classifies the rows read back against the candidates read (locked) before the statement: a
 * written row whose key was a candidate was updated, else inserted; a candidate neither written
 * nor still locked is gone, which only a DELETE does. `candidates` are stored columns.
 */
export function classify(
  table: TableMeta,
  key: readonly string[],
  candidates: readonly CapturedRow[],
  readRows: readonly CapturedRow[],
  deletes: boolean,
): TableChanges {
  const stored = storedColumns(table);
  const all = table.columns.map((c) => c.name);
  const storedKey = key.map((k) => stored.indexOf(k));
  const allKey = key.map((k) => all.indexOf(k));
  if ([...storedKey, ...allKey].some((i) => i < 0)) {
    throw new Error(`the key of ${tableName(table)} includes a generated column`);
  }
  const before = new Map<string, CapturedRow>();
  for (const row of candidates) before.set(tupleKey(storedKey.map((i) => row[i]!)), row);

  const changes: TableChanges = { inserted: [], updated: [], deleted: [] };
  const seen = new Set<string>();
  for (const row of readRows) {
    const flag = row[all.length]?.value;
    const values = row.slice(0, all.length);
    const id = tupleKey(allKey.map((i) => values[i]!));
    seen.add(id);
    if (flag === null || flag === undefined || flag[0] !== 1) continue;
    const old = before.get(id);
    if (old === undefined) changes.inserted.push(values);
    else changes.updated.push({ before: old, after: values });
  }
  if (deletes) {
    for (const [id, row] of before) if (!seen.has(id)) changes.deleted.push(row);
  }
  return changes;
}

/** Stored columns whose value an update changed, by name; identical bytes count as unchanged. */
export function changedColumns(
  table: TableMeta,
  updated: readonly { before: CapturedRow; after: CapturedRow }[],
): string[] {
  const stored = storedColumns(table);
  const all = table.columns.map((c) => c.name);
  return stored.filter((name, i) => {
    const at = all.indexOf(name);
    return updated.some(({ before, after }) => !sameBytes(before[i], after[at]));
  });
}

export function sameBytes(
  a: CapturedRow[number] | undefined,
  b: CapturedRow[number] | undefined,
): boolean {
  const x = a?.value ?? null;
  const y = b?.value ?? null;
  if (x === null || y === null) return x === y;
  return x.equals(y);
}
