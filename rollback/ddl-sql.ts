import type { RangeVar } from 'libpg-query';
import { safeBuild } from './outcome.ts';
import { quoteIdent } from './template.ts';
import type { CapturedRow, CaptureOutcome, CapturePlan } from './types.ts';

/* Pieces of the schema-change undos (ddl.ts, ddl-alter.ts): SQL text, read-back rows, outcomes. */

/**
 * SQLSTATEs of the notices that say IF NOT EXISTS made a statement do nothing. (IF EXISTS on a
 * missing relation says so with 00000 and a translated message, so it is told another way.)
 */
export const SKIPPED = { duplicateSchema: '42P06', duplicateColumn: '42701' } as const;

/** Relation kinds a RENAME names, and the keyword its undo uses. */
export const RELATION_KEYWORDS: Record<string, string> = {
  OBJECT_TABLE: 'TABLE',
  OBJECT_VIEW: 'VIEW',
  OBJECT_MATVIEW: 'MATERIALIZED VIEW',
  OBJECT_SEQUENCE: 'SEQUENCE',
  OBJECT_INDEX: 'INDEX',
  OBJECT_FOREIGN_TABLE: 'FOREIGN TABLE',
};

/** True when a relation the transaction holds ACCESS EXCLUSIVE on is `c`. */
export const LOCKED_BY_US =
  "EXISTS (SELECT FROM pg_locks l WHERE l.locktype = 'relation' AND l.relation = c.oid " +
  "AND l.pid = pg_backend_pid() AND l.mode = 'AccessExclusiveLock' AND l.granted)";

/** `CreateSchemaStmt` -> `CREATE SCHEMA`, `AT_AlterColumnType` -> `ALTER COLUMN TYPE`. */
export function words(name: string): string {
  return name
    .replace(/^AT_/, '')
    .replace(/Stmt$/, '')
    .replace(/_/g, ' ')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toUpperCase();
}

/** A string literal, read the same whatever standard_conforming_strings is (as quote_literal). */
export function literal(text: string): string {
  const quoted = text.replaceAll("'", "''");
  return text.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

export function qualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/** The text `to_regclass` reads as the relation a statement names, resolved like the statement. */
export function regclass(relation: RangeVar): string {
  const name = relation.schemaname
    ? qualified(relation.schemaname, relation.relname ?? '')
    : quoteIdent(relation.relname ?? '');
  return `to_regclass(${literal(name)})`;
}

export function text(row: CapturedRow | undefined, column: number): string | null {
  return row?.[column]?.value?.toString('utf8') ?? null;
}

export function exact(statements: string[]): CaptureOutcome {
  return {
    rollback: {
      statements: statements.map((sql) => ({ sql, params: [] })),
      display: statements.map((sql) => `${sql};`).join('\n'),
    },
    reversibility: 'exact',
    reason: null,
    afterImage: null,
  };
}

export function nothing(reason: string): CaptureOutcome {
  return { rollback: null, reversibility: 'none', reason, afterImage: null };
}

export const TEMPORARY = 'temporary objects go away with the session that made them';

export function isTemporarySchema(schema: string): boolean {
  return /^pg_temp(_\d+)?$/.test(schema);
}

/** A plan whose statement `planDdl` fills in. */
export function plan(before: string[], after: string[], build: CapturePlan['build']): CapturePlan {
  return {
    before,
    statement: '',
    hiddenColumns: 0,
    clientReturns: false,
    after,
    build: safeBuild(build),
  };
}
