import { randomUUID } from 'node:crypto';
import type { Catalog } from '../catalog/types.ts';
import { pointInTimeUndo, transactionUndo, type UndoSelection } from '../rollback/history.ts';
import { can, type Identity } from '../src/auth/identity.ts';
import type { AuditEntry } from '../src/cluster/audit.ts';
import type {
  ClusterExecutor,
  ClusterStatus,
  ExecuteResult,
  GroupRollbackResult,
  RollbackResult,
  RollbackTarget,
} from '../src/cluster/executor.ts';
import { QoError, SqlError, SqlState } from '../src/errors.ts';
import type { Logger } from '../src/log.ts';
import {
  backendError,
  decodeCommandComplete,
  decodeDataRow,
  decodeRowDescription,
} from './backend-decode.ts';
import type { ClusterRuntime } from './cluster.ts';
import { BackendCode } from './codes.ts';
import type { RollbackAudit } from './commit.ts';
import { FrameReader } from './framing.ts';
import { Session } from './session.ts';
import { findConflicts, undoDisplay, undoMessages } from './undo-run.ts';

/** What an internal session sent back, decoded. */
interface Reply {
  error: SqlError | null;
  tag: string;
  rows: Record<string, string | null>[];
}

/**
 * Runs SQL and undos for the admin API through the same session machinery as a client:
 * authorized by the caller's token, captured, fanned out, committed and audited alike.
 */
export class ProxyExecutor implements ClusterExecutor {
  /** Entries whose rollback runs in this process now. */
  private readonly rollingBack = new Set<number>();

  constructor(
    private readonly clusters: Map<string, ClusterRuntime>,
    private readonly catalog: Catalog,
    private readonly logger: Logger,
  ) {}

  private cluster(name: string): ClusterRuntime {
    const cluster = this.clusters.get(name);
    if (cluster === undefined) throw new QoError('NOT_FOUND', `cluster "${name}" does not exist`);
    return cluster;
  }

  /** Opens an internal session whose replies are kept in memory. */
  private async open(
    identity: Identity,
    cluster: ClusterRuntime,
  ): Promise<{ session: Session; reply: () => Reply }> {
    const backends = await cluster.connectBackends({
      default_transaction_read_only: 'on',
      application_name: 'qo-admin',
    });
    const chunks: Buffer[] = [];
    const id = randomUUID();
    const session = new Session({
      id,
      identity,
      cluster,
      catalog: this.catalog,
      logger: this.logger.child({ cluster: cluster.name, session: id.slice(0, 8) }),
      backends,
      channel: {
        write: (data) => chunks.push(Buffer.from(data)),
        cork: () => {},
        uncork: () => {},
      },
      searchPath: [],
    });
    if (backends.every((b) => b.failure !== undefined)) {
      session.close();
      throw backends[0]?.failure ?? new SqlError(SqlState.CONNECTION_FAILURE, 'no backend');
    }
    session.interactive = false;
    await session.readSearchPath();
    return { session, reply: () => decodeReply(chunks.splice(0)) };
  }

  async execute(
    identity: Identity,
    clusterName: string,
    sql: string,
    options: { rollbackOverride?: string } = {},
  ): Promise<ExecuteResult> {
    const cluster = this.cluster(clusterName);
    const { session, reply } = await this.open(identity, cluster);
    try {
      if (options.rollbackOverride !== undefined)
        session.rollbackOverride = options.rollbackOverride;
      session.readIds = [];
      await session.handle([{ type: 'query', sql }]);
      const result = reply();
      if (result.error !== null) throw result.error;
      const readIds = await Promise.all(session.readIds);
      return {
        queryIds: [...readIds, ...session.lastCommitIds],
        commandTag: result.tag,
        rows: result.rows,
      };
    } finally {
      session.close();
    }
  }

  async rollback(
    identity: Identity,
    queryId: number,
    options: { force?: boolean; dryRun?: boolean } = {},
  ): Promise<RollbackResult> {
    const release = options.dryRun ? undefined : this.claim([queryId]);
    try {
      return await this.rollbackOne(identity, queryId, options);
    } finally {
      release?.();
    }
  }

