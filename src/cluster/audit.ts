import type { StatementClass } from '../sql/classify-types.ts';

/** How exactly an audited change can be undone. */
export type Reversibility = 'exact' | 'partial' | 'irreversible' | 'none';

/** What happened to an audited statement. */
export type Outcome = 'committed' | 'failed' | 'refused' | 'executed' | 'rolled_back';

/**
 * One value bound to an undo statement. Values travel in PostgreSQL's binary format
 * (base64 here) with their type OID, so they round-trip exactly whatever the session's
 * DateStyle, TimeZone or extra_float_digits were; `text` is for people only.
 */
export interface UndoValue {
  oid: number;
  /** Type name as `format_type` prints it, for casts in the displayed SQL. */
  type: string;
  /** Base64 of the binary value; null for SQL NULL. */
  binary: string | null;
  /** A literal for display, when the proxy can render this type; otherwise undefined. */
  text?: string;
}

/** One statement of an undo, with `$n` placeholders bound to `params`. */
export interface UndoStatement {
  sql: string;
  params: UndoValue[];
}

export interface Rollback {
  /** Statements to run, in order, inside one transaction on every backend. */
  statements: UndoStatement[];
  /** The same statements with the values written as literals, for people. */
  display: string;
}

/** An audit entry as the proxy hands it to the catalog. */
export interface AuditEntryInput {
  cluster: string;
  user: string;
  session: string;
  /** Id of the client transaction the statement ran in (shared by its statements), if any. */
  transaction: string | null;
  kind: StatementClass | 'rollback';
  sql: string;
  /** Bound parameters as text (or base64 for binary ones), null for the simple protocol. */
  params: (string | null)[] | null;
  outcome: Outcome;
  /** The error message when the outcome is failed or refused. */
  error: string | null;
  durationMs: number;
  /** Rows the statement affected or returned, from its command tag. */
  rowCount: number | null;
  commandTag: string | null;
  rollback: Rollback | null;
  reversibility: Reversibility;
  /** Why the rollback is partial or irreversible, or why there is none. */
  reason: string | null;
  /** When this entry is itself a rollback: the id of the entry it undid. */
  rollbackOf: number | null;
  /**
   * After-image of the rows the change left, keyed the way the undo addresses them,
   * compared before a later rollback runs (conflict check).
   */
  afterImage: unknown;
}

export interface AuditEntry extends AuditEntryInput {
  id: number;
  at: Date;
  /** Id of the entry that rolled this one back, if it was. */
  rolledBackBy: number | null;
}

export interface AuditQuery {
  cluster?: string;
  user?: string;
  transaction?: string;
  kind?: string;
  /** Only entries with an id greater than this. */
  afterId?: number;
  limit?: number;
}
