import type { AuditEntryInput, Rollback } from '../src/cluster/audit.ts';
import { SqlError, SqlState } from '../src/errors.ts';
import type { BackendConnection } from './backend-connection.ts';
import type { Collected } from './results.ts';
import type { Session } from './session.ts';
import type { Transaction } from './transaction.ts';

/** Runs the same SQL on several backends in parallel; a lost connection becomes an error result. */
async function onEach(
  backends: readonly BackendConnection[],
  sql: (b: BackendConnection) => string,
) {
  return Promise.all(
    backends.map((backend) =>
      backend
        .simple(sql(backend))
        .catch((error: SqlError) => ({ results: [], error, asides: [], status: 'I' }) as Collected),
    ),
  );
}

function firstError(
  backends: readonly BackendConnection[],
  replies: readonly Collected[],
): SqlError | undefined {
  for (let i = 0; i < replies.length; i++) {
    const reply = replies[i] as Collected;
    if (reply.error !== null) return reply.error;
    // PREPARE TRANSACTION in a transaction that already failed answers ROLLBACK.
    if (reply.results.at(-1)?.tag === 'ROLLBACK') {
      return new SqlError(
        SqlState.TRANSACTION_ROLLBACK,
        `backend ${backends[i]?.name} rolled the transaction back`,
      );
    }
  }
  return undefined;
}

/**
 * Commits a transaction on every backend it touched, atomically: PREPARE TRANSACTION on each,
 * then the audit entries and the commit decision in the catalog (the commit point), then
 * COMMIT PREPARED on each. A failure before the decision rolls back everywhere; after it, a
 * backend that did not finish is finished by recovery from the recorded decision.
 */
export async function commitTransaction(session: Session, txn: Transaction): Promise<void> {
  const backends = [...txn.begun];
  session.lastCommitIds = [];
  if (!txn.wrote) {
    const replies = await onEach(backends, () => 'COMMIT');
    const error = firstError(backends, replies);
    if (error !== undefined) throw error;
    return;
  }
  const entries = auditEntries(session, txn);
  const { cluster, catalog, logger } = session;
  if (cluster.twoPhase) {
    const gid = txn.gid;
    const prepared = await onEach(backends, () => `PREPARE TRANSACTION '${gid}'`);
    const error = firstError(backends, prepared);
    if (error !== undefined) {
      await onEach(backends, (b) => {
        const reply = prepared[backends.indexOf(b)];
        return reply?.error === null && reply.results.at(-1)?.tag === 'PREPARE TRANSACTION'
          ? `ROLLBACK PREPARED '${gid}'`
          : 'ROLLBACK';
      });
      throw error;
    }
    try {
      session.lastCommitIds = await catalog.recordCommit(gid, cluster.name, entries);
    } catch (cause) {
      await onEach(backends, () => `ROLLBACK PREPARED '${gid}'`);
      throw new SqlError(
        SqlState.TRANSACTION_ROLLBACK,
        `the change was rolled back on every backend: the audit catalog could not record it (${(cause as Error).message})`,
        { cause },
      );
    }
    const committed = await onEach(backends, () => `COMMIT PREPARED '${gid}'`);
    committed.forEach((reply, i) => {
      if (reply.error !== null) {
        logger.error('commit.incomplete', {
          cluster: cluster.name,
          session: session.id,
          gid,
          backend: backends[i]?.name,
          error: reply.error.message,
        });
      }
    });
  } else {
    // NOTE: without max_prepared_transactions the backends commit one after the other; a backend that fails after another committed leaves them different until repaired.
    for (const backend of backends) {
      const reply = await backend.simple('COMMIT');
      if (reply.error !== null) throw reply.error;
    }
    session.lastCommitIds = await catalog.recordCommit(null, cluster.name, entries);
  }
  if (txn.changesSchema) await cluster.refreshMetadata();
}

export async function rollbackTransaction(session: Session, txn: Transaction): Promise<void> {
  const backends = [...txn.begun].filter((b) => b.failure === undefined);
  await onEach(backends, () => 'ROLLBACK');
  session.lastCommitIds = [];
}

/**
 * The entries to record. An internal session that runs an undo records one entry for the
 * whole rollback, whose own rollback redoes the change (the undos of its statements, newest
 * first).
 */
function auditEntries(session: Session, txn: Transaction): AuditEntryInput[] {
  const override = session.rollbackOverride;
  const last = txn.entries.at(-1);
  if (override !== undefined && last !== undefined) {
    txn.entries[txn.entries.length - 1] = {
      ...last,
      rollback: { statements: [{ sql: override, params: [] }], display: override },
      reversibility: 'exact',
      reason: 'rollback given by the caller',
    };
  }
  const as = session.auditAs;
  if (as === undefined || txn.entries.length === 0) return txn.entries;
  const parts = [...txn.entries].reverse();
  const statements = parts.flatMap((entry) => entry.rollback?.statements ?? []);
  const display = parts.map((entry) => entry.rollback?.display ?? '').filter((text) => text !== '');
  const reversible = parts.every((entry) => entry.reversibility === 'exact');
  const rollback: Rollback | null =
    statements.length > 0 ? { statements, display: display.join('\n') } : null;
  const first = txn.entries[0] as AuditEntryInput;
  return [
    {
      ...first,
      kind: 'rollback',
      sql: as.sql,
      params: null,
      durationMs: txn.entries.reduce((sum, entry) => sum + entry.durationMs, 0),
      rowCount: txn.entries.reduce((sum, entry) => sum + (entry.rowCount ?? 0), 0),
      rollback,
      reversibility: rollback === null ? 'irreversible' : reversible ? 'exact' : 'partial',
      reason: parts.map((entry) => entry.reason).find((reason) => reason !== null) ?? null,
      rollbackOf: as.rollbackOf,
      afterImage: parts.map((entry) => entry.afterImage),
    },
  ];
}
