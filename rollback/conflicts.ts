import type { UndoStatement } from '../src/cluster/audit.ts';
import type { Conflict } from '../src/cluster/executor.ts';
import type { TableMeta } from '../src/cluster/metadata.ts';
import { renderLiteral } from './display.ts';
import { columnTypes, type ResolveTable } from './table.ts';
import { chunk, columnList, rowsPerStatement, tableName, UndoBuilder } from './template.ts';
import type { CapturedRow, CapturedValue } from './types.ts';
import type { AfterImage } from './values.ts';

/*
 * Before a rollback runs, every row its change left is read again and compared, byte for byte
 * in binary format, with the after-image recorded when the change ran. A row changed, deleted
 * or inserted again since is a conflict: undoing over it would overwrite someone's later edit.
 */

/** One read of the current rows behind an after-image, with how to compare what it returns. */
export interface ConflictRead {
  statement: UndoStatement;
  compare(rows: readonly CapturedRow[]): Conflict[];
}

/** Every after-image of an audit entry: one, several (cascades, upserts), or nested (rollbacks). */
export function afterImages(recorded: unknown): AfterImage[] {
  if (Array.isArray(recorded)) return recorded.flatMap(afterImages);
  if (recorded !== null && typeof recorded === 'object' && 'state' in recorded) {
    return [recorded as AfterImage];
  }
  return [];
}

/**
 * The after-images that still describe the rows now: given the recorded after-images of several
 * changes, newest first, a row (or column) a newer change left is checked against that change's
 * image only, since the older change's image was overwritten by the newer change itself.
 */
export function latestImages(recordedNewestFirst: readonly unknown[]): AfterImage[] {
  const seen = new Map<string, Set<string> | 'row'>();
  const groups = new Map<string, AfterImage>();
  for (const image of recordedNewestFirst.flatMap(afterImages)) {
    const keyAt = image.key.map((k) => image.columns.indexOf(k));
    for (const row of image.rows) {
      const id = `${image.schema}.${image.table}|${keyAt.map((i) => row[i] ?? '-').join(',')}`;
      const before = seen.get(id);
      if (before === 'row') continue;
      let columns = image.columns;
      if (image.state === 'absent') {
        if (before !== undefined) continue;
        seen.set(id, 'row');
      } else {
        columns = image.columns.filter((c) => image.key.includes(c) || !before?.has(c));
        if (before !== undefined && columns.length === image.key.length) continue;
        const marked = before ?? new Set<string>();
        for (const c of columns) marked.add(c);
        seen.set(id, marked);
      }
      const group = `${image.schema}.${image.table}|${image.state}|${columns.join(',')}`;
      let target = groups.get(group);
      if (target === undefined) {
        target = {
          ...image,
          columns,
          oids: columns.map((c) => image.oids[image.columns.indexOf(c)] ?? 0),
          rows: [],
        };
        groups.set(group, target);
      }
      target.rows.push(columns.map((c) => row[image.columns.indexOf(c)] ?? null));
    }
  }
  return [...groups.values()];
}

/**
 * The reads that check the after-images of the given changes (newest first) against the rows as
 * they are now. A table that is gone from the metadata is itself a conflict (`missing`).
 */
export function conflictReads(
  recordedNewestFirst: readonly unknown[],
  resolve: ResolveTable,
): { reads: ConflictRead[]; missing: Conflict[] } {
  const reads: ConflictRead[] = [];
  const missing: Conflict[] = [];
  for (const image of latestImages(recordedNewestFirst)) {
    if (image.rows.length === 0) continue;
    const table = resolve(image.schema, image.table);
    const name = tableName({ schema: image.schema, name: image.table });
    if (table === undefined) {
      missing.push({ table: name, key: {}, columns: [], reason: 'the table no longer exists' });
      continue;
    }
    for (const rows of chunk(image.rows, rowsPerStatement(image.key.length))) {
      reads.push(readImage(table, image, rows));
    }
  }
  return { reads, missing };
}

function decode(image: AfterImage, row: (string | null)[]): CapturedRow {
  return row.map((v, i) => ({
    oid: image.oids[i] ?? 0,
    value: v === null ? null : Buffer.from(v, 'base64'),
  }));
}

function sameBytes(a: CapturedValue, b: CapturedValue): boolean {
  // OIDs of user types differ between backends; the bytes are what the column holds.
  if (a.value === null || b.value === null) return a.value === b.value;
  return a.value.equals(b.value);
}

function identity(values: readonly CapturedValue[]): string {
  return values.map((v) => (v.value === null ? '-' : v.value.toString('base64'))).join(',');
}

function readImage(
  table: TableMeta,
  image: AfterImage,
  encoded: (string | null)[][],
): ConflictRead {
  const keyAt = image.key.map((k) => image.columns.indexOf(k));
  const rows = encoded.map((row) => decode(image, row));
  const keys = rows.map((row) => keyAt.map((i) => row[i]!));
  const columns = image.state === 'present' ? image.columns : image.key;
  const b = new UndoBuilder().text(
    `SELECT ${columnList(columns)} FROM ${tableName(table)} WHERE (${columnList(image.key)}) IN (`,
  );
  const types = columnTypes(table, image.key);
  keys.forEach((key, i) => {
    b.text(i === 0 ? '(' : ', (')
      .values(key, types)
      .text(')');
  });
  const { statement } = b.text(')').finish();
  const name = tableName(table);
  const keyText = (key: readonly CapturedValue[]) =>
    Object.fromEntries(image.key.map((k, i) => [k, shown(key[i]!)]));

  return {
    statement,
    compare(current) {
      const now = new Map(current.map((row) => [identity(keyAt.map((i) => row[i]!)), row]));
      const conflicts: Conflict[] = [];
      rows.forEach((row, r) => {
        const key = keys[r]!;
        const found = now.get(identity(key));
        if (image.state === 'absent') {
          if (found !== undefined) {
            conflicts.push({
              table: name,
              key: keyText(key),
              columns: [],
              reason: 'the row was inserted again since',
            });
          }
          return;
        }
        if (found === undefined) {
          conflicts.push({
            table: name,
            key: keyText(key),
            columns: [],
            reason: 'the row was deleted or its key changed since',
          });
          return;
        }
        const changed = image.columns.filter((_, i) => !sameBytes(row[i]!, found[i]!));
        if (changed.length > 0) {
          conflicts.push({
            table: name,
            key: keyText(key),
            columns: changed,
            reason: 'the row was changed since',
          });
        }
      });
      return conflicts;
    },
  };
}

/** A value as people read it: the literal's text, else base64 of its binary form. */
function shown(value: CapturedValue): string | null {
  if (value.value === null) return null;
  const literal = renderLiteral(value.oid, value.value);
  if (literal === undefined) return value.value.toString('base64');
  const quoted = /^'((?:[^']|'')*)'(::.*)?$/.exec(literal);
  return quoted === null ? literal : quoted[1]!.replaceAll("''", "'");
}
