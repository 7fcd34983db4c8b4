/**
 * The admin API on port 0 over a real catalog (PostgreSQL from the harness), with a recording
 * executor standing in for the proxy: it records what it was asked and writes real audit
 * entries, so that ids, rollbacks and "already rolled back" come from the catalog.
 */
import { type AdminApi, startAdminApi } from '../../admin-api/server.ts';
import { type DrizzleCatalog, openCatalog } from '../../catalog/store.ts';
import type { Identity } from '../../src/auth/identity.ts';
import { type MintOptions, mintToken } from '../../src/auth/tokens.ts';
import type { AuditEntryInput } from '../../src/cluster/audit.ts';
import type {
  ClusterExecutor,
  ClusterStatus,
  Conflict,
  ExecuteResult,
  RollbackResult,
} from '../../src/cluster/executor.ts';
import { SqlError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { createDatabase } from '../catalog/support.ts';
import { startTestPostgres, type TestPostgres } from '../harness/postgres.ts';

export const SECRET = 'admin-api-test-secret';

/** SQL the recording executor fails, the way a backend or the authorizer would. */
export const FAILING_SQL = 'SELECT * FROM missing_table';
export const REFUSED_SQL = 'DROP TABLE test1.employees';
/** A cluster on which the recording executor fails as a bug would, with a plain Error. */
export const CRASHING_CLUSTER = 'crashing';

export type Call =
  | { kind: 'execute'; identity: Identity; cluster: string; sql: string; override?: string }
  | { kind: 'rollback'; identity: Identity; queryId: number; force: boolean; dryRun: boolean };

export class RecordingExecutor implements ClusterExecutor {
  readonly calls: Call[] = [];
  /** Rows changed since an entry ran, by entry id: its rollback is refused unless forced. */
  readonly conflicts = new Map<number, Conflict[]>();
  /** Entry ids whose rollback fails on the backends. */
  readonly failingRollbacks = new Set<number>();

  constructor(private readonly catalog: DrizzleCatalog) {}

  async execute(
    identity: Identity,
    cluster: string,
    sql: string,
    options: { rollbackOverride?: string } = {},
  ): Promise<ExecuteResult> {
    this.calls.push({
      kind: 'execute',
      identity,
      cluster,
      sql,
      ...(options.rollbackOverride === undefined ? {} : { override: options.rollbackOverride }),
    });
    if (cluster === CRASHING_CLUSTER) throw new Error('internal detail: socket /tmp/x lost');
    if (sql === FAILING_SQL) {
      throw new SqlError('42P01', 'relation "missing_table" does not exist');
    }
    if (sql === REFUSED_SQL) {
      throw new SqlError('42501', `permission denied: ddl on cluster "${cluster}" is not granted`);
    }
    // Two statements per call, so that the last id is the one answered.
    const undo = options.rollbackOverride ?? 'DELETE FROM test1.employees WHERE id = 7';
    const ids = await this.catalog.recordCommit(null, cluster, [
      auditEntry({
        cluster,
        user: identity.subject,
        sql: 'SET search_path = test1',
        kind: 'session',
      }),
      auditEntry({
        cluster,
        user: identity.subject,
        sql,
        rollback: { statements: [{ sql: undo, params: [] }], display: undo },
        reversibility: 'exact',
      }),
    ]);
    return { queryIds: ids, commandTag: 'INSERT 0 1', rows: [] };
  }

  async rollback(
    identity: Identity,
    queryId: number,
    options: { force?: boolean; dryRun?: boolean } = {},
  ): Promise<RollbackResult> {
    const force = options.force === true;
    const dryRun = options.dryRun === true;
    this.calls.push({ kind: 'rollback', identity, queryId, force, dryRun });
    const entry = await this.catalog.getEntry(queryId);
    const sql = entry?.rollback?.display ?? '';
    const conflicts = this.conflicts.get(queryId) ?? [];
    if (dryRun || (conflicts.length > 0 && !force)) return { sql, conflicts, executed: false };
    if (this.failingRollbacks.has(queryId)) {
      throw new SqlError('23503', 'insert or update violates foreign key constraint "fk"');
    }
    const [id] = await this.catalog.recordCommit(null, entry!.cluster, [
      auditEntry({
        cluster: entry!.cluster,
        user: identity.subject,
        sql,
        kind: 'rollback',
        rollbackOf: queryId,
      }),
    ]);
    return { queryId: id!, sql, conflicts, executed: true };
  }

  status(): ClusterStatus[] {
    return [
      { name: 'prod', backends: [{ name: 'prod-1', healthy: true }], sessions: 2 },
      {
        name: 'dev',
        backends: [{ name: 'dev-1', healthy: false, error: 'connection refused' }],
        sessions: 0,
      },
    ];
  }
}

export function auditEntry(overrides: Partial<AuditEntryInput> = {}): AuditEntryInput {
  return {
    cluster: 'prod',
    user: 'alice',
    session: 'admin-api',
    transaction: null,
    kind: 'write',
    sql: "INSERT INTO test1.employees (name) VALUES ('PEPE')",
    params: null,
    outcome: 'committed',
    error: null,
    durationMs: 1.5,
    rowCount: 1,
    commandTag: 'INSERT 0 1',
    rollback: null,
    reversibility: 'none',
    reason: null,
    rollbackOf: null,
    afterImage: null,
    ...overrides,
  };
}

export interface Fixture {
  catalog: DrizzleCatalog;
  executor: RecordingExecutor;
  api: AdminApi;
  /** Every line the API logged. */
  logs: string[];
  adminToken: string;
  token(options: Partial<MintOptions>, secret?: string): Promise<string>;
  request(
    method: string,
    path: string,
    options?: {
      token?: string | null;
      body?: unknown;
      raw?: string;
      headers?: Record<string, string>;
    },
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }>;
  stop(): Promise<void>;
}

let databases = 0;

export async function startFixture(): Promise<Fixture> {
  const server: TestPostgres = await startTestPostgres();
  const url = await createDatabase(server, `admin_api_${databases++}`);
  const catalog = await openCatalog({ kind: 'postgres', url });
  const executor = new RecordingExecutor(catalog);
  const logs: string[] = [];
  const api = await startAdminApi({
    host: '127.0.0.1',
    port: 0,
    secret: SECRET,
    catalog,
    executor,
    logger: createLogger('debug', (line) => logs.push(line)),
  });
  const token = (options: Partial<MintOptions>, secret = SECRET): Promise<string> =>
    mintToken(secret, { subject: 'someone', ...options });
  const adminToken = await token({ subject: 'root', admin: true });
  const base = `http://${api.host}:${api.port}`;
  return {
    catalog,
    executor,
    api,
    logs,
    adminToken,
    token,
    async request(method, path, options = {}) {
      const headers = new Headers(options.headers);
      const bearer = options.token === undefined ? adminToken : options.token;
      if (bearer !== null) headers.set('authorization', `Bearer ${bearer}`);
      let body: string | undefined = options.raw;
      if (options.body !== undefined) body = JSON.stringify(options.body);
      if (body !== undefined) headers.set('content-type', 'application/json');
      const response = await fetch(`${base}${path}`, { method, headers, body: body ?? null });
      const text = await response.text();
      return {
        status: response.status,
        body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
        headers: response.headers,
      };
    },
    async stop() {
      await api.close();
      await catalog.close();
      await server.stop();
    },
  };
}
