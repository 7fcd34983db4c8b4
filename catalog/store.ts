/**
 * The catalog over Drizzle: audit entries, commit decisions, tokens and cluster metadata, on
 * embedded PGlite or on PostgreSQL.
 */
import { and, desc, eq, gt, type SQL, sql } from 'drizzle-orm';
import type { AuditEntry, AuditEntryInput, AuditQuery } from '../src/cluster/audit.ts';
import type { ClusterMetadata } from '../src/cluster/metadata.ts';
import type { CatalogConfig } from '../src/config/types.ts';
import { type Logger, silentLogger } from '../src/log.ts';
import { fromAuditRow } from './audit-rows.ts';
import { LaterQueue, type LaterQueueOptions, recordCommit } from './audit-writer.ts';
import { type CatalogConnection, type CatalogDb, connectCatalog } from './connect.ts';
import { saveMetadata } from './metadata-store.ts';
import { auditEntries, commitDecisions, tokens } from './schema.ts';
import type { Catalog, TokenRecord } from './types.ts';

export interface CatalogOptions {
  logger?: Logger;
  /** Batching of `recordLater`; defaults: 50 ms, 200 entries, 100,000 waiting. */
  batching?: Partial<LaterQueueOptions>;
}

const DEFAULT_LIMIT = 100;

/**
 * The claims of a `tokens` row that records only a revocation: jsonb `null`, which a token
 * issued here never has (its claims are an object).
 */
const REVOKED_ONLY = sql`'null'::jsonb`;
const MAX_LIMIT = 1000;

/** Opens the catalog, applying any migration it lacks, and returns it ready to use. */
export async function openCatalog(
  config: CatalogConfig,
  options: CatalogOptions = {},
): Promise<DrizzleCatalog> {
  const logger = options.logger ?? silentLogger;
  const connection = await connectCatalog(config, logger);
  return new DrizzleCatalog(connection, logger, {
    delayMs: 50,
    batchSize: 200,
    maxQueued: 100_000,
    ...options.batching,
  });
}

export class DrizzleCatalog implements Catalog {
  readonly #connection: CatalogConnection;
  readonly #db: CatalogDb;
  readonly #later: LaterQueue;
  #closing: Promise<void> | undefined;

  constructor(connection: CatalogConnection, logger: Logger, batching: LaterQueueOptions) {
    this.#connection = connection;
    this.#db = connection.db;
    this.#later = new LaterQueue(connection.db, logger, batching);
  }

  /** The Drizzle database, for reads the Catalog interface does not offer (admin, tests). */
  get db(): CatalogDb {
    return this.#db;
  }

  /** Which driver this catalog runs on. */
  get driver(): CatalogConfig['kind'] {
    return this.#connection.driver;
  }

  /** Multi-row INSERTs `recordLater` has issued so far. */
  get batchedInserts(): number {
    return this.#later.inserts;
  }

  recordCommit(gid: string | null, cluster: string, entries: AuditEntryInput[]): Promise<number[]> {
    return recordCommit(this.#db, gid, cluster, entries);
  }

  recordLater(entry: AuditEntryInput): Promise<number> {
    return this.#later.add(entry);
  }

  flush(): Promise<void> {
    return this.#later.flush();
  }

  async getEntry(id: number): Promise<AuditEntry | undefined> {
    const rows = await this.#db.select().from(auditEntries).where(eq(auditEntries.id, id));
    return rows[0] === undefined ? undefined : fromAuditRow(rows[0]);
  }

  async listEntries(query: AuditQuery): Promise<AuditEntry[]> {
    const conditions: SQL[] = [];
    if (query.cluster !== undefined) conditions.push(eq(auditEntries.cluster, query.cluster));
    if (query.user !== undefined) conditions.push(eq(auditEntries.userName, query.user));
    if (query.transaction !== undefined) {
      conditions.push(eq(auditEntries.transaction, query.transaction));
    }
    if (query.kind !== undefined) conditions.push(eq(auditEntries.kind, query.kind));
    if (query.afterId !== undefined) conditions.push(gt(auditEntries.id, query.afterId));
    const rows = await this.#db
      .select()
      .from(auditEntries)
      .where(and(...conditions))
      .orderBy(desc(auditEntries.id))
      .limit(clampLimit(query.limit));
    return rows.map(fromAuditRow);
  }

  async decisionFor(gid: string): Promise<'commit' | undefined> {
    const rows = await this.#db
      .select({ state: commitDecisions.state })
      .from(commitDecisions)
      .where(eq(commitDecisions.gid, gid));
    return rows[0]?.state === 'commit' ? 'commit' : undefined;
  }

  saveMetadata(metadata: ClusterMetadata): Promise<void> {
    return saveMetadata(this.#db, metadata);
  }

  async recordToken(token: Omit<TokenRecord, 'revokedAt'>): Promise<void> {
    await this.#db.insert(tokens).values({
      jti: token.jti,
      subject: token.subject,
      claims: token.claims,
      issuedAt: token.issuedAt,
      expiresAt: token.expiresAt,
    });
  }

  /** Newest first; revocations of tokens issued elsewhere are not listed. */
  async listTokens(): Promise<TokenRecord[]> {
    const rows = await this.#db
      .select()
      .from(tokens)
      .where(sql`${tokens.claims} <> ${REVOKED_ONLY}`)
      .orderBy(desc(tokens.issuedAt), tokens.jti);
    return rows.map((row) => ({ ...row }));
  }

  /**
   * Marks a token revoked (keeping the first revocation time). A `jti` never recorded (a token
   * minted by the CLI or printed at start) is recorded as a revocation alone. True when the
   * token was issued here.
   */
  async revokeToken(jti: string): Promise<boolean> {
    const revoked = await this.#db
      .insert(tokens)
      .values({ jti, subject: '', claims: REVOKED_ONLY, revokedAt: sql`now()` })
      .onConflictDoUpdate({
        target: tokens.jti,
        set: { revokedAt: sql`coalesce(${tokens.revokedAt}, excluded.revoked_at)` },
      })
      .returning({ claims: tokens.claims });
    return revoked[0]?.claims != null;
  }

  async isRevoked(jti: string): Promise<boolean> {
    const rows = await this.#db
      .select({ revokedAt: tokens.revokedAt })
      .from(tokens)
      .where(eq(tokens.jti, jti));
    return rows[0]?.revokedAt != null;
  }

  /** Flushes batched entries, then closes the connection; later calls wait for the same close. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#later.close();
      } finally {
        await this.#connection.close();
      }
    })();
    return this.#closing;
  }
}

function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_LIMIT;
  return Math.min(Math.max(Math.trunc(limit), 1), MAX_LIMIT);
}
