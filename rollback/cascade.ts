import type { ForeignKeyMeta, TableMeta } from '../src/cluster/metadata.ts';
import { cascadeReason, chooseKey, columnTypes, type ResolveTable } from './table.ts';
import { columnList, matchKey, quoteIdent, tableName, UndoBuilder } from './template.ts';
import type { CapturedRow } from './types.ts';
import { type AfterImage, afterImageRows, tupleKey } from './values.ts';

/*
 * What a DELETE's foreign keys do to other rows (ON DELETE CASCADE, SET NULL, SET DEFAULT) is
 * invisible to its RETURNING, so the rows they will delete or change are read, locked, before
 * the DELETE runs: each read selects the rows whose foreign key matches a row about to be
 * deleted, recursively. A foreign key of a table to itself is followed with a recursive query,
 * since it cascades to any depth.
 */

/** Deeper chains of cascading foreign keys than this are not followed (the undo is partial). */
const MAX_DEPTH = 8;

/** One read before the DELETE: rows of `table` that the cascade deletes, or whose key it sets. */
export interface CascadeRead {
  table: TableMeta;
  /** `delete`: whole rows (`columns`, stored columns in table order); `set`: key plus set columns. */
  effect: 'delete' | 'set';
  key: string[];
  columns: string[];
  /** For `set`: the foreign key columns the cascade sets, and whether to NULL or to the default. */
  setColumns: string[];
  action: 'n' | 'd' | 'c';
}

export interface CascadePlan {
  /** SQL of each read, aligned with `reads`; parameters are the client's. */
  before: string[];
  reads: CascadeRead[];
  /** Effects the reads do not cover. */
  partial: string[];
}

function isActive(fk: ForeignKeyMeta): boolean {
  return fk.onDelete === 'c' || fk.onDelete === 'n' || fk.onDelete === 'd';
}

function isSelf(fk: ForeignKeyMeta, table: TableMeta): boolean {
  return fk.schema === table.schema && fk.table === table.name;
}

/** True when deleting from the table changes rows through a foreign key's ON DELETE action. */
export function cascades(table: TableMeta): boolean {
  return table.referencedBy.some(isActive);
}

/** Stored columns of a table, which an INSERT restoring a row writes. */
export function storedColumns(table: TableMeta): string[] {
  return table.columns.filter((c) => !c.generated).map((c) => c.name);
}

/**
 * The columns a set of about-to-be-deleted rows of `table` must carry: its key, the columns
 * other tables reference with an ON DELETE action, and the columns of its own self-cascades.
 */
export function setColumnsOf(table: TableMeta, key: readonly string[]): string[] {
  const columns = new Set(key);
  for (const fk of table.referencedBy.filter(isActive)) {
    for (const c of fk.referencedColumns) columns.add(c);
    if (isSelf(fk, table) && fk.onDelete === 'c') for (const c of fk.columns) columns.add(c);
  }
  return [...columns];
}

function qualified(alias: string, columns: readonly string[]): string {
  return columns.map((c) => `${alias}.${quoteIdent(c)}`).join(', ');
}

/** `seed` (a query returning `columns` of `table`) widened with every row its self-cascades delete. */
function closure(table: TableMeta, columns: string[], seed: string): string {
  const self = table.referencedBy.filter((fk) => isSelf(fk, table) && fk.onDelete === 'c');
  if (self.length === 0) return seed;
  const match = self
    .map(
      (fk) =>
        `(${qualified('qo_child', fk.columns)}) = (${qualified('qo_closure', fk.referencedColumns)})`,
    )
    .join(' OR ');
  return (
    `WITH RECURSIVE qo_closure (${columnList(columns)}) AS (` +
    `SELECT ${qualified('qo_seed', columns)} FROM (${seed}) AS qo_seed UNION ` +
    `SELECT ${qualified('qo_child', columns)} FROM ${tableName(table)} AS qo_child, qo_closure ` +
    `WHERE ${match}) SELECT ${columnList(columns)} FROM qo_closure`
  );
}

function lockedRead(
  table: TableMeta,
  columns: readonly string[],
  where: string,
  maxRows: number,
): string {
  return (
    `SELECT ${qualified('qo_row', columns)} FROM ${tableName(table)} AS qo_row WHERE ${where} ` +
    `LIMIT ${maxRows + 1} FOR UPDATE OF qo_row`
  );
}

