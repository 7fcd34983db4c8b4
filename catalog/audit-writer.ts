/**
 * Writing audit entries: with a commit decision on the write path, or batched for entries
 * that changed nothing.
 */
import { type SQL, sql } from 'drizzle-orm';
import type { AuditEntryInput } from '../src/cluster/audit.ts';
import { QoError } from '../src/errors.ts';
import type { Logger } from '../src/log.ts';
import { type AuditInsert, insertEntriesSql, toAuditInsert } from './audit-rows.ts';
import { type CatalogDb, rootMessage } from './connect.ts';
import { auditEntries, commitDecisions } from './schema.ts';

/**
 * Entries per INSERT of a batch. One statement can hold any number (they travel as one jsonb
 * parameter); this bounds the size of one statement and the entries one failure rejects.
 */
const ROWS_PER_STATEMENT = 1000;

/**
 * Inserts the entries and the decision and marks the entries they roll back. Without rollback
 * entries this is one statement: a single statement is atomic, so no BEGIN and COMMIT round
 * trips. With them it runs in a transaction that is rolled back, recording nothing, when an
 * entry named by `rollbackOf` was already rolled back: that is what keeps two rollbacks of one
 * change, racing in different sessions or proxy instances, from both committing. Ids are drawn
 * in input order, so sorting them gives the entries' ids in input order.
 */
export async function recordCommit(
  db: CatalogDb,
  gid: string | null,
  cluster: string,
  entries: AuditEntryInput[],
): Promise<number[]> {
  try {
    if (entries.length === 0) {
      if (gid !== null) await db.insert(commitDecisions).values({ gid, cluster });
      return [];
    }
    const rows = entries.map(toAuditInsert);
    const decided =
      gid === null
        ? sql``
        : sql`, decided AS (
          INSERT INTO ${commitDecisions} (gid, cluster) VALUES (${gid}, ${cluster}))`;
    if (!rows.some((row) => row.rollbackOf != null)) {
      const result = await db.execute<{ id: string | number }>(
        sql`WITH inserted AS (${insertEntriesSql(rows)} RETURNING id)${decided}
          SELECT id FROM inserted ORDER BY id`,
      );
      return idsOf(result);
    }
    return await db.transaction(async (tx) => {
      const result = await tx.execute<Marking>(markingSql(rows, decided));
      const refused = (result as unknown as { rows: Marking[] }).rows.find(
        (row) => row.entry !== null,
      );
      if (refused !== undefined) {
        throw new QoError(
          'ROLLBACK_UNAVAILABLE',
          `query ${refused.entry} was already rolled back by query ${refused.by}`,
        );
      }
      return idsOf(result);
    });
  } catch (cause) {
    if (cause instanceof QoError) throw cause;
    // NOTE: A connection lost while the statement commits leaves the outcome unknown; a
    // caller holding prepared transactions should ask decisionFor(gid) before rolling back.
    throw new QoError('CATALOG_FAILURE', `cannot record the commit: ${rootMessage(cause)}`, {
      cause,
    });
  }
}

/** A row of `markingSql`: an inserted id, and the entry it could not mark, if any. */
type Marking = {
  id: string | number;
  entry: string | number | null;
  by: string | number | null;
};

/**
 * Inserts rollback entries and marks the entries they undo. An entry whose `rolled_back_by`
 * is set keeps it, unless the rollback named there was itself rolled back (the change is in
 * effect again); such an entry comes back in `entry`, with the rollback that holds it in `by`.
 * A concurrent mark waits on the row lock, and PostgreSQL then evaluates SET on the row as
 * committed (READ COMMITTED), so the later of two marks sees the earlier one.
 */
// NOTE: The UPDATE sees the table as it was before this statement, so an entry that rolls
// back another entry of the same call does not mark it.
function markingSql(rows: AuditInsert[], decided: SQL): SQL {
  return sql`WITH inserted AS (${insertEntriesSql(rows)} RETURNING id, rollback_of),
    marked AS (
      UPDATE ${auditEntries} AS target
      SET rolled_back_by = CASE
        WHEN target.rolled_back_by IS NULL OR EXISTS (
          SELECT 1 FROM ${auditEntries} AS earlier
          WHERE earlier.id = target.rolled_back_by AND earlier.rolled_back_by IS NOT NULL)
        THEN inserted.id
        ELSE target.rolled_back_by END
      FROM inserted WHERE target.id = inserted.rollback_of
      RETURNING target.id AS entry, target.rolled_back_by AS by, inserted.id AS rollback)${decided}
    SELECT inserted.id, marked.entry, marked.by
    FROM inserted LEFT JOIN marked ON marked.rollback = inserted.id AND marked.by <> inserted.id
    ORDER BY inserted.id`;
}