  private async rollbackOne(
    identity: Identity,
    queryId: number,
    options: { force?: boolean; dryRun?: boolean },
  ): Promise<RollbackResult> {
    const entry = await this.catalog.getEntry(queryId);
    if (entry === undefined) throw new QoError('NOT_FOUND', `query ${queryId} does not exist`);
    mayRollBack(identity, entry.cluster);
    if (entry.rolledBackBy !== null) {
      throw new QoError(
        'ROLLBACK_UNAVAILABLE',
        `query ${queryId} was already rolled back by query ${entry.rolledBackBy}`,
      );
    }
    if (entry.outcome !== 'committed') {
      throw new QoError(
        'ROLLBACK_UNAVAILABLE',
        `query ${queryId} changed nothing (outcome: ${entry.outcome})`,
      );
    }
    if (entry.rollback === null || entry.reversibility === 'irreversible') {
      throw new QoError(
        'ROLLBACK_UNAVAILABLE',
        `query ${queryId} has no rollback: ${entry.reason ?? 'none was recorded'}`,
      );
    }
    const result = await this.undo(identity, this.cluster(entry.cluster), [entry], options);
    const { queryIds, rolledBack: _, ...single } = result;
    return queryIds[0] === undefined ? single : { ...single, queryId: queryIds[0] };
  }

  async rollbackMany(
    identity: Identity,
    target: RollbackTarget,
    options: { force?: boolean; dryRun?: boolean } = {},
  ): Promise<GroupRollbackResult> {
    let selection: UndoSelection;
    let clusterName: string;
    let what: string;
    if ('transaction' in target) {
      const entries = await this.catalog.listEntries({
        transaction: target.transaction,
        limit: MAX_GROUP,
      });
      const first = entries[0];
      if (first === undefined) {
        throw new QoError('NOT_FOUND', `transaction ${target.transaction} has no audit entries`);
      }
      clusterName = first.cluster;
      what = `transaction ${target.transaction}`;
      mayRollBack(identity, clusterName);
      selection = transactionUndo(entries);
    } else {
      clusterName = target.cluster;
      this.cluster(clusterName);
      mayRollBack(identity, clusterName);
      const point = await this.catalog.getEntry(target.toQueryId);
      if (point === undefined || point.cluster !== clusterName) {
        throw new QoError(
          'NOT_FOUND',
          `query ${target.toQueryId} does not exist on cluster "${clusterName}"`,
        );
      }
      const later = await this.catalog.listEntries({
        cluster: clusterName,
        afterId: target.toQueryId,
        limit: MAX_GROUP,
      });
      // NOTE: a point with more later entries than one page of the catalog is refused; the
      // catalog lists at most that many per request.
      if (later.length >= MAX_GROUP) {
        throw new QoError(
          'ROLLBACK_UNAVAILABLE',
          `more than ${MAX_GROUP - 1} audit entries follow query ${target.toQueryId}; roll back to a later point first`,
        );
      }
      what = `cluster "${clusterName}" back to query ${target.toQueryId}`;
      selection = pointInTimeUndo(target.toQueryId, later);
    }
    if (selection.blocking.length > 0) {
      const list = selection.blocking.map((b) => `query ${b.id}: ${b.reason}`).join('; ');
      throw new QoError('ROLLBACK_UNAVAILABLE', `${what} cannot be rolled back: ${list}`);
    }
    if (selection.entries.length === 0) {
      throw new QoError('ROLLBACK_UNAVAILABLE', `${what}: no change is left to roll back`);
    }
    const release = options.dryRun ? undefined : this.claim(selection.entries.map((e) => e.id));
    try {
      return await this.undo(identity, this.cluster(clusterName), selection.entries, options);
    } finally {
      release?.();
    }
  }

  /**
   * Marks entries as being rolled back by this process, or refuses when a rollback of one of
   * them already runs here. Rollbacks that race anyway (from another proxy instance) are
   * refused by the catalog at the commit point; this makes the common case fail fast, before
   * an undo runs on the backends. Returns the release.
   */
  private claim(ids: readonly number[]): () => void {
    const busy = ids.find((id) => this.rollingBack.has(id));
    if (busy !== undefined) {
      throw new QoError('ROLLBACK_UNAVAILABLE', `a rollback of query ${busy} is already running`);
    }
    for (const id of ids) this.rollingBack.add(id);
    return () => {
      for (const id of ids) this.rollingBack.delete(id);
    };
  }

  /**
   * After an undo failed or found conflicts: the refusal to give when one of its entries was
   * rolled back by another rollback meanwhile. That rollback's commit refused this one at the
   * commit point, or its rows made this undo fail on the backends (a DELETE undone twice
   * re-inserts a key that is back already) or look changed since.
   */
  private async rolledBackMeanwhile(entries: readonly AuditEntry[]): Promise<QoError | undefined> {
    const now = await Promise.all(entries.map((entry) => this.catalog.getEntry(entry.id)));
    const index = now.findIndex(
      (entry, i) => entry?.rolledBackBy != null && entry.rolledBackBy !== entries[i]?.rolledBackBy,
    );
    const entry = now[index];
    if (entry === undefined) return undefined;
    return new QoError(
      'ROLLBACK_UNAVAILABLE',
      `query ${entry.id} was already rolled back by query ${entry.rolledBackBy}`,
    );
  }

