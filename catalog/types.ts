import type { AuditEntry, AuditEntryInput, AuditQuery } from '../src/cluster/audit.ts';
import type { ClusterMetadata } from '../src/cluster/metadata.ts';

export interface TokenRecord {
  jti: string;
  subject: string;
  claims: unknown;
  issuedAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

/** The audit and metadata store. One implementation over Drizzle, on PGlite or PostgreSQL. */
export interface Catalog {
  /**
   * Writes the audit entries of a change together with its commit decision, in one catalog
   * transaction: once this returns, the change counts as committed. `gid` names the prepared
   * transaction on the backends (null when the cluster commits without two-phase commit).
   * Entries with `rollbackOf` also mark the entry they undo as rolled back. Returns ids in order.
   */
  recordCommit(gid: string | null, cluster: string, entries: AuditEntryInput[]): Promise<number[]>;
  /** Entries that changed nothing (reads, failures, refusals): batched off the hot path. */
  recordLater(entry: AuditEntryInput): Promise<number>;
  /** Writes every batched entry now. */
  flush(): Promise<void>;
  getEntry(id: number): Promise<AuditEntry | undefined>;
  /** Newest first. */
  listEntries(query: AuditQuery): Promise<AuditEntry[]>;
  /** The recorded decision for a prepared transaction, for recovery after a crash. */
  decisionFor(gid: string): Promise<'commit' | undefined>;
  /** Replaces the stored metadata of a cluster. */
  saveMetadata(metadata: ClusterMetadata): Promise<void>;
  recordToken(token: Omit<TokenRecord, 'revokedAt'>): Promise<void>;
  listTokens(): Promise<TokenRecord[]>;
  /**
   * Revokes by `jti`, recording the revocation even for a token not issued through
   * `recordToken`. True when the token was recorded (issued here).
   */
  revokeToken(jti: string): Promise<boolean>;
  isRevoked(jti: string): Promise<boolean>;
  close(): Promise<void>;
}
