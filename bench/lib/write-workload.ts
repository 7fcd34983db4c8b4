// The data of the write comparison: pgbench's tables plus an INSERT-only table whose serial key
// and now() default each replicating proxy must make identical on every backend.
import { describe, succeeded } from './pgbench-process.ts';
import { execute, initialize, leftovers, prepareRun, type Target } from './pgbench-setup.ts';

export const INSERTS_TABLE = `CREATE TABLE bench_inserts (
  id bigserial PRIMARY KEY,
  aid int NOT NULL,
  delta int NOT NULL,
  created timestamptz NOT NULL DEFAULT now())`;

/** A pgbench script: one INSERT per transaction, the key and timestamp left to the defaults. */
export const INSERT_SCRIPT = [
  '\\set aid random(1, 100000)',
  '\\set delta random(-5000, 5000)',
  'INSERT INTO bench_inserts (aid, delta) VALUES (:aid, :delta);',
  '',
].join('\n');

/** Pgpool-II's row lock table for insert_lock, as its install script creates it per database. */
export const INSERT_LOCK_TABLE = [
  'CREATE SCHEMA pgpool_catalog',
  'CREATE TABLE pgpool_catalog.insert_lock (reloid oid PRIMARY KEY)',
  'INSERT INTO pgpool_catalog.insert_lock VALUES (0)',
];

/** `pgbench -i` and the INSERT table straight to one database. */
export async function initializeDirectly(target: Target, scale: number, timeoutMs: number) {
  const outcome = await initialize(target, scale, timeoutMs);
  if (!succeeded(outcome)) {
    throw new Error(`pgbench -i on port ${target.port} failed: ${describe(outcome)}`);
  }
  await execute(target, ['DROP TABLE IF EXISTS bench_inserts', INSERTS_TABLE]);
  return { elapsedMs: outcome.elapsedMs };
}

/** pgbench's own pre-run cleanup (the runs use -n), plus an empty INSERT table. */
export async function prepareWrites(target: Target): Promise<void> {
  await prepareRun(target);
  await execute(target, ['TRUNCATE bench_inserts RESTART IDENTITY']);
}

/**
 * After a proxy stopped: waits up to 5 s for its sessions to go, then rolls back the prepared
 * transactions it left. Returns what was left, or undefined when nothing was.
 */
export async function clearLeftovers(backend: Target): Promise<string | undefined> {
  let left = await leftovers(backend);
  for (let waited = 0; left.sessions > 0 && waited < 5_000; waited += 250) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    left = await leftovers(backend);
  }
  if (left.prepared.length === 0 && left.sessions === 0) return undefined;
  await execute(
    backend,
    left.prepared.map((gid) => `ROLLBACK PREPARED '${gid.replace(/'/g, "''")}'`),
  );
  return `${left.sessions} client sessions and prepared transactions [${left.prepared.join(', ')}]`;
}