  /**
   * Checks the entries' rows for changes made since, then, unless that found conflicts and
   * `force` is not set, runs their undos (newest first) in one transaction on every backend,
   * recorded as one rollback entry per entry undone.
   */
  private async undo(
    identity: Identity,
    cluster: ClusterRuntime,
    entries: AuditEntry[],
    options: { force?: boolean; dryRun?: boolean },
  ): Promise<GroupRollbackResult> {
    const sql = undoDisplay(entries);
    const rolledBack = entries.map((entry) => entry.id);
    // The undo is authorized by the rollback permission checked before, not by write or ddl.
    const undoer: Identity = {
      subject: identity.subject,
      clusters: { [cluster.name]: ['write', 'ddl'] },
      admin: false,
    };
    const { session, reply } = await this.open(undoer, cluster);
    try {
      const conflicts = await findConflicts(session, cluster, entries);
      if (conflicts.length > 0 && !options.dryRun) {
        // Rows changed by a rollback that another proxy instance just committed.
        const refusal = await this.rolledBackMeanwhile(entries);
        if (refusal !== undefined) throw refusal;
      }
      if (options.dryRun || (conflicts.length > 0 && !options.force)) {
        return { sql, conflicts, executed: false, rolledBack, queryIds: [] };
      }
      if (entries.every((entry) => (entry.rollback?.statements.length ?? 0) === 0)) {
        // Changes that touched no row: nothing to run, and nothing to record.
        return { sql, conflicts, executed: true, rolledBack, queryIds: [] };
      }
      const parts = entries
        .map((entry) => ({
          rollbackOf: entry.id,
          sql: entry.rollback?.display ?? '',
          statements: entry.rollback?.statements.length ?? 0,
        }))
        .filter((part) => part.statements > 0);
      const first = entries[0] as AuditEntry;
      const audit: RollbackAudit = {
        kind: 'rollback',
        rollbackOf: first.id,
        sql,
        ...(entries.length > 1 ? { parts } : {}),
      };
      session.auditAs = audit;
      await session.handle(undoMessages(entries));
      const result = reply();
      if (result.error !== null) {
        throw (await this.rolledBackMeanwhile(entries).catch(() => undefined)) ?? result.error;
      }
      const queryIds = session.lastCommitIds;
      if (queryIds.length === 0) {
        throw new QoError('CATALOG_FAILURE', `the rollback of query ${first.id} recorded nothing`);
      }
      this.logger.info('rollback.executed', {
        cluster: cluster.name,
        query: rolledBack.join(','),
        rollback: queryIds.join(','),
        conflicts: conflicts.length,
      });
      return { queryId: queryIds[0], sql, conflicts, executed: true, rolledBack, queryIds };
    } finally {
      session.close();
    }
  }

  status(): ClusterStatus[] {
    return [...this.clusters.values()].map((cluster) => ({
      name: cluster.name,
      sessions: cluster.sessions,
      backends: cluster.config.backends.map((backend) => {
        const health = cluster.health.get(backend.name);
        // Never connected yet: unknown, reported as healthy until a connection fails.
        return health?.error === undefined
          ? { name: backend.name, healthy: health?.healthy ?? true }
          : { name: backend.name, healthy: false, error: health.error };
      }),
    }));
  }
}

/** Larger undos take at most this many entries (one page of the catalog). */
const MAX_GROUP = 1000;

function mayRollBack(identity: Identity, cluster: string): void {
  if (!can(identity, cluster, 'rollback')) {
    throw new SqlError(
      SqlState.INSUFFICIENT_PRIVILEGE,
      `permission denied: rolling back needs the "rollback" permission on cluster "${cluster}"`,
    );
  }
}

function decodeReply(chunks: Buffer[]): Reply {
  const reader = new FrameReader();
  const result: Reply = { error: null, tag: '', rows: [] };
  let names: string[] = [];
  for (const chunk of chunks) {
    for (const frame of reader.push(chunk)) {
      switch (frame.code) {
        case BackendCode.ErrorResponse:
          result.error ??= backendError(frame.body);
          break;
        case BackendCode.RowDescription:
          names = decodeRowDescription(frame.body).map((f) => f.name);
          result.rows = [];
          break;
        case BackendCode.DataRow: {
          const values = decodeDataRow(frame.body);
          result.rows.push(
            Object.fromEntries(names.map((name, i) => [name, values[i]?.toString('utf8') ?? null])),
          );
          break;
        }
        case BackendCode.CommandComplete:
          result.tag = decodeCommandComplete(frame.body);
          break;
      }
    }
  }
  return result;
}
