import { encodeUndo } from '../rollback/plan.ts';
import type { AuditEntryInput, Rollback } from '../src/cluster/audit.ts';
import { QoError, SqlError, SqlState } from '../src/errors.ts';
import type { BackendConnection } from './backend-connection.ts';
import * as fe from './frontend-encode.ts';
import { gidFor, inFlight } from './instance.ts';
import { type Collected, collect, collected } from './results.ts';
import type { Session } from './session.ts';
import type { Transaction } from './transaction.ts';
import { MessageWriter } from './writer.ts';

/**
 * Fault injection for the crash tests. `QO_FAULT=<step>[@<n>]` makes this process kill itself
 * with SIGKILL at that step of its n-th two-phase commit (default: the first):
 * - `after-prepare-one`: the first backend has prepared, the others have not been asked;
 * - `after-prepare-all`: every backend has prepared, no decision is recorded;
 * - `after-decision`: the decision is recorded, no backend has committed;
 * - `after-commit-one`: the first backend has committed, the others have not been asked.
 * Read once when the module loads; unset, a commit pays one comparison with undefined.
 */
const FAULT_STEPS = [
  'after-prepare-one',
  'after-prepare-all',
  'after-decision',
  'after-commit-one',
] as const;
type FaultStep = (typeof FAULT_STEPS)[number];
const FAULT = parseFault(process.env['QO_FAULT']);
let twoPhaseCommits = 0;

function parseFault(value: string | undefined): { step: FaultStep; nth: number } | undefined {
  if (value === undefined || value === '') return undefined;
  const [step, nth = '1'] = value.split('@');
  if (!FAULT_STEPS.includes(step as FaultStep) || !/^[1-9]\d*$/.test(nth)) {
    throw new Error(
      `QO_FAULT=${value}: expected one of ${FAULT_STEPS.join(', ')}, optionally followed by @<n>`,
    );
  }
  return { step: step as FaultStep, nth: Number(nth) };
}

/** The step at which this commit is to crash, if it is the chosen one. */
function nextFault(fault: { step: FaultStep; nth: number }): FaultStep | undefined {
  twoPhaseCommits++;
  return twoPhaseCommits === fault.nth ? fault.step : undefined;
}

function crash(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: SIGKILL was sent to this process');
}

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

/** The first failure among the replies, naming the backend it came from. */
function firstError(
  backends: readonly BackendConnection[],
  replies: readonly Collected[],
): SqlError | undefined {
  for (let i = 0; i < replies.length; i++) {
    const reply = replies[i] as Collected;
    const name = backends[i]?.name ?? '?';
    if (reply.error !== null) return naming(reply.error, name);
    // PREPARE TRANSACTION in a transaction that already failed answers ROLLBACK.
    if (reply.results.at(-1)?.tag === 'ROLLBACK') {
      return new SqlError(
        SqlState.TRANSACTION_ROLLBACK,
        `backend ${name} rolled the transaction back`,
      );
    }
  }
  return undefined;
}

/** The error as is when it names the backend already, else with `backend <name>: ` in front. */
function naming(error: SqlError, backend: string): SqlError {
  if (error.message.includes(`backend ${backend}`)) return error;
  return new SqlError(error.code, `backend ${backend}: ${error.message}`, {
    severity: error.severity,
    fields: error.fields,
    cause: error,
    ...(error.detail === undefined ? {} : { detail: error.detail }),
    ...(error.hint === undefined ? {} : { hint: error.hint }),
  });
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
  const { cluster, catalog } = session;
  if (cluster.twoPhase) {
    await commitTwoPhase(session, gidFor(txn), backends, entries);
  } else {
    // The weaker mode, without max_prepared_transactions: backends commit one after the other,
    // and when one fails, the change is undone on those that had committed (compensation).
    const committed: BackendConnection[] = [];
    for (const backend of backends) {
      const reply = await backend
        .simple('COMMIT')
        .catch((error: SqlError) => ({ ...collected(), error }));
      if (reply.error !== null || reply.results.at(-1)?.tag === 'ROLLBACK') {
        await onEach(backends.slice(committed.length), () => 'ROLLBACK');
        const compensated = await compensate(committed, txn);
        throw new SqlError(
          SqlState.TRANSACTION_ROLLBACK,
          `the commit failed on backend ${backend.name}${reply.error === null ? '' : `: ${reply.error.message}`}; ` +
            (committed.length === 0
              ? 'no backend kept the change'
              : compensated
                ? `the change was undone on ${committed.map((b) => b.name).join(', ')}, which had committed it`
                : `the change could not be undone on ${committed.map((b) => b.name).join(', ')}: compare the backends`),
          { ...(reply.error === null ? {} : { cause: reply.error }) },
        );
      }
      committed.push(backend);
    }
    session.lastCommitIds = await catalog.recordCommit(null, cluster.name, entries);
  }
  // The change is committed: a failed scan must not make the client think it was not.
  if (txn.changesSchema) {
    await cluster.refreshMetadata().catch((error: Error) => {
      session.logger.warn('metadata.scan_failed', { cluster: cluster.name, error: error.message });
    });
  }
}