/**
 * Plans the reads of every row the DELETE's foreign keys will delete or change. `base` is a
 * query returning `setColumnsOf(target, key)` of the rows the DELETE matches; its rows come back
 * through RETURNING, so the target is read only when a self-cascade deletes more of it.
 */
export function planCascade(
  target: TableMeta,
  key: string[],
  base: string,
  resolve: ResolveTable,
  maxRows: number,
): CascadePlan {
  const plan: CascadePlan = { before: [], reads: [], partial: [] };
  const targetSet = closure(target, setColumnsOf(target, key), base);
  if (targetSet !== base) {
    const columns = storedColumns(target);
    plan.before.push(
      lockedRead(
        target,
        columns,
        `(${qualified('qo_row', key)}) IN (SELECT ${columnList(key)} FROM (${targetSet}) AS qo_set)`,
        maxRows,
      ),
    );
    plan.reads.push({ table: target, effect: 'delete', key, columns, setColumns: [], action: 'c' });
  }
  follow(target, targetSet, [tableName(target)], resolve, maxRows, plan);
  return plan;
}

function follow(
  parent: TableMeta,
  parentSet: string,
  path: string[],
  resolve: ResolveTable,
  maxRows: number,
  plan: CascadePlan,
): void {
  for (const fk of parent.referencedBy.filter(isActive)) {
    if (isSelf(fk, parent) && fk.onDelete === 'c') continue; // in parentSet already
    const child = resolve(fk.schema, fk.table);
    const childName = tableName({ schema: fk.schema, name: fk.table });
    if (child === undefined) {
      plan.partial.push(`${childName}, which the delete cascades to, is not in the metadata`);
      continue;
    }
    const key = chooseKey(child);
    if (key === undefined) {
      plan.partial.push(`${childName}, which the delete cascades to, has no key`);
      continue;
    }
    const matches =
      `(${qualified('qo_row', fk.columns)}) IN ` +
      `(SELECT ${columnList(fk.referencedColumns)} FROM (${parentSet}) AS qo_parent)`;
    if (fk.onDelete !== 'c') {
      const columns = [...key, ...fk.columns.filter((c) => !key.includes(c))];
      plan.before.push(lockedRead(child, columns, matches, maxRows));
      plan.reads.push({
        table: child,
        effect: 'set',
        key,
        columns,
        setColumns: fk.columns,
        action: fk.onDelete as 'n' | 'd',
      });
      const further = cascadeReason(child, 'update', new Set(fk.columns));
      if (further !== undefined) plan.partial.push(further);
      continue;
    }
    if (path.includes(childName) || path.length >= MAX_DEPTH) {
      plan.partial.push(
        `the delete cascades from ${tableName(parent)} to ${childName} ` +
          (path.includes(childName) ? 'in a cycle of foreign keys' : 'too deeply') +
          '; those rows are not captured',
      );
      continue;
    }
    const setColumns = setColumnsOf(child, key);
    const seed =
      `SELECT ${qualified('qo_row', setColumns)} FROM ${tableName(child)} AS qo_row ` +
      `WHERE ${matches}`;
    const childSet = closure(child, setColumns, seed);
    const columns = storedColumns(child);
    plan.before.push(
      lockedRead(
        child,
        columns,
        `(${qualified('qo_row', key)}) IN (SELECT ${columnList(key)} FROM (${childSet}) AS qo_set)`,
        maxRows,
      ),
    );
    plan.reads.push({ table: child, effect: 'delete', key, columns, setColumns: [], action: 'c' });
    follow(child, childSet, [...path, childName], resolve, maxRows, plan);
  }
}

/** Rows of one table to restore, by key, keeping the first image read of each. */
export class RowsByTable {
  readonly deleted = new Map<string, { read: CascadeRead; rows: Map<string, CapturedRow> }>();
  readonly set: { read: CascadeRead; rows: Map<string, CapturedRow> }[] = [];

  add(read: CascadeRead, rows: readonly CapturedRow[]): void {
    const keyAt = read.key.map((k) => read.columns.indexOf(k));
    const byKey = (row: CapturedRow) => tupleKey(keyAt.map((i) => row[i]!));
    if (read.effect === 'set') {
      this.set.push({ read, rows: new Map(rows.map((row) => [byKey(row), row])) });
      return;
    }
    const name = tableName(read.table);
    let entry = this.deleted.get(name);
    if (entry === undefined) {
      entry = { read, rows: new Map() };
      this.deleted.set(name, entry);
    }
    for (const row of rows) {
      const k = byKey(row);
      if (!entry.rows.has(k)) entry.rows.set(k, row);
    }
  }