/** Ids from a raw result: node-postgres returns int8 as text, PGlite as a number. */
function idsOf(result: unknown): number[] {
  const rows = (result as { rows: { id: string | number }[] }).rows;
  return rows.map((row) => Number(row.id)).sort((a, b) => a - b);
}

interface Pending {
  row: AuditInsert;
  /** Settles with the entry; never rejects. */
  settled: Promise<unknown>;
  resolve(id: number): void;
  reject(error: unknown): void;
}

export interface LaterQueueOptions {
  /** Longest an entry waits before its batch is written. */
  delayMs: number;
  /** Entries that trigger a write at once. */
  batchSize: number;
  /** Entries waiting beyond this are refused, so a catalog that is down cannot exhaust memory. */
  maxQueued: number;
}

/**
 * Entries that changed nothing, written in multi-row INSERTs off the hot path: a batch is
 * written once `batchSize` entries wait or the oldest has waited `delayMs`. One write runs at a
 * time; entries arriving meanwhile join the next, larger INSERT, so a backlog drains in few
 * statements. Ids follow submission order.
 */
export class LaterQueue {
  readonly #db: CatalogDb;
  readonly #logger: Logger;
  readonly #options: LaterQueueOptions;
  #queue: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** The running write loop, if any. */
  #writing: Promise<void> | undefined;
  /** Write whatever waits, full batch or not (timer fired, flush or close). */
  #drain = false;
  #closed = false;
  /** The most recently queued entry: once it settles, every earlier one has. */
  #last: Promise<unknown> = Promise.resolve();
  /** Multi-row INSERTs issued so far, for tests and metrics. */
  inserts = 0;

  constructor(db: CatalogDb, logger: Logger, options: LaterQueueOptions) {
    this.#db = db;
    this.#logger = logger;
    this.#options = options;
  }

  add(entry: AuditEntryInput): Promise<number> {
    let settle!: Pick<Pending, 'resolve' | 'reject'>;
    const promise = new Promise<number>((resolve, reject) => {
      settle = { resolve, reject };
    });
    // Callers may drop this promise: a failed write is logged here and must not surface as an
    // unhandled rejection that ends the process. Awaiting callers still see the error.
    const settled = promise.catch(() => {});
    if (this.#closed) {
      settle.reject(new QoError('CATALOG_FAILURE', 'the catalog is closed'));
    } else if (this.#queue.length >= this.#options.maxQueued) {
      settle.reject(
        new QoError('CATALOG_FAILURE', 'too many audit entries waiting for the catalog'),
      );
    } else {
      this.#queue.push({ row: toAuditInsert(entry), settled, ...settle });
      this.#last = settled;
      if (this.#queue.length >= this.#options.batchSize) this.#start(false);
      else this.#timer ??= setTimeout(() => this.#start(true), this.#options.delayMs);
    }
    return promise;
  }

  /** Writes every entry queued so far; resolves once they are written (or failed). */
  async flush(): Promise<void> {
    const last = this.#last;
    this.#start(true);
    await last;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  #start(drain: boolean): void {
    if (drain) {
      this.#drain = true;
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#writing ??= this.#run().finally(() => {
      this.#writing = undefined;
    });
  }

  async #run(): Promise<void> {
    while (
      this.#queue.length >= this.#options.batchSize ||
      (this.#drain && this.#queue.length > 0)
    ) {
      if (this.#queue.length <= ROWS_PER_STATEMENT) this.#drain = false;
      await this.#write(this.#queue.splice(0, ROWS_PER_STATEMENT));
    }
    this.#drain = false;
    if (this.#queue.length > 0) {
      this.#timer ??= setTimeout(() => this.#start(true), this.#options.delayMs);
    }
  }

  async #write(batch: Pending[]): Promise<void> {
    try {
      const ids = await this.#insert(batch.map((pending) => pending.row));
      for (const [index, pending] of batch.entries()) pending.resolve(ids[index]!);
    } catch (cause) {
      const message = rootMessage(cause);
      this.#logger.error('audit.batch_lost', { entries: batch.length, error: message });
      const error = new QoError('CATALOG_FAILURE', `cannot write audit entries: ${message}`, {
        cause,
      });
      for (const pending of batch) pending.reject(error);
    }
  }

  async #insert(rows: AuditInsert[]): Promise<number[]> {
    this.inserts++;
    return idsOf(await this.#db.execute(sql`${insertEntriesSql(rows)} RETURNING id`));
  }
}
