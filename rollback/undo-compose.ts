import type { Rollback } from '../src/cluster/audit.ts';
import type { TableMeta } from '../src/cluster/metadata.ts';
import { deleteByKeys } from './by-key.ts';
import { storedColumns } from './cascade.ts';
import { insertRows, parentsFirst } from './delete.ts';
import { changedColumns, sameBytes, type TableChanges } from './readback.ts';
import { columnTypes } from './table.ts';
import { matchKey, quoteIdent, rollbackOf, tableName, UndoBuilder } from './template.ts';
import type { CapturedRow } from './types.ts';
import { type AfterImage, afterImageRows } from './values.ts';

/** What one statement did to one table, with the key its undo addresses rows by. */
export interface TableUndo extends TableChanges {
  table: TableMeta;
  key: string[];
}

/**
 * The undo of changes to several tables made by one statement, in an order that foreign keys
 * allow: deleted rows come back first (referenced tables first), then updated rows get their
 * columns back, then inserted rows go (referencing tables first). An updated row may point at
 * a row the statement deleted, or at one it inserted; both orders are then satisfied.
 */
// NOTE: a unique value that moved from a deleted row to an inserted one (in one MERGE) makes
// the undo collide, since the deleted row is restored before the inserted one is removed.
export function composeUndo(changes: readonly TableUndo[]): {
  rollback: Rollback;
  afterImages: AfterImage[];
} {
  const order = parentsFirstTables(changes.map((c) => c.table));
  const built = [];
  for (const i of order) {
    const { table, deleted } = changes[i]!;
    if (deleted.length === 0) continue;
    const stored = storedColumns(table);
    built.push(...insertRows(table, stored, parentsFirst(table, stored, deleted)));
  }
  for (const change of changes) built.push(...setBack(change));
  for (const i of [...order].reverse()) {
    const { table, key, inserted } = changes[i]!;
    if (inserted.length === 0) continue;
    const all = table.columns.map((c) => c.name);
    const keyAt = key.map((k) => all.indexOf(k));
    built.push(...deleteByKeys(table, key, keyAtRows(inserted, keyAt)));
  }
  return { rollback: rollbackOf(built), afterImages: changes.flatMap(afterImagesOf) };
}

function keyAtRows(rows: readonly CapturedRow[], at: readonly number[]): CapturedRow[] {
  return rows.map((row) => at.map((i) => row[i]!));
}

/** `UPDATE t SET <columns that changed> = <before> WHERE <key>`, row by row. */
function setBack({ table, key, updated }: TableUndo) {
  const stored = storedColumns(table);
  const all = table.columns.map((c) => c.name);
  const keyTypes = columnTypes(table, key);
  const built = [];
  for (const { before, after } of updated) {
    const changed = stored
      .map((name, i) => ({ name, i, at: all.indexOf(name) }))
      .filter(({ i, at }) => !sameBytes(before[i], after[at]));
    if (changed.length === 0) continue;
    const b = new UndoBuilder().text(`UPDATE ${tableName(table)} SET `);
    changed.forEach(({ name, i }, n) => {
      const column = table.columns.find((c) => c.name === name)!;
      if (column.identity === 'a') {
        throw new Error(
          `identity column ${quoteIdent(name)} of ${tableName(table)} (GENERATED ALWAYS) ` +
            'changed, and an undo cannot set it back',
        );
      }
      b.text(`${n === 0 ? '' : ', '}${quoteIdent(name)} = `).value(before[i]!, column.type);
    });
    b.text(' WHERE ');
    matchKey(
      b,
      key,
      key.map((k) => after[all.indexOf(k)]!),
      keyTypes,
    );
    built.push(b.finish());
  }
  return built;
}

function afterImagesOf({ table, key, inserted, updated, deleted }: TableUndo): AfterImage[] {
  const all = table.columns.map((c) => c.name);
  const oidsOf = (columns: readonly string[], row: CapturedRow | undefined) =>
    columns.map((c, i) => row?.[i]?.oid ?? table.columns.find((m) => m.name === c)?.typeOid ?? 0);
  const images: AfterImage[] = [];
  const image = (state: 'present' | 'absent', columns: string[], rows: CapturedRow[]) => {
    if (rows.length === 0) return;
    images.push({
      schema: table.schema,
      table: table.name,
      state,
      key,
      columns,
      oids: oidsOf(columns, rows[0]),
      rows: afterImageRows(rows),
    });
  };
  image('present', all, inserted);
  // An updated row is checked on its key and the columns the undo sets back.
  const changed = changedColumns(table, updated).filter((c) => !key.includes(c));
  const columns = [...key, ...changed];
  const at = columns.map((c) => all.indexOf(c));
  const stored = storedColumns(table);
  const rows = updated
    .filter(({ before, after }) =>
      stored.some((c, i) => !sameBytes(before[i], after[all.indexOf(c)])),
    )
    .map(({ after }) => at.map((i) => after[i]!));
  image('present', columns, rows);
  const keyAt = key.map((k) => stored.indexOf(k));
  image('absent', key, keyAtRows(deleted, keyAt));
  return images;
}

/** Indexes of `tables`, each after the tables it references (cycles: as found). */
function parentsFirstTables(tables: readonly TableMeta[]): number[] {
  const pending = tables.map((_, i) => i);
  const done = new Set<number>();
  const order: number[] = [];
  const indexOf = (schema: string, name: string) =>
    tables.findIndex((t) => t.schema === schema && t.name === name);
  while (pending.length > 0) {
    let at = pending.findIndex((i) =>
      tables[i]!.foreignKeys.every((fk) => {
        const parent = indexOf(fk.referencedSchema, fk.referencedTable);
        return parent < 0 || parent === i || done.has(parent);
      }),
    );
    if (at < 0) at = 0;
    const [next] = pending.splice(at, 1);
    done.add(next!);
    order.push(next!);
  }
  return order;
}
