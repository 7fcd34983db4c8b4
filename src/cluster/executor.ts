import type { Identity } from '../auth/identity.ts';
import type { ConsistencyOptions, ConsistencyReport } from './consistency.ts';

export interface ExecuteResult {
  /** Audit entry ids of the statements executed, in order. */
  queryIds: number[];
  /** Command tag of the last statement, e.g. `INSERT 0 1`. */
  commandTag: string;
  /** Rows returned by the last statement, as text values by column name (reads only). */
  rows: Record<string, string | null>[];
}

export interface Conflict {
  table: string;
  key: Record<string, string | null>;
  columns: string[];
  reason: string;
}

export interface RollbackResult {
  /** Audit entry id of the rollback itself; undefined on a dry run. */
  queryId?: number;
  /** The undo SQL as people read it. */
  sql: string;
  conflicts: Conflict[];
  executed: boolean;
}

/** What a larger undo (a client transaction, or a cluster back to a point) did or would do. */
export interface GroupRollbackResult extends RollbackResult {
  /** The entries undone (or to undo, on a dry run), newest first. */
  rolledBack: number[];
  /** The rollback entries recorded, one per entry undone, in one commit; empty on a dry run. */
  queryIds: number[];
}

/** Which changes a larger undo covers. */
export type RollbackTarget = { transaction: string } | { cluster: string; toQueryId: number };

export interface BackendStatus {
  name: string;
  healthy: boolean;
  error?: string;
}

export interface ClusterStatus {
  name: string;
  backends: BackendStatus[];
  sessions: number;
}

/**
 * What the admin API needs from the proxy: run SQL and undo audited changes on a cluster
 * the same way a client session would (authorized, captured, fanned out, audited).
 * The proxy implements it; the entry point hands it to the admin API.
 */
export interface ClusterExecutor {
  execute(
    identity: Identity,
    cluster: string,
    sql: string,
    options?: { rollbackOverride?: string },
  ): Promise<ExecuteResult>;
  rollback(
    identity: Identity,
    queryId: number,
    options?: { force?: boolean; dryRun?: boolean },
  ): Promise<RollbackResult>;
  /**
   * Undoes several audited changes at once, newest first, in one transaction on every backend:
   * those of a client transaction, or every change on a cluster after an entry.
   */
  rollbackMany?(
    identity: Identity,
    target: RollbackTarget,
    options?: { force?: boolean; dryRun?: boolean },
  ): Promise<GroupRollbackResult>;
  status(): ClusterStatus[];
  /** Compares the backends of a cluster table by table; absent where the proxy offers no check. */
  consistency?: (cluster: string, options?: ConsistencyOptions) => Promise<ConsistencyReport>;
}
