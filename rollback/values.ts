import type { UndoStatement, UndoValue } from '../src/cluster/audit.ts';
import { renderLiteral } from './display.ts';
import type { CapturedRow, CapturedValue } from './types.ts';

/**
 * OIDs below FirstNormalObjectId (16384) are fixed at initdb and name the same type on every
 * backend; user types (enums, composites, extension types) get different OIDs per database.
 * (https://www.postgresql.org/docs/current/system-catalog-initial-data.html)
 */
const FIRST_NORMAL_OBJECT_ID = 16384;

/**
 * True when a parameter may be declared with this OID on any backend of a cluster. Other values
 * are bound with an unspecified type and cast by name in the undo SQL, so each backend resolves
 * the type itself.
 */
export function isPortableOid(oid: number): boolean {
  return oid > 0 && oid < FIRST_NORMAL_OBJECT_ID;
}

/** A captured value as the audit catalog stores it: base64 of the binary value, plus a literal. */
export function toUndoValue(captured: CapturedValue, type: string): UndoValue {
  const value: UndoValue = {
    oid: captured.oid,
    type,
    binary: captured.value === null ? null : captured.value.toString('base64'),
  };
  const text = renderLiteral(captured.oid, captured.value);
  if (text !== undefined) value.text = text;
  return value;
}

/** What the proxy binds when it executes an undo statement: Parse types and binary values. */
export interface EncodedUndo {
  /** Parameter type OIDs for Parse; 0 (let the backend infer) for non-portable types. */
  types: number[];
  /** Parameter values for Bind, every one in binary format (format code 1). */
  values: (Buffer | null)[];
}

export function encodeUndo(stmt: UndoStatement): EncodedUndo {
  return {
    types: stmt.params.map((p) => (isPortableOid(p.oid) ? p.oid : 0)),
    values: stmt.params.map((p) => (p.binary === null ? null : Buffer.from(p.binary, 'base64'))),
  };
}

/** An identity for a tuple of values (a key), equal iff every value is byte-identical. */
export function tupleKey(values: readonly CapturedValue[]): string {
  return values.map((v) => (v.value === null ? '-' : v.value.toString('base64'))).join(',');
}

export function sameValue(a: CapturedValue, b: CapturedValue): boolean {
  if (a.value === null || b.value === null) return a.value === b.value;
  return a.oid === b.oid && a.value.equals(b.value);
}

/** The last `count` values of a row: the hidden columns the plan appended. */
export function hiddenPart(row: CapturedRow, count: number): CapturedRow {
  return row.length === count ? row : row.slice(row.length - count);
}

/**
 * The rows a change left, keyed the way its undo addresses them, for the conflict check a later
 * rollback runs: every row should still hold these values (`present`), or still be missing
 * (`absent`, after a DELETE: `columns` are the key and `rows` the deleted keys).
 */
export interface AfterImage {
  schema: string;
  table: string;
  state: 'present' | 'absent';
  /** Key columns that identify each row, in key order; each is also one of `columns`. */
  key: string[];
  columns: string[];
  oids: number[];
  /** Base64 of each binary value, null for SQL NULL, in `columns` order. */
  rows: (string | null)[][];
}

export function afterImageRows(rows: readonly CapturedRow[]): (string | null)[][] {
  return rows.map((row) => row.map((v) => (v.value === null ? null : v.value.toString('base64'))));
}