async function commitTwoPhase(
  session: Session,
  gid: string,
  backends: readonly BackendConnection[],
  entries: AuditEntryInput[],
): Promise<void> {
  const { cluster, logger } = session;
  const fault = FAULT === undefined ? undefined : nextFault(FAULT);
  // While listed here, recovery in this process leaves the prepared transactions alone.
  inFlight.add(gid);
  try {
    if (fault === 'after-prepare-one') {
      await backends[0]?.simple(`PREPARE TRANSACTION '${gid}'`);
      crash();
    }
    const prepared = await onEach(backends, () => `PREPARE TRANSACTION '${gid}'`);
    const error = firstError(backends, prepared);
    if (error !== undefined) {
      // A backend that fails to answer keeps its prepared transaction; recovery rolls it back.
      await onEach(backends, (b) => {
        const reply = prepared[backends.indexOf(b)];
        return reply?.error === null && reply.results.at(-1)?.tag === 'PREPARE TRANSACTION'
          ? `ROLLBACK PREPARED '${gid}'`
          : 'ROLLBACK';
      });
      throw error;
    }
    if (fault === 'after-prepare-all') crash();
    session.lastCommitIds = await decide(session, gid, backends, entries);
    if (fault === 'after-decision') crash();
    if (fault === 'after-commit-one') {
      await backends[0]?.simple(`COMMIT PREPARED '${gid}'`);
      crash();
    }
    const committed = await onEach(backends, () => `COMMIT PREPARED '${gid}'`);
    committed.forEach((reply, i) => {
      if (reply.error !== null) {
        // The decision stands: the monitor's resolver commits it when the backend answers again.
        logger.error('commit.incomplete', {
          cluster: cluster.name,
          session: session.id,
          gid,
          backend: backends[i]?.name,
          error: reply.error.message,
        });
      }
    });
  } finally {
    inFlight.delete(gid);
  }
}

/**
 * Records the audit entries and the commit decision: the commit point. When the catalog fails,
 * the decision is read back before anything is rolled back, because a connection lost while
 * the decision commits leaves its outcome unknown to the writer.
 */
async function decide(
  session: Session,
  gid: string,
  backends: readonly BackendConnection[],
  entries: AuditEntryInput[],
): Promise<number[]> {
  const { cluster, catalog } = session;
  try {
    return await catalog.recordCommit(gid, cluster.name, entries);
  } catch (cause) {
    if (cause instanceof QoError && cause.code === 'ROLLBACK_UNAVAILABLE') {
      // The catalog refused a rollback of a change another rollback undid first, and recorded
      // nothing: the decision is known to be absent.
      await onEach(backends, () => `ROLLBACK PREPARED '${gid}'`);
      throw new SqlError(
        SqlState.OBJECT_NOT_IN_PREREQUISITE_STATE,
        `the rollback was undone on every backend: ${cause.message}`,
        { cause },
      );
    }
    const recorded = await catalog.decisionFor(gid).then(
      (decision) => decision ?? 'none',
      () => 'unknown' as const,
    );
    if (recorded === 'commit') return [];
    if (recorded === 'unknown') {
      throw new SqlError(
        // transaction_resolution_unknown
        '08007',
        `the audit catalog failed while recording the commit and cannot say whether it did (${(cause as Error).message}); the change stays prepared on every backend and is finished from the catalog's decision once it answers`,
        { cause },
      );
    }
    await onEach(backends, () => `ROLLBACK PREPARED '${gid}'`);
    throw new SqlError(
      SqlState.TRANSACTION_ROLLBACK,
      `the change was rolled back on every backend: the audit catalog could not record it (${(cause as Error).message})`,
      { cause },
    );
  }
}

