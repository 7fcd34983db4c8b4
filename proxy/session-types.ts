import type { ParsedStatement } from '../src/sql/parse.ts';
import type { BackendConnection } from './backend-connection.ts';

/** Where a session's replies go: a client socket, or a collector for internal sessions. */
export interface ClientChannel {
  write(data: Buffer): void;
  cork(): void;
  uncork(): void;
}

/** A statement prepared by the client (extended protocol), by name. */
export interface PreparedStatement {
  name: string;
  sql: string;
  paramTypes: number[];
  /** Null for an empty query string. */
  parsed: ParsedStatement | null;
}

export interface Portal {
  name: string;
  statement: PreparedStatement;
  paramFormats: number[];
  params: (Buffer | null)[];
  resultFormats: number[];
  /** The backend where the proxy bound it, for an Execute that resumes it. */
  backend?: BackendConnection;
}

/** Bound values of a statement run through the extended protocol. */
export interface Bound {
  paramTypes: number[];
  paramFormats: number[];
  params: (Buffer | null)[];
  resultFormats: number[];
  maxRows: number;
  /** The client used the simple protocol (SQL-level EXECUTE): it gets a RowDescription too. */
  describeRows?: boolean;
}

/** An error already handled: the client has been told, processing stops. */
export class Reported extends Error {}

/** Parameters the proxy keeps to itself: backends run read-only by default, clients see a writable server. */
export function isHiddenParameter(body: Buffer): boolean {
  return body.toString('latin1', 0, 29) === 'default_transaction_read_only';
}

/** Parses a one-dimensional text array such as `{public,"my schema"}`. */
export function parseTextArray(text: string): string[] {
  const inner = text.slice(1, -1);
  if (inner === '') return [];
  const items: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i] as string;
    if (quoted) {
      if (ch === '\\') current += inner[++i] ?? '';
      else if (ch === '"') quoted = false;
      else current += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      items.push(current);
      current = '';
    } else current += ch;
  }
  items.push(current);
  return items;
}
