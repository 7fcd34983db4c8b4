import { SqlError, SqlState } from '../src/errors.ts';
import { FrontendCode, StartupCode } from './codes.ts';
import { BodyReader, type Frame } from './framing.ts';

/** Decoded frontend messages, named as in the protocol documentation. */
export type StartupMessage =
  | { type: 'ssl' }
  | { type: 'gssenc' }
  | { type: 'cancel'; processId: number; secretKey: number }
  | { type: 'startup'; major: number; minor: number; parameters: Record<string, string> };

export interface ParseMessage {
  type: 'parse';
  name: string;
  sql: string;
  paramTypes: number[];
}

export interface BindMessage {
  type: 'bind';
  portal: string;
  statement: string;
  paramFormats: number[];
  params: (Buffer | null)[];
  resultFormats: number[];
}

export type FrontendMessage =
  | { type: 'query'; sql: string }
  | ParseMessage
  | BindMessage
  | { type: 'describe'; target: 'S' | 'P'; name: string }
  | { type: 'execute'; portal: string; maxRows: number }
  | { type: 'close'; target: 'S' | 'P'; name: string }
  | { type: 'sync' }
  | { type: 'flush' }
  | { type: 'terminate' }
  | { type: 'password'; data: Buffer }
  | { type: 'copyData'; data: Buffer }
  | { type: 'copyDone' }
  | { type: 'copyFail'; message: string }
  | { type: 'functionCall' };

/** https://www.postgresql.org/docs/current/protocol-message-formats.html (StartupMessage, SSLRequest...) */
export function decodeStartup(frame: Frame): StartupMessage {
  const reader = new BodyReader(frame.body);
  const code = reader.int32();
  switch (code) {
    case StartupCode.SSLRequest:
      return { type: 'ssl' };
    case StartupCode.GSSENCRequest:
      return { type: 'gssenc' };
    case StartupCode.CancelRequest:
      return { type: 'cancel', processId: reader.int32(), secretKey: reader.int32() };
  }
  const major = code >> 16;
  const minor = code & 0xffff;
  if (major !== 3) {
    throw new SqlError(
      SqlState.FEATURE_NOT_SUPPORTED,
      `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`,
      { severity: 'FATAL' },
    );
  }
  const parameters: Record<string, string> = {};
  while (!reader.done) {
    const name = reader.cstring();
    if (name === '') break;
    parameters[name] = reader.cstring();
  }
  return { type: 'startup', major, minor, parameters };
}

function target(byte: number): 'S' | 'P' {
  if (byte === 0x53) return 'S';
  if (byte === 0x50) return 'P';
  throw new SqlError(
    SqlState.PROTOCOL_VIOLATION,
    `invalid Describe/Close target '${String.fromCharCode(byte)}'`,
  );
}

export function decodeFrontend(frame: Frame): FrontendMessage {
  const reader = new BodyReader(frame.body);
  switch (frame.code) {
    case FrontendCode.Query:
      return { type: 'query', sql: reader.sqlText() };
    case FrontendCode.Parse: {
      const name = reader.cstring();
      const sql = reader.sqlText();
      const count = reader.int16();
      const paramTypes: number[] = [];
      for (let i = 0; i < count; i++) paramTypes.push(reader.int32() >>> 0);
      return { type: 'parse', name, sql, paramTypes };
    }
    case FrontendCode.Bind: {
      const portal = reader.cstring();
      const statement = reader.cstring();
      const paramFormats: number[] = [];
      for (let i = reader.int16(); i > 0; i--) paramFormats.push(reader.int16());
      const params: (Buffer | null)[] = [];
      for (let i = reader.int16(); i > 0; i--) params.push(reader.value());
      const resultFormats: number[] = [];
      for (let i = reader.int16(); i > 0; i--) resultFormats.push(reader.int16());
      return { type: 'bind', portal, statement, paramFormats, params, resultFormats };
    }
    case FrontendCode.Describe:
      return { type: 'describe', target: target(reader.int8()), name: reader.cstring() };
    case FrontendCode.Execute:
      return { type: 'execute', portal: reader.cstring(), maxRows: reader.int32() };
    case FrontendCode.Close:
      return { type: 'close', target: target(reader.int8()), name: reader.cstring() };
    case FrontendCode.Sync:
      return { type: 'sync' };
    case FrontendCode.Flush:
      return { type: 'flush' };
    case FrontendCode.Terminate:
      return { type: 'terminate' };
    case FrontendCode.Password:
      return { type: 'password', data: frame.body };
    case FrontendCode.CopyData:
      return { type: 'copyData', data: frame.body };
    case FrontendCode.CopyDone:
      return { type: 'copyDone' };
    case FrontendCode.CopyFail:
      return { type: 'copyFail', message: reader.cstring() };
    case FrontendCode.FunctionCall:
      return { type: 'functionCall' };
  }
  throw new SqlError(
    SqlState.PROTOCOL_VIOLATION,
    `invalid frontend message type ${frame.code} ('${String.fromCharCode(frame.code)}')`,
    { severity: 'FATAL' },
  );
}
