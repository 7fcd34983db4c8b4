import { randomUUID } from 'node:crypto';
import type { Catalog } from '../catalog/types.ts';
import { encodeUndo } from '../rollback/plan.ts';
import { can, type Identity } from '../src/auth/identity.ts';
import type {
  ClusterExecutor,
  ClusterStatus,
  ExecuteResult,
  RollbackResult,
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
import { FrameReader } from './framing.ts';
import type { FrontendMessage } from './frontend.ts';
import { connectBackends } from './server.ts';
import { Session } from './session.ts';

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
    const backends = await connectBackends(cluster.config.backends, {
      default_transaction_read_only: 'on',
      application_name: 'qo-admin',
    });
    cluster.noteHealth(backends);
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
    const entry = await this.catalog.getEntry(queryId);
    if (entry === undefined) throw new QoError('NOT_FOUND', `query ${queryId} does not exist`);
    if (!can(identity, entry.cluster, 'rollback')) {
      throw new SqlError(
        SqlState.INSUFFICIENT_PRIVILEGE,
        `permission denied: rolling back needs the "rollback" permission on cluster "${entry.cluster}"`,
      );
    }
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
    const sql = entry.rollback.display;
    // TODO: compare the rows' current values with the recorded after-image before undoing, and refuse on conflict unless forced.
    if (options.dryRun) return { sql, conflicts: [], executed: false };
    const cluster = this.cluster(entry.cluster);
    // The undo is authorized by the rollback permission checked above, not by write or ddl.
    const undoer: Identity = {
      subject: identity.subject,
      clusters: { [cluster.name]: ['write'] },
      admin: false,
    };
    const { session, reply } = await this.open(undoer, cluster);
    try {
      session.auditAs = { kind: 'rollback', rollbackOf: queryId, sql };
      const messages: FrontendMessage[] = [];
      for (const statement of entry.rollback.statements) {
        const { types, values } = encodeUndo(statement);
        messages.push(
          { type: 'parse', name: '', sql: statement.sql, paramTypes: types },
          {
            type: 'bind',
            portal: '',
            statement: '',
            paramFormats: [1],
            params: values,
            resultFormats: [],
          },
          { type: 'execute', portal: '', maxRows: 0 },
        );
      }
      messages.push({ type: 'sync' });
      await session.handle(messages);
      const result = reply();
      if (result.error !== null) throw result.error;
      const id = session.lastCommitIds[0];
      if (id === undefined)
        throw new QoError('CATALOG_FAILURE', `the rollback of query ${queryId} recorded nothing`);
      this.logger.info('rollback.executed', {
        cluster: cluster.name,
        query: queryId,
        rollback: id,
      });
      return { queryId: id, sql, conflicts: [], executed: true };
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
