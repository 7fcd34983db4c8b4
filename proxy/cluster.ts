import { scanCluster } from '../catalog/scanner.ts';
import type { Catalog } from '../catalog/types.ts';
import { type ClusterMetadata, type TableMeta, tableKey } from '../src/cluster/metadata.ts';
import type { ClusterConfig } from '../src/config/types.ts';
import { SqlError, SqlState } from '../src/errors.ts';
import type { Logger } from '../src/log.ts';
import { BackendConnection } from './backend-connection.ts';
import type { FieldDescription } from './backend-decode.ts';

/** What the last check of a backend found; `seen` is its performance.now() time. */
export interface BackendHealth {
  healthy: boolean;
  error?: string;
  at: Date;
  seen: number;
}

/** What a backend said a statement takes and returns (Describe), cached by text and types. */
export interface StatementShape {
  paramTypes: number[];
  fields: FieldDescription[] | null;
}

/**
 * The shared, per-cluster state of the proxy: configuration, table metadata, cached statement
 * shapes, and the round-robin position for reads. Sessions hold their own connections.
 */
export class ClusterRuntime {
  metadata: ClusterMetadata;
  /** Whether every backend accepts PREPARE TRANSACTION (max_prepared_transactions > 0). */
  twoPhase = true;
  sessions = 0;
  /** What the last connection attempt or health check found for each backend, by name. */
  readonly health = new Map<string, BackendHealth>();
  private next = 0;
  private readonly shapes = new Map<string, StatementShape>();
  private refreshing: Promise<void> | undefined;

  constructor(
    readonly config: ClusterConfig,
    private readonly catalog: Catalog,
    private readonly logger: Logger,
  ) {
    this.metadata = { cluster: config.name, tables: new Map(), scannedAt: new Date(0) };
  }

  get name(): string {
    return this.config.name;
  }

  /** Index of the backend for the next read, among those for which `usable` holds. */
  pickRead(count: number, usable: (index: number) => boolean): number {
    for (let tries = 0; tries < count; tries++) {
      const index = this.next++ % count;
      if (usable(index)) return index;
    }
    return -1;
  }

  setHealth(name: string, healthy: boolean, error?: string): void {
    const was = this.health.get(name);
    const at = new Date();
    const seen = performance.now();
    this.health.set(
      name,
      healthy || error === undefined ? { healthy, at, seen } : { healthy, error, at, seen },
    );
    if (was !== undefined && was.healthy !== healthy) {
      const fields = { cluster: this.name, backend: name, error };
      if (healthy) this.logger.info('backend.healthy', fields);
      else this.logger.warn('backend.unhealthy', fields);
    }
  }

  /**
   * One connection per backend for a new session, opened in parallel. A backend the health
   * checks found down is not tried: its connection starts failed, and the session opens it at a
   * statement boundary once the backend is back (reviveBackends).
   */
  connectBackends(parameters: Record<string, string>): Promise<BackendConnection[]> {
    return Promise.all(
      this.config.backends.map((config) => {
        const health = this.health.get(config.name);
        if (health?.healthy === false) {
          const { name, host, port } = config;
          const error = new SqlError(
            SqlState.CONNECTION_FAILURE,
            `backend ${name} (${host}:${port}) is unavailable: ${health.error ?? 'health check failed'}`,
          );
          return BackendConnection.failed(config, error, parameters);
        }
        return BackendConnection.connect(config, parameters).catch((error: SqlError) => {
          this.setHealth(config.name, false, error.message);
          return BackendConnection.failed(config, error, parameters);
        });
      }),
    );
  }

  /**
   * Opens again, in place, the failed connections of a session whose backend a health check
   * has found healthy since they failed. Called at a statement boundary outside a transaction,
   * so no transaction is lost; the new connection gets the startup parameters of the old one
   * (the connections of a session all share them).
   */
  async reviveBackends(backends: BackendConnection[]): Promise<void> {
    for (let i = 0; i < backends.length; i++) {
      const old = backends[i] as BackendConnection;
      if (old.failure === undefined) continue;
      const health = this.health.get(old.name);
      if (health === undefined || !health.healthy || health.seen <= old.failedAt) continue;
      const startup = old.startup ?? backends.find((b) => b.startup !== undefined)?.startup;
      if (startup === undefined) continue;
      let fresh: BackendConnection;
      try {
        fresh = await BackendConnection.connect(old.config, { ...startup });
      } catch (error) {
        this.setHealth(old.name, false, (error as Error).message);
        continue;
      }
      // NOTE: settings a client changed with SET after startup, and its LISTENs, are not replayed on the new connection.
      fresh.onIdleMessage = old.onIdleMessage;
      fresh.onClose = old.onClose;
      backends[i] = fresh;
      this.logger.info('backend.reconnected', { cluster: this.name, backend: old.name });
    }
  }

  /** Scans the tables of the cluster again (at start and after DDL commits). */
  refreshMetadata(): Promise<void> {
    this.refreshing ??= this.scan().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async scan(): Promise<void> {
    const started = performance.now();
    const tables: TableMeta[] = await scanCluster(this.config.backends);
    const map = new Map<string, TableMeta>();
    for (const table of tables) map.set(tableKey(table.schema, table.name), table);
    this.metadata = { cluster: this.name, tables: map, scannedAt: new Date() };
    this.shapes.clear();
    this.logger.debug('metadata.scanned', {
      cluster: this.name,
      tables: map.size,
      ms: Math.round(performance.now() - started),
    });
    this.catalog.saveMetadata(this.metadata).catch((error: Error) => {
      this.logger.warn('metadata.save_failed', { cluster: this.name, error: error.message });
    });
  }

  /** Finds a table as PostgreSQL would: qualified, or first match along the search path. */
  resolveTable(
    schema: string | undefined,
    name: string,
    searchPath: readonly string[],
  ): TableMeta | undefined {
    if (schema !== undefined) return this.metadata.tables.get(tableKey(schema, name));
    for (const candidate of searchPath) {
      const table = this.metadata.tables.get(tableKey(candidate, name));
      if (table !== undefined) return table;
    }
    return undefined;
  }

  shape(sql: string, types: readonly number[]): StatementShape | undefined {
    return this.shapes.get(`${types.join(',')}\0${sql}`);
  }

  rememberShape(sql: string, types: readonly number[], shape: StatementShape): void {
    if (this.shapes.size > 5000) this.shapes.clear();
    this.shapes.set(`${types.join(',')}\0${sql}`, shape);
  }
}
