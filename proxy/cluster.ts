import { scanCluster } from '../catalog/scanner.ts';
import type { Catalog } from '../catalog/types.ts';
import { type ClusterMetadata, type TableMeta, tableKey } from '../src/cluster/metadata.ts';
import type { ClusterConfig } from '../src/config/types.ts';
import type { Logger } from '../src/log.ts';
import type { FieldDescription } from './backend-decode.ts';

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
  /** What the last connection attempt to each backend found, by backend name. */
  readonly health = new Map<string, { healthy: boolean; error?: string; at: Date }>();
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

  /** Records whether connections to each backend succeeded. */
  noteHealth(backends: readonly { name: string; failure: Error | undefined }[]): void {
    for (const backend of backends) {
      this.health.set(
        backend.name,
        backend.failure === undefined
          ? { healthy: true, at: new Date() }
          : { healthy: false, error: backend.failure.message, at: new Date() },
      );
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