/**
 * Runs the captured undos of a transaction's changes, newest first, in one transaction on each
 * backend that committed it. False when a change had no exact undo, or an undo failed.
 */
async function compensate(
  backends: readonly BackendConnection[],
  txn: Transaction,
): Promise<boolean> {
  if (backends.length === 0) return true;
  const entries = [...txn.entries].reverse();
  if (entries.some((entry) => entry.rollback === null || entry.reversibility !== 'exact'))
    return false;
  const results = await Promise.all(
    backends.map(async (backend) => {
      const w = new MessageWriter(256);
      fe.query(w, 'BEGIN READ WRITE');
      for (const entry of entries) {
        for (const statement of entry.rollback?.statements ?? []) {
          const { types, values } = encodeUndo(statement);
          fe.parse(w, '', statement.sql, types);
          fe.bind(w, '', '', [1], values, []);
          fe.execute(w, '', 0);
        }
      }
      fe.sync(w);
      fe.query(w, 'COMMIT');
      const begin = collected();
      const undo = collected();
      const commit = collected();
      backend.statements.delete('');
      await backend.request(w.take(), collect(begin), collect(undo), collect(commit));
      return (
        begin.error === null &&
        undo.error === null &&
        commit.error === null &&
        commit.results.at(-1)?.tag === 'COMMIT'
      );
    }),
  ).catch(() => [false]);
  return results.every(Boolean);
}

/** Rolls back on every backend; returns the first backend's reply (its ParameterStatus, say). */
export async function rollbackTransaction(
  session: Session,
  txn: Transaction,
): Promise<Collected | undefined> {
  const backends = [...txn.begun].filter((b) => b.failure === undefined);
  const replies = await onEach(backends, () => 'ROLLBACK');
  session.lastCommitIds = [];
  return replies[backends.indexOf(session.backends[0] as BackendConnection)] ?? replies[0];
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
  const as = session.auditAs as RollbackAudit | undefined;
  if (as === undefined || txn.entries.length === 0) return txn.entries;
  if (as.parts === undefined) return [collapse(txn.entries, as.rollbackOf, as.sql)];
  // Several entries rolled back at once: one rollback entry each, in one commit.
  const collapsed: AuditEntryInput[] = [];
  let at = 0;
  for (const part of as.parts) {
    const slice = txn.entries.slice(at, at + part.statements);
    at += part.statements;
    if (slice.length > 0) collapsed.push(collapse(slice, part.rollbackOf, part.sql));
  }
  return collapsed;
}

/**
 * What an internal session running undos records. With `parts`, its statements undo several
 * entries, in order, each `statements` long, and each part gets a rollback entry of its own.
 */
export interface RollbackAudit {
  kind: 'rollback';
  rollbackOf: number;
  sql: string;
  parts?: { rollbackOf: number; sql: string; statements: number }[];
}

/** One rollback entry for the statements of one undo; its own rollback redoes the change. */
function collapse(entries: AuditEntryInput[], rollbackOf: number, sql: string): AuditEntryInput {
  const parts = [...entries].reverse();
  const statements = parts.flatMap((entry) => entry.rollback?.statements ?? []);
  const display = parts.map((entry) => entry.rollback?.display ?? '').filter((text) => text !== '');
  const reversible = parts.every((entry) => entry.reversibility === 'exact');
  const rollback: Rollback | null =
    statements.length > 0 ? { statements, display: display.join('\n') } : null;
  const first = entries[0] as AuditEntryInput;
  return {
    ...first,
    kind: 'rollback',
    sql,
    params: null,
    durationMs: entries.reduce((sum, entry) => sum + entry.durationMs, 0),
    rowCount: entries.reduce((sum, entry) => sum + (entry.rowCount ?? 0), 0),
    rollback,
    reversibility: rollback === null ? 'irreversible' : reversible ? 'exact' : 'partial',
    reason: parts.map((entry) => entry.reason).find((reason) => reason !== null) ?? null,
    rollbackOf,
    afterImage: parts.map((entry) => entry.afterImage),
  };
}
