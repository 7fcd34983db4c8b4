// The composition root: the one module of src/ that wires the other folders together.
import { startAdminApi } from '../admin-api/server.ts';
import { openCatalog } from '../catalog/store.ts';
import type { Catalog } from '../catalog/types.ts';
import { ClusterRuntime } from '../proxy/cluster.ts';
import { checkConsistency } from '../proxy/consistency.ts';
import { ProxyExecutor } from '../proxy/executor.ts';
import { ClusterMonitor, type MonitorOptions } from '../proxy/monitor.ts';
import { ProxyServer } from '../proxy/server.ts';
import type { ConsistencyOptions, ConsistencyReport } from './cluster/consistency.ts';
import type { ClusterExecutor } from './cluster/executor.ts';
import type { BackendConfig, ClusterConfig, Config } from './config/types.ts';
import { type EmbeddedPostgres, startPostgres } from './embedded/postgres.ts';
import { QoError } from './errors.ts';
import { createLogger, type Logger } from './log.ts';
import { initParser } from './sql/parse.ts';

export interface Orchestrator {
  config: Config;
  proxy: { host: string; port: number };
  admin: { host: string; port: number };
  clusters: Map<string, ClusterRuntime>;
  catalog: Catalog;
  /** Throwaway servers started for clusters with `embedded: N`. */
  embedded: EmbeddedPostgres[];
  stop(): Promise<void>;
}

/** Starts embedded backends, the catalog, the proxy and the admin API, in that order. */
export async function startOrchestrator(
  config: Config,
  options: { logger?: Logger; monitor?: MonitorOptions } = {},
): Promise<Orchestrator> {
  const logger = options.logger ?? createLogger(config.log.level);
  const embedded: EmbeddedPostgres[] = [];
  const stopEmbedded = () => Promise.allSettled(embedded.map((server) => server.stop()));
  const monitors: ClusterMonitor[] = [];
  const stopMonitors = () => Promise.allSettled(monitors.map((monitor) => monitor.stop()));
  try {
    await initParser();
    const clusters: ClusterConfig[] = [];
    for (const cluster of config.clusters) {
      clusters.push(await withEmbeddedBackends(cluster, embedded, logger));
    }
    const catalog = await openCatalog(config.catalog, { logger });
    const runtimes = new Map<string, ClusterRuntime>();
    for (const cluster of clusters) {
      const runtime = new ClusterRuntime(cluster, catalog, logger);
      // Health checks, two-phase commit support, and recovery of what an earlier run left prepared.
      const monitor = new ClusterMonitor(runtime, catalog, logger, options.monitor);
      monitors.push(monitor);
      await monitor.start();
      await runtime.refreshMetadata().catch((error: Error) => {
        logger.warn('metadata.scan_failed', { cluster: cluster.name, error: error.message });
      });
      runtimes.set(cluster.name, runtime);
    }
    const proxy = new ProxyServer({
      secret: config.secret,
      clusters: runtimes,
      catalog,
      logger,
      tls: config.tls,
      idleInTransactionTimeoutMs: config.sessions?.idleInTransactionTimeoutMs ?? 0,
    });
    const proxyAddress = await proxy.listen(config.listen.host, config.listen.port);
    const executor: ClusterExecutor = new ProxyExecutor(runtimes, catalog, logger);
    executor.consistency = (name, checkOptions) => {
      const runtime = runtimes.get(name);
      if (runtime === undefined) throw new QoError('NOT_FOUND', `cluster "${name}" does not exist`);
      return checkConsistency(runtime.config, checkOptions);
    };
    const admin = await startAdminApi({
      host: config.admin.host,
      port: config.admin.port,
      secret: config.secret,
      catalog,
      executor,
      logger,
    });
    logger.info('proxy.listening', { host: proxyAddress.host, port: proxyAddress.port });
    logger.info('admin.listening', { host: admin.host, port: admin.port });
    return {
      config,
      proxy: proxyAddress,
      admin: { host: admin.host, port: admin.port },
      clusters: runtimes,
      catalog,
      embedded,
      async stop() {
        await proxy.close();
        await stopMonitors();
        await admin.close();
        await catalog.close();
        await stopEmbedded();
      },
    };
  } catch (error) {
    await stopMonitors();
    await stopEmbedded();
    throw error;
  }
}

/**
 * Compares the backends of the configured clusters (all, or the one named), without starting
 * the proxy or opening the catalog. Clusters of throwaway servers (`embedded`) have nothing to
 * compare between runs and are refused.
 */
export async function checkClusters(
  config: Config,
  cluster: string | undefined,
  options: ConsistencyOptions = {},
): Promise<ConsistencyReport[]> {
  const chosen = config.clusters.filter((c) => cluster === undefined || c.name === cluster);
  if (chosen.length === 0) {
    throw new QoError(
      'NOT_FOUND',
      `cluster "${cluster}" is not in ${config.source} (known: ${config.clusters.map((c) => c.name).join(', ')})`,
    );
  }
  const reports: ConsistencyReport[] = [];
  for (const c of chosen) {
    if (c.embedded) {
      throw new QoError(
        'CONFIG_INVALID',
        `cluster "${c.name}" runs on throwaway embedded servers that exist only while the proxy runs; check it through the admin API (GET /clusters/${c.name}/consistency)`,
      );
    }
    reports.push(await checkConsistency(c, options));
  }
  return reports;
}

async function withEmbeddedBackends(
  cluster: ClusterConfig,
  embedded: EmbeddedPostgres[],
  logger: Logger,
): Promise<ClusterConfig> {
  if (!cluster.embedded) return cluster;
  const servers = await Promise.all(
    Array.from({ length: cluster.embedded }, () => startPostgres({ maxPreparedTransactions: 20 })),
  );
  embedded.push(...servers);
  const backends: BackendConfig[] = servers.map((server, index) => ({
    name: `${cluster.name}/${index}`,
    host: server.host,
    port: server.port,
    user: server.user,
    database: server.database,
  }));
  for (const backend of backends) {
    logger.info('embedded.started', {
      cluster: cluster.name,
      backend: backend.name,
      port: backend.port,
    });
  }
  return { ...cluster, backends };
}
