import { loadModule, parseSync } from 'libpg-query';
import { SqlError, SqlState } from '../errors.ts';
import { type Classification, classify } from './classify.ts';

/** One statement of a query string, parsed and classified. Shared through the cache: never mutate. */
export interface ParsedStatement {
  /** The statement's own text, without the separating semicolon. */
  sql: string;
  /** The parse tree node, e.g. `{ InsertStmt: {...} }`. */
  node: Record<string, unknown>;
  /** The node's type name, e.g. `InsertStmt`. */
  type: string;
  classification: Classification;
}

let loaded: Promise<void> | undefined;

/** Loads the libpg_query WebAssembly module; call once before `parseSql`. */
export function initParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

const CACHE_LIMIT = 5000;
const cache = new Map<string, readonly ParsedStatement[]>();

/**
 * Splits and parses a query string as PostgreSQL's grammar does (libpg_query, PostgreSQL 18).
 * Results are cached by text. A syntax error becomes a SqlError 42601 with its position.
 */
export function parseSql(text: string): readonly ParsedStatement[] {
  const hit = cache.get(text);
  if (hit !== undefined) return hit;
  const parsed = parseUncached(text);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(text, parsed);
  return parsed;
}

interface RawStmt {
  stmt?: Record<string, unknown>;
  stmt_location?: number;
  stmt_len?: number;
}

function parseUncached(text: string): readonly ParsedStatement[] {
  if (text.includes('\u0000')) {
    throw new SqlError('22021', 'invalid byte sequence for encoding "UTF8"');
  }
  if (text.trim() === '') return [];
  let result: { stmts?: RawStmt[] };
  try {
    result = parseSync(text) as { stmts?: RawStmt[] };
  } catch (error) {
    throw syntaxError(error, text);
  }
  // Locations are UTF-8 byte offsets; a missing stmt_len means "to the end of the string".
  const bytes = Buffer.from(text, 'utf8');
  const statements: ParsedStatement[] = [];
  for (const raw of result.stmts ?? []) {
    if (raw.stmt === undefined) continue;
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len === undefined ? bytes.length : start + raw.stmt_len;
    const sql = bytes.subarray(start, end).toString('utf8').trim();
    const type = Object.keys(raw.stmt)[0] ?? 'Unknown';
    statements.push({ sql, node: raw.stmt, type, classification: classify(raw.stmt) });
  }
  return statements;
}

function syntaxError(error: unknown, text: string): SqlError {
  const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
  const message = error instanceof Error ? error.message : String(error);
  const fields: Record<string, string> = {};
  if (details?.cursorPosition !== undefined) {
    // ErrorResponse positions are 1-based character indexes.
    fields['P'] = String(Math.min(details.cursorPosition, text.length) + 1);
  }
  return new SqlError(SqlState.SYNTAX_ERROR, message, { fields, cause: error });
}
