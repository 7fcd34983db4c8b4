import type { Catalog } from '../catalog/types.ts';
import type { ClusterConfig } from '../src/config/types.ts';
import type { Logger } from '../src/log.ts';
import { BackendConnection } from './backend-connection.ts';
import { INSTANCE, inFlight, MONITOR_APPLICATION, monitorInstance, ownerOf } from './instance.ts';

/**
 * Prepared transactions of an unknown instance (a gid without an instance id, written by an
 * older release), with no recorded decision, are taken as abandoned past this age.
 */
const ABANDONED_AFTER_SECONDS = 60;

/** A prepared transaction the proxy left on a backend. */
export interface Prepared {
  gid: string;
  ageSeconds: number;
}

export interface ResolveContext {
  cluster: string;
  catalog: Catalog;
  logger: Logger;
  /** Instances whose monitor is connected to a backend of the cluster, read after the listing. */
  live: ReadonlySet<string>;
}

/** Whether the backend accepts PREPARE TRANSACTION (max_prepared_transactions > 0). */
export async function supportsTwoPhase(backend: BackendConnection): Promise<boolean> {
  const setting = await backend.simple('SHOW max_prepared_transactions');
  if (setting.error !== null) throw setting.error;
  return setting.results[0]?.rows[0]?.[0]?.toString() !== '0';
}

/** The proxy's prepared transactions (`qo_*`) in the backend's database. */
export async function listPrepared(backend: BackendConnection): Promise<Prepared[]> {
  const reply = await backend.simple(
    `SELECT gid, extract(epoch FROM now() - prepared)::int FROM pg_catalog.pg_prepared_xacts WHERE gid LIKE 'qo\\_%' AND database = current_database()`,
  );
  if (reply.error !== null) throw reply.error;
  return (reply.results[0]?.rows ?? []).map((row) => ({
    gid: row[0]?.toString() ?? '',
    ageSeconds: Number(row[1]?.toString() ?? '0'),
  }));
}

/** Proxy instances with a monitor connection to the backend (application_name is visible to every role). */
export async function liveInstances(backend: BackendConnection): Promise<string[]> {
  const reply = await backend.simple(
    `SELECT application_name FROM pg_catalog.pg_stat_activity WHERE application_name LIKE 'qo-monitor %'`,
  );
  if (reply.error !== null) throw reply.error;
  return (reply.results[0]?.rows ?? []).flatMap((row) => {
    const instance = monitorInstance(row[0]?.toString() ?? '');
    return instance === undefined ? [] : [instance];
  });
}

/**
 * Whether a prepared transaction may be finished now, before its decision is even read: not
 * while the instance that prepared it may still be committing it.
 *
 * NOTE: an instance counts as running while its monitor is connected to a backend of the
 * cluster; a crashed instance's connections close with its process, so what it left is
 * resolved at the next start or pass, whatever its age, instead of after a fixed delay. The
 * cost: an instance cut off from every backend it can still commit on (a network partition)
 * looks dead, and a transaction it prepared but had not decided yet may be rolled back under it;
 * its COMMIT PREPARED then fails and is logged as commit.incomplete.
 */
export function mayResolve(
  prepared: Prepared,
  live: ReadonlySet<string>,
): 'yes' | 'undecided' | 'no' {
  const owner = ownerOf(prepared.gid);
  if (owner === INSTANCE) return inFlight.has(prepared.gid) ? 'no' : 'yes';
  if (owner !== undefined) return live.has(owner) ? 'no' : 'yes';
  // No instance id: only an old enough one without a decision is taken as abandoned.
  return prepared.ageSeconds >= ABANDONED_AFTER_SECONDS ? 'yes' : 'undecided';
}

/**
 * Finishes, from the catalog's decisions, the prepared transactions on one backend that no
 * running instance is committing: COMMIT PREPARED when the commit was recorded, else ROLLBACK
 * PREPARED. Nothing is rolled back while the catalog cannot answer. Returns how many it finished.
 */
export async function resolvePrepared(
  backend: BackendConnection,
  found: readonly Prepared[],
  context: ResolveContext,
): Promise<number> {
  const { cluster, catalog, logger, live } = context;
  let resolved = 0;
  for (const prepared of found) {
    const may = mayResolve(prepared, live);
    if (may === 'no') continue;
    let decision: 'commit' | undefined;
    try {
      decision = await catalog.decisionFor(prepared.gid);
    } catch (error) {
      logger.warn('recovery.catalog_unavailable', {
        cluster,
        gid: prepared.gid,
        error: (error as Error).message,
      });
      return resolved;
    }
    if (decision === undefined && may === 'undecided') continue;
    const { gid } = prepared;
    const sql = decision === 'commit' ? `COMMIT PREPARED '${gid}'` : `ROLLBACK PREPARED '${gid}'`;
    const result = await backend.simple(sql);
    if (result.error === null) resolved++;
    logger.warn('recovery.resolved', {
      cluster,
      backend: backend.name,
      gid,
      action: decision === 'commit' ? 'commit' : 'rollback',
      error: result.error?.message,
    });
  }
  return resolved;
}

/**
 * One pass over a cluster without a monitor: tells whether every reachable backend can take
 * part in two-phase commit, and finishes what a previous run left prepared. The monitor
 * (monitor.ts) does the same at start and then periodically.
 */
export async function recoverPrepared(
  cluster: ClusterConfig,
  catalog: Catalog,
  logger: Logger,
): Promise<boolean> {
  const connected: BackendConnection[] = [];
  let twoPhase = true;
  try {
    for (const config of cluster.backends) {
      try {
        const backend = await BackendConnection.connect(config, {
          application_name: MONITOR_APPLICATION,
        });
        connected.push(backend);
        if (!(await supportsTwoPhase(backend))) {
          twoPhase = false;
          warnNoTwoPhase(logger, cluster.name, config.name);
        }
      } catch (error) {
        logger.warn('backend.unreachable', {
          cluster: cluster.name,
          backend: config.name,
          error: (error as Error).message,
        });
      }
    }
    const found = await Promise.all(connected.map((backend) => listPrepared(backend)));
    const live = new Set((await Promise.all(connected.map(liveInstances))).flat());
    for (const [i, backend] of connected.entries()) {
      await resolvePrepared(backend, found[i] ?? [], {
        cluster: cluster.name,
        catalog,
        logger,
        live,
      });
    }
  } finally {
    for (const backend of connected) backend.close();
  }
  return twoPhase;
}

export function warnNoTwoPhase(logger: Logger, cluster: string, backend: string): void {
  logger.warn('cluster.no_two_phase_commit', {
    cluster,
    backend,
    detail:
      'max_prepared_transactions is 0: commits run one backend after the other, not atomically',
  });
}
