import { FrontendCode } from './codes.ts';
import type { MessageWriter } from './writer.ts';

/**
 * Frontend messages the proxy sends to its backends. Each function appends one message to the
 * writer, so a pipeline of several goes out in one socket write.
 */
export function startup(w: MessageWriter, parameters: Record<string, string>): MessageWriter {
  w.begin(0).int32(196608);
  for (const [name, value] of Object.entries(parameters)) w.cstring(name).cstring(value);
  return w.int8(0).end();
}

export function query(w: MessageWriter, sql: string): MessageWriter {
  return w.begin(FrontendCode.Query).cstring(sql).end();
}

export function parse(
  w: MessageWriter,
  name: string,
  sql: string,
  types: readonly number[],
): MessageWriter {
  w.begin(FrontendCode.Parse).cstring(name).cstring(sql).int16(types.length);
  for (const oid of types) w.int32(oid | 0);
  return w.end();
}

export function bind(
  w: MessageWriter,
  portal: string,
  statement: string,
  paramFormats: readonly number[],
  params: readonly (Buffer | null)[],
  resultFormats: readonly number[],
): MessageWriter {
  w.begin(FrontendCode.Bind).cstring(portal).cstring(statement).int16(paramFormats.length);
  for (const format of paramFormats) w.int16(format);
  w.int16(params.length);
  for (const param of params) w.value(param);
  w.int16(resultFormats.length);
  for (const format of resultFormats) w.int16(format);
  return w.end();
}

export function describe(w: MessageWriter, target: 'S' | 'P', name: string): MessageWriter {
  return w.begin(FrontendCode.Describe).int8(target.charCodeAt(0)).cstring(name).end();
}

export function execute(w: MessageWriter, portal: string, maxRows: number): MessageWriter {
  return w.begin(FrontendCode.Execute).cstring(portal).int32(maxRows).end();
}

export function close(w: MessageWriter, target: 'S' | 'P', name: string): MessageWriter {
  return w.begin(FrontendCode.Close).int8(target.charCodeAt(0)).cstring(name).end();
}

export function sync(w: MessageWriter): MessageWriter {
  return w.begin(FrontendCode.Sync).end();
}

export function flush(w: MessageWriter): MessageWriter {
  return w.begin(FrontendCode.Flush).end();
}

export function terminate(w: MessageWriter): MessageWriter {
  return w.begin(FrontendCode.Terminate).end();
}

export function password(w: MessageWriter, data: Buffer | string): MessageWriter {
  w.begin(FrontendCode.Password);
  if (typeof data === 'string') w.cstring(data);
  else w.bytes(data);
  return w.end();
}

export function saslInitial(w: MessageWriter, mechanism: string, data: Buffer): MessageWriter {
  return w.begin(FrontendCode.Password).cstring(mechanism).int32(data.length).bytes(data).end();
}
