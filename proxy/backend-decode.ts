import { SqlError } from '../src/errors.ts';
import { BodyReader } from './framing.ts';

/** One column of a RowDescription. */
export interface FieldDescription {
  name: string;
  tableOid: number;
  columnId: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  /** 0 text, 1 binary. */
  format: number;
}

export function decodeRowDescription(body: Buffer): FieldDescription[] {
  const r = new BodyReader(body);
  const fields: FieldDescription[] = [];
  for (let count = r.int16(); count > 0; count--) {
    fields.push({
      name: r.cstring(),
      tableOid: r.int32() >>> 0,
      columnId: r.int16(),
      typeOid: r.int32() >>> 0,
      typeSize: r.int16(),
      typeModifier: r.int32(),
      format: r.int16(),
    });
  }
  return fields;
}

/** The values of a DataRow, as views into the message; null for SQL NULL. */
export function decodeDataRow(body: Buffer): (Buffer | null)[] {
  const r = new BodyReader(body);
  const values: (Buffer | null)[] = [];
  for (let count = r.int16(); count > 0; count--) values.push(r.value());
  return values;
}

export function decodeParameterDescription(body: Buffer): number[] {
  const r = new BodyReader(body);
  const types: number[] = [];
  for (let count = r.int16(); count > 0; count--) types.push(r.int32() >>> 0);
  return types;
}

export function decodeCommandComplete(body: Buffer): string {
  return new BodyReader(body).cstring();
}

/** ErrorResponse or NoticeResponse fields by code letter. */
export function decodeFields(body: Buffer): Record<string, string> {
  const r = new BodyReader(body);
  const fields: Record<string, string> = {};
  while (!r.done) {
    const code = r.int8();
    if (code === 0) break;
    fields[String.fromCharCode(code)] = r.cstring();
  }
  return fields;
}

/** A backend's ErrorResponse as an error the session can relay with every field intact. */
export function backendError(body: Buffer, context?: string): SqlError {
  const fields = decodeFields(body);
  const { S, V, C, M, D, H, ...rest } = fields;
  const severity = (V ?? S) === 'FATAL' || (V ?? S) === 'PANIC' ? 'FATAL' : 'ERROR';
  const message =
    context === undefined ? (M ?? 'unknown error') : `${context}: ${M ?? 'unknown error'}`;
  const options: ConstructorParameters<typeof SqlError>[2] = { severity, fields: rest };
  if (D !== undefined) options.detail = D;
  if (H !== undefined) options.hint = H;
  return new SqlError(C ?? 'XX000', message, options);
}

export function decodeParameterStatus(body: Buffer): [string, string] {
  const r = new BodyReader(body);
  return [r.cstring(), r.cstring()];
}

/** Rows affected, from a command tag such as `INSERT 0 3` or `UPDATE 2`; null when it has none. */
export function tagRowCount(tag: string): number | null {
  const last = tag.slice(tag.lastIndexOf(' ') + 1);
  return /^\d+$/.test(last) ? Number(last) : null;
}