  count(): number {
    let total = 0;
    for (const { rows } of this.deleted.values()) total += rows.size;
    for (const { rows } of this.set) total += rows.size;
    return total;
  }

  /** Tables with deleted rows, every table after the tables it references (cycles: as found). */
  parentsFirst(): { read: CascadeRead; rows: CapturedRow[] }[] {
    const pending = [...this.deleted.entries()];
    const done = new Set<string>();
    const order: { read: CascadeRead; rows: CapturedRow[] }[] = [];
    while (pending.length > 0) {
      let at = pending.findIndex(([name, { read }]) =>
        read.table.foreignKeys.every((fk) => {
          const parent = tableName({ schema: fk.referencedSchema, name: fk.referencedTable });
          return parent === name || done.has(parent) || !this.deleted.has(parent);
        }),
      );
      if (at < 0) at = 0;
      const [name, entry] = pending.splice(at, 1)[0]!;
      done.add(name);
      order.push({ read: entry.read, rows: [...entry.rows.values()] });
    }
    return order;
  }

  /** Rows whose foreign key was set, and which were not deleted as well (those are restored whole). */
  setRows(): { read: CascadeRead; rows: CapturedRow[] }[] {
    return this.set.map(({ read, rows }) => {
      const deleted = this.deleted.get(tableName(read.table))?.rows;
      return { read, rows: [...rows].filter(([k]) => !deleted?.has(k)).map(([, row]) => row) };
    });
  }
}

/** `UPDATE c SET fk = <before> WHERE key = ...` for each row a SET NULL / SET DEFAULT changed. */
export function restoreSetRows(read: CascadeRead, rows: readonly CapturedRow[]) {
  const keyTypes = columnTypes(read.table, read.key);
  const setTypes = columnTypes(read.table, read.setColumns);
  const setAt = read.setColumns.map((c) => read.columns.indexOf(c));
  return rows.map((row) => {
    const b = new UndoBuilder().text(`UPDATE ${tableName(read.table)} SET `);
    setAt.forEach((at, i) => {
      b.text(`${i === 0 ? '' : ', '}${quoteIdent(read.setColumns[i]!)} = `).value(
        row[at]!,
        setTypes[i]!,
      );
    });
    b.text(' WHERE ');
    matchKey(b, read.key, row.slice(0, read.key.length), keyTypes);
    return b.finish();
  });
}

/** After-images of a cascade: deleted rows stay absent, SET NULL rows keep their NULLs. */
export function cascadeAfterImages(rows: RowsByTable): AfterImage[] {
  const images: AfterImage[] = [];
  for (const { read, rows: byKey } of rows.deleted.values()) {
    const keyAt = read.key.map((k) => read.columns.indexOf(k));
    const keys = [...byKey.values()].map((row) => keyAt.map((i) => row[i]!));
    images.push(image(read, 'absent', read.key, keys));
  }
  for (const { read, rows: kept } of rows.setRows()) {
    if (read.action === 'n') {
      // The key columns come first in `columns`; the set columns are now NULL.
      const after = kept.map((row) =>
        read.columns.map((c, i) =>
          read.setColumns.includes(c) ? { ...row[i]!, value: null } : row[i]!,
        ),
      );
      images.push(image(read, 'present', read.columns, after));
    } else {
      // NOTE: the default a SET DEFAULT wrote is not read back, so only the row's presence is checked.
      images.push(
        image(
          read,
          'present',
          read.key,
          kept.map((row) => row.slice(0, read.key.length)),
        ),
      );
    }
  }
  return images;
}

function image(
  read: CascadeRead,
  state: 'present' | 'absent',
  columns: string[],
  rows: CapturedRow[],
): AfterImage {
  return {
    schema: read.table.schema,
    table: read.table.name,
    state,
    key: read.key,
    columns,
    oids: rows[0]?.map((v) => v.oid) ?? columnTypesOids(read.table, columns),
    rows: afterImageRows(rows),
  };
}

function columnTypesOids(table: TableMeta, columns: readonly string[]): number[] {
  return columns.map((c) => table.columns.find((m) => m.name === c)?.typeOid ?? 0);
}
