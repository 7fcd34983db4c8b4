/** Mapping between audit entries as the proxy sees them and rows of `audit_entries`. */

import { type SQL, sql } from 'drizzle-orm';
import type {
  AuditEntry,
  AuditEntryInput,
  Outcome,
  Reversibility,
  Rollback,
} from '../src/cluster/audit.ts';
import { auditEntries } from './schema.ts';

export type AuditRow = typeof auditEntries.$inferSelect;
export type AuditInsert = typeof auditEntries.$inferInsert;

export function toAuditInsert(entry: AuditEntryInput): AuditInsert {
  return {
    cluster: entry.cluster,
    userName: entry.user,
    session: entry.session,
    transaction: entry.transaction,
    kind: entry.kind,
    sql: entry.sql,
    params: entry.params,
    outcome: entry.outcome,
    error: entry.error,
    durationMs: entry.durationMs,
    rowCount: entry.rowCount,
    commandTag: entry.commandTag,
    rollback: entry.rollback,
    reversibility: entry.reversibility,
    reason: entry.reason,
    rollbackOf: entry.rollbackOf,
    // jsonb has no "undefined": an absent after-image is stored (and read back) as null.
    afterImage: entry.afterImage ?? null,
  };
}

export function fromAuditRow(row: AuditRow): AuditEntry {
  return {
    id: row.id,
    at: row.at,
    cluster: row.cluster,
    user: row.userName,
    session: row.session,
    transaction: row.transaction,
    kind: row.kind as AuditEntry['kind'],
    sql: row.sql,
    params: row.params,
    outcome: row.outcome as Outcome,
    error: row.error,
    durationMs: row.durationMs,
    rowCount: row.rowCount,
    commandTag: row.commandTag,
    rollback: row.rollback as Rollback | null,
    reversibility: row.reversibility as Reversibility,
    reason: row.reason,
    rollbackOf: row.rollbackOf,
    afterImage: row.afterImage,
    rolledBackBy: row.rolledBackBy,
  };
}

/** The columns an insert writes, in order; `id`, `at` and `rolled_back_by` take defaults. */
const WRITTEN = [
  'cluster',
  'userName',
  'session',
  'transaction',
  'kind',
  'sql',
  'params',
  'outcome',
  'error',
  'durationMs',
  'rowCount',
  'commandTag',
  'rollback',
  'reversibility',
  'reason',
  'rollbackOf',
  'afterImage',
] as const satisfies readonly (keyof AuditInsert)[];

const written = WRITTEN.map((key) => [key, auditEntries[key].name] as const);
const names = sql.join(
  written.map(([, name]) => sql.identifier(name)),
  sql`, `,
);
const definitions = sql.join(
  WRITTEN.map((key) => {
    const column = auditEntries[key];
    return sql`${sql.identifier(column.name)} ${sql.raw(column.getSQLType())}`;
  }),
  sql`, `,
);

/**
 * `INSERT ... SELECT` of many entries from one jsonb parameter, without RETURNING. Building a
 * multi-row VALUES list costs Drizzle ~50 us per row of proxy CPU and one bind parameter per
 * field (65535 at most); one JSON parameter costs a JSON.stringify and has no row limit.
 * Rows are inserted, and draw their ids, in array order.
 */
export function insertEntriesSql(rows: AuditInsert[]): SQL {
  const json = storable(
    JSON.stringify(
      rows.map((row) => Object.fromEntries(written.map(([key, name]) => [name, row[key] ?? null]))),
    ),
  );
  return sql`INSERT INTO ${auditEntries} (${names})
    SELECT ${names}
    FROM ROWS FROM (jsonb_to_recordset(${json}::jsonb) AS (${definitions}))
      WITH ORDINALITY AS entry(${names}, ord)
    ORDER BY entry.ord`;
}

/**
 * JSON.stringify escapes NUL as `\u0000` and a lone UTF-16 surrogate as `\udXXX` (a valid
 * pair it writes as is); jsonb refuses both, and one such character, say in the parameters
 * of a refused statement, would cost a whole batch its audit trail. They become U+FFFD. The
 * lookbehind skips an escaped backslash followed by the letters `u0000`.
 */
const UNSTORABLE = /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/g;

function storable(json: string): string {
  return json.replace(UNSTORABLE, '$1\\ufffd');
}
