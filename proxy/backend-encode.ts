import type { SqlError } from '../src/errors.ts';
import type { FieldDescription } from './backend-decode.ts';
import { Auth, BackendCode, type TransactionStatus } from './codes.ts';
import { MessageWriter } from './writer.ts';

/**
 * Backend messages the proxy writes to its clients.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

function fixed(build: (w: MessageWriter) => void): Buffer {
  const w = new MessageWriter(16);
  build(w);
  return w.take();
}

export const readyForQuery: Record<TransactionStatus, Buffer> = {
  I: fixed((w) => w.begin(BackendCode.ReadyForQuery).int8(0x49).end()),
  T: fixed((w) => w.begin(BackendCode.ReadyForQuery).int8(0x54).end()),
  E: fixed((w) => w.begin(BackendCode.ReadyForQuery).int8(0x45).end()),
};

export const parseComplete = fixed((w) => w.begin(BackendCode.ParseComplete).end());
export const bindComplete = fixed((w) => w.begin(BackendCode.BindComplete).end());
export const closeComplete = fixed((w) => w.begin(BackendCode.CloseComplete).end());
export const noData = fixed((w) => w.begin(BackendCode.NoData).end());
export const emptyQueryResponse = fixed((w) => w.begin(BackendCode.EmptyQueryResponse).end());
export const authenticationOk = fixed((w) =>
  w.begin(BackendCode.Authentication).int32(Auth.Ok).end(),
);
export const authenticationCleartextPassword = fixed((w) =>
  w.begin(BackendCode.Authentication).int32(Auth.CleartextPassword).end(),
);
/** The single byte that answers SSLRequest or GSSENCRequest with "not supported". */
export const refuseEncryption = Buffer.from('N');

export function parameterStatus(w: MessageWriter, name: string, value: string): MessageWriter {
  return w.begin(BackendCode.ParameterStatus).cstring(name).cstring(value).end();
}

export function backendKeyData(
  w: MessageWriter,
  processId: number,
  secretKey: number,
): MessageWriter {
  return w.begin(BackendCode.BackendKeyData).int32(processId).int32(secretKey).end();
}

export function commandComplete(w: MessageWriter, tag: string): MessageWriter {
  return w.begin(BackendCode.CommandComplete).cstring(tag).end();
}

export function rowDescription(
  w: MessageWriter,
  fields: readonly FieldDescription[],
): MessageWriter {
  w.begin(BackendCode.RowDescription).int16(fields.length);
  for (const f of fields) {
    w.cstring(f.name).int32(f.tableOid).int16(f.columnId).int32(f.typeOid);
    w.int16(f.typeSize).int32(f.typeModifier).int16(f.format);
  }
  return w.end();
}

export function dataRow(w: MessageWriter, values: readonly (Buffer | null)[]): MessageWriter {
  w.begin(BackendCode.DataRow).int16(values.length);
  for (const value of values) w.value(value);
  return w.end();
}

export function negotiateProtocolVersion(
  w: MessageWriter,
  minor: number,
  unrecognized: readonly string[],
): MessageWriter {
  w.begin(BackendCode.NegotiateProtocolVersion).int32(minor).int32(unrecognized.length);
  for (const option of unrecognized) w.cstring(option);
  return w.end();
}

/** ErrorResponse (or NoticeResponse) with every field the error carries. */
export function errorResponse(
  w: MessageWriter,
  error: SqlError,
  code: number = BackendCode.ErrorResponse,
): MessageWriter {
  w.begin(code);
  const fields: Record<string, string> = {
    ...error.fields,
    S: error.severity,
    V: error.severity,
    C: error.code,
    M: error.message,
  };
  if (error.detail !== undefined) fields['D'] = error.detail;
  if (error.hint !== undefined) fields['H'] = error.hint;
  for (const [key, value] of Object.entries(fields)) w.int8(key.charCodeAt(0)).cstring(value);
  return w.int8(0).end();
}

export function noticeResponse(
  w: MessageWriter,
  severity: 'WARNING' | 'NOTICE',
  code: string,
  message: string,
): MessageWriter {
  w.begin(BackendCode.NoticeResponse);
  for (const [key, value] of [
    ['S', severity],
    ['V', severity],
    ['C', code],
    ['M', message],
  ]) {
    w.int8((key as string).charCodeAt(0)).cstring(value as string);
  }
  return w.int8(0).end();
}

export function parameterDescription(w: MessageWriter, types: readonly number[]): MessageWriter {
  w.begin(BackendCode.ParameterDescription).int16(types.length);
  for (const oid of types) w.int32(oid | 0);
  return w.end();
}
