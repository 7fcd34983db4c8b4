import { randomUUID } from 'node:crypto';
import type { AuditEntryInput } from '../src/cluster/audit.ts';
import type { BackendConnection } from './backend-connection.ts';

/**
 * A client transaction as the proxy sees it: explicit (BEGIN ... COMMIT) or implicit (one
 * Query string, or the messages up to one Sync). Backends join lazily, when a statement
 * first needs them; writes join every backend of the cluster.
 */
export class Transaction {
  readonly id = randomUUID();
  /** Backends with an open transaction for this one. */
  readonly begun = new Set<BackendConnection>();
  /** The backend that answers this transaction's reads (read your writes). */
  readBackend: BackendConnection | undefined;
  wrote = false;
  /** An error happened: PostgreSQL ignores everything but ROLLBACK until the block ends. */
  failed = false;
  changesSchema = false;
  /** Tables this transaction changed (schema.table), for captures that need to know. */
  readonly tables = new Set<string>();
  /** Audit entries of the changes made so far; written with the commit decision. */
  readonly entries: AuditEntryInput[] = [];
  /** NOTIFY statements, sent once the transaction has committed. */
  readonly notifies: string[] = [];
  readonly savepoints: { name: string; entries: number; notifies: number }[] = [];

  constructor(
    public explicit: boolean,
    /** The BEGIN sent to each backend as it joins; always read-write unless the client said otherwise. */
    public beginSql = 'BEGIN READ WRITE',
  ) {}
}
