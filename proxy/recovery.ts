import type { Catalog } from '../catalog/types.ts';
import type { ClusterConfig } from '../src/config/types.ts';
import type { Logger } from '../src/log.ts';
import { BackendConnection } from './backend-connection.ts';

/** Prepared transactions older than this, with no recorded decision, are abandoned ones. */
const ABANDONED_AFTER_SECONDS = 60;

/**
 * Finishes the two-phase commits a previous run of the proxy left on the cluster's backends,
 * from the decisions recorded in the catalog, and tells whether every backend can take part in
 * two-phase commit (max_prepared_transactions > 0).
 */
export async function recoverPrepared(
  cluster: ClusterConfig,
  catalog: Catalog,
  logger: Logger,
): Promise<boolean> {
  let twoPhase = true;
  for (const config of cluster.backends) {
    let backend: BackendConnection;
    try {
      backend = await BackendConnection.connect(config, { application_name: 'qo-recovery' });
    } catch (error) {
      logger.warn('backend.unreachable', {
        cluster: cluster.name,
        backend: config.name,
        error: (error as Error).message,
      });
      continue;
    }
    try {
      const setting = await backend.simple('SHOW max_prepared_transactions');
      if (setting.results[0]?.rows[0]?.[0]?.toString() === '0') {
        twoPhase = false;
        logger.warn('cluster.no_two_phase_commit', {
          cluster: cluster.name,
          backend: config.name,
          detail:
            'max_prepared_transactions is 0: commits run one backend after the other, not atomically',
        });
      }
      // NOTE: a prepared transaction younger than the threshold may belong to another proxy instance still committing it, so it is left alone.
      const prepared = await backend.simple(
        `SELECT gid, extract(epoch FROM now() - prepared)::int FROM pg_prepared_xacts WHERE gid LIKE 'qo\\_%' AND database = current_database()`,
      );
      for (const row of prepared.results[0]?.rows ?? []) {
        const gid = row[0]?.toString() ?? '';
        const age = Number(row[1]?.toString() ?? '0');
        const decision = await catalog.decisionFor(gid);
        if (decision === undefined && age < ABANDONED_AFTER_SECONDS) continue;
        const sql =
          decision === 'commit' ? `COMMIT PREPARED '${gid}'` : `ROLLBACK PREPARED '${gid}'`;
        const result = await backend.simple(sql);
        logger.warn('recovery.resolved', {
          cluster: cluster.name,
          backend: config.name,
          gid,
          action: decision === 'commit' ? 'commit' : 'rollback',
          error: result.error?.message,
        });
      }
    } finally {
      backend.close();
    }
  }
  return twoPhase;
}
