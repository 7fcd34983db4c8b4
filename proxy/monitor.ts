import type { Catalog } from '../catalog/types.ts';
import type { BackendConfig } from '../src/config/types.ts';
import type { Logger } from '../src/log.ts';
import { BackendConnection } from './backend-connection.ts';
import type { ClusterRuntime } from './cluster.ts';
import { MONITOR_APPLICATION } from './instance.ts';
import {
  listPrepared,
  liveInstances,
  type Prepared,
  resolvePrepared,
  supportsTwoPhase,
  warnNoTwoPhase,
} from './recovery.ts';

export interface MonitorOptions {
  /** Between health checks of every backend; default 2 s. */
  healthIntervalMs?: number;
  /** Between passes of the prepared-transaction resolver; default 30 s. */
  resolveIntervalMs?: number;
  /** A connection attempt or a health check that takes longer fails; default 5 s. */
  timeoutMs?: number;
}

/**
 * Watches the backends of one cluster through one connection each, held by this process:
 * - health: a backend is unhealthy from the moment its connection fails until a reconnection
 *   succeeds; a connected one is pinged each interval. Sessions read the result
 *   (ClusterRuntime.health) to skip a backend that is down and to reconnect once it is back.
 * - two-phase commit: whether every backend accepts PREPARE TRANSACTION.
 * - recovery: at start, every 30 s, and when a backend comes back, prepared transactions that
 *   no running instance is committing are finished from the catalog's decisions.
 * - presence: the connections' application_name tells other instances this one runs.
 */
export class ClusterMonitor {
  private readonly connections: (BackendConnection | undefined)[];
  private readonly twoPhase = new Map<string, boolean>();
  private readonly healthIntervalMs: number;
  private readonly resolveIntervalMs: number;
  private readonly timeoutMs: number;
  private timers: NodeJS.Timeout[] = [];
  private checking: Promise<void> | undefined;
  private resolving: Promise<void> | undefined;
  private resolveAgain = false;
  private stopped = false;

  constructor(
    private readonly cluster: ClusterRuntime,
    private readonly catalog: Catalog,
    private readonly logger: Logger,
    options: MonitorOptions = {},
  ) {
    this.connections = cluster.config.backends.map(() => undefined);
    this.healthIntervalMs = options.healthIntervalMs ?? 2_000;
    this.resolveIntervalMs = options.resolveIntervalMs ?? 30_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  /** Connects to every backend and resolves what an earlier run left, then keeps watching. */
  async start(): Promise<void> {
    await this.check();
    await this.resolve();
    this.timers = [
      setInterval(() => void this.check(), this.healthIntervalMs),
      setInterval(() => void this.resolve(), this.resolveIntervalMs),
    ];
    for (const timer of this.timers) timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    await Promise.allSettled([this.checking, this.resolving]);
    for (const connection of this.connections) connection?.close();
  }

  /** One health round over every backend; concurrent callers share it. */
  check(): Promise<void> {
    this.checking ??= Promise.all(
      this.cluster.config.backends.map((config, index) => this.checkOne(config, index)),
    )
      .then(() => undefined)
      .finally(() => {
        this.checking = undefined;
      });
    return this.checking;
  }

  /** One resolver pass; a request during a pass runs one more pass after it. */
  resolve(): Promise<void> {
    if (this.resolving !== undefined) {
      this.resolveAgain = true;
      return this.resolving;
    }
    this.resolving = this.resolveAll()
      .catch((error: Error) => {
        this.logger.warn('recovery.failed', { cluster: this.cluster.name, error: error.message });
      })
      .finally(() => {
        this.resolving = undefined;
        if (this.resolveAgain && !this.stopped) {
          this.resolveAgain = false;
          void this.resolve();
        }
      });
    return this.resolving;
  }

  private async checkOne(config: BackendConfig, index: number): Promise<void> {
    if (this.stopped) return;
    const current = this.connections[index];
    if (current !== undefined && current.failure === undefined) {
      try {
        await this.timed(current.simple('SELECT 1'), 'health check');
        this.cluster.setHealth(config.name, true);
      } catch (error) {
        current.destroy();
        this.cluster.setHealth(config.name, false, (error as Error).message);
      }
      return;
    }
    let connection: BackendConnection | undefined;
    try {
      connection = await BackendConnection.connect(
        config,
        { application_name: MONITOR_APPLICATION },
        this.timeoutMs,
      );
      const twoPhase = await this.timed(supportsTwoPhase(connection), 'SHOW');
      if (!twoPhase && this.twoPhase.get(config.name) !== false) {
        warnNoTwoPhase(this.logger, this.cluster.name, config.name);
      }
      this.twoPhase.set(config.name, twoPhase);
      this.cluster.twoPhase = [...this.twoPhase.values()].every(Boolean);
    } catch (error) {
      connection?.destroy();
      this.cluster.setHealth(config.name, false, (error as Error).message);
      return;
    }
    if (this.stopped) {
      connection.close();
      return;
    }
    connection.onClose = (error) => {
      if (!this.stopped) this.cluster.setHealth(config.name, false, error.message);
    };
    this.connections[index] = connection;
    this.cluster.setHealth(config.name, true);
    // A backend that was away may hold commits whose COMMIT PREPARED could not reach it.
    if (current !== undefined) void this.resolve();
  }

  private async resolveAll(): Promise<void> {
    const connected = this.connections.filter(
      (c): c is BackendConnection => c !== undefined && c.failure === undefined,
    );
    const found = await Promise.all(
      connected.map((backend) =>
        this.timed(listPrepared(backend), 'listing prepared transactions').catch(
          (): Prepared[] => [],
        ),
      ),
    );
    if (found.every((list) => list.length === 0)) return;
    // Read after the listing: an instance that prepared one of them had its monitor connected
    // first. Without every answer, a running instance could pass for a dead one: no pass then.
    let live: Set<string>;
    try {
      const seen = await Promise.all(
        connected.map((backend) => this.timed(liveInstances(backend), 'reading pg_stat_activity')),
      );
      live = new Set(seen.flat());
    } catch (error) {
      this.logger.warn('recovery.skipped', {
        cluster: this.cluster.name,
        error: (error as Error).message,
      });
      return;
    }
    const context = {
      cluster: this.cluster.name,
      catalog: this.catalog,
      logger: this.logger,
      live,
    };
    for (const [i, backend] of connected.entries()) {
      if (this.stopped) return;
      await resolvePrepared(backend, found[i] ?? [], context).catch((error: Error) => {
        this.logger.warn('recovery.failed', {
          cluster: this.cluster.name,
          backend: backend.name,
          error: error.message,
        });
      });
    }
  }

  private timed<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what} got no answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}
