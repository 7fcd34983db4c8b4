import pg from 'pg';
import { tableChecksums } from '../../test/harness/cluster.ts';
import { type PgbenchOutcome, pgbenchEnv, runPgbench } from './pgbench-process.ts';

/** Where pgbench connects: a backend directly, or the proxy. */
export interface Target {
  host: string;
  port: number;
  user: string;
  database: string;
  /** For the proxy: the JWT. Backends trust 127.0.0.1. */
  password?: string;
}

/** pgbench's connection arguments; the database goes last on its command line. */
export function connectionArgs(target: Target): string[] {
  return ['-h', target.host, '-p', String(target.port), '-U', target.user];
}

/** Runs statements one by one (VACUUM refuses a multi-statement string) on a direct target. */
export async function execute(target: Target, statements: string[]): Promise<pg.QueryResult[]> {
  const client = new pg.Client({ ...target, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    const results: pg.QueryResult[] = [];
    for (const statement of statements) results.push(await client.query(statement));
    return results;
  } finally {
    await client.end();
  }
}

/**
 * What pgbench itself does before a run unless given -n: vacuum the two small tables that every
 * TPC-B-like transaction updates, and empty the history. Done directly on the backends for the
 * proxy runs too, so that the measured runs are alike and maintenance never passes the proxy.
 */
export function prepareRun(target: Target): Promise<pg.QueryResult[]> {
  return execute(target, [
    'VACUUM pgbench_branches',
    'VACUUM pgbench_tellers',
    'TRUNCATE pgbench_history',
  ]);
}

/** `pgbench -i` straight to one database. */
export function initialize(
  target: Target,
  scale: number,
  timeoutMs: number,
  options: { steps?: string; onTimeout?: () => Promise<string> } = {},
): Promise<PgbenchOutcome> {
  const args = ['-i', '-q', '-s', String(scale), ...(options.steps ? ['-I', options.steps] : [])];
  return runPgbench(
    [...args, ...connectionArgs(target), target.database],
    pgbenchEnv(target.password),
    timeoutMs,
    options.onTimeout,
  );
}

/** The tables whose contents differ between two databases (checksums of their ordered rows). */
export async function differingTables(a: Target, b: Target): Promise<string[]> {
  const [left, right] = await Promise.all([checksums(a), checksums(b)]);
  const names = new Set([...Object.keys(left), ...Object.keys(right)]);
  return [...names].filter((name) => left[name] !== right[name]).sort();
}

async function checksums(target: Target): Promise<Record<string, string>> {
  const client = new pg.Client({ ...target, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await tableChecksums(client);
  } finally {
    await client.end();
  }
}

/** Row counts of the four pgbench tables, or the error reading them. */
export async function pgbenchRowCounts(target: Target): Promise<Record<string, number> | string> {
  try {
    const [result] = await execute(target, [
      `SELECT (SELECT count(*) FROM pgbench_branches) AS branches,
              (SELECT count(*) FROM pgbench_tellers) AS tellers,
              (SELECT count(*) FROM pgbench_accounts) AS accounts,
              (SELECT count(*) FROM pgbench_history) AS history`,
    ]);
    const row = result?.rows[0] as Record<string, string>;
    return Object.fromEntries(Object.entries(row).map(([name, n]) => [name, Number(n)]));
  } catch (error) {
    return (error as Error).message;
  }
}

/** What a proxy left on a backend: prepared transactions and sessions still connected. */
export async function leftovers(target: Target): Promise<{ prepared: string[]; sessions: number }> {
  const [prepared, sessions] = await execute(target, [
    'SELECT gid FROM pg_prepared_xacts ORDER BY gid',
    `SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
       AND datname = current_database()`,
  ]);
  return {
    prepared: (prepared?.rows ?? []).map((row: { gid: string }) => row.gid),
    sessions: Number(sessions?.rows[0]?.n ?? 0),
  };
}

/** One line per other session of the target's database: state, wait, transaction age, query. */
export async function activity(target: Target): Promise<string> {
  const [sessions, prepared] = await execute(target, [
    `SELECT pid, coalesce(application_name, '') AS app, state,
            coalesce(wait_event_type || ':' || wait_event, '-') AS wait,
            coalesce(round(extract(epoch FROM now() - xact_start))::text || ' s', '-') AS xact,
            coalesce(pg_blocking_pids(pid)::text, '{}') AS blocked_by,
            left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query
       FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
        AND datname = current_database()
      ORDER BY pid`,
    'SELECT gid, prepared FROM pg_prepared_xacts ORDER BY gid',
  ]);
  const lines = (sessions?.rows ?? []).map(
    (row) =>
      `  pid ${row.pid} ${row.app} ${row.state} wait=${row.wait} xact=${row.xact} ` +
      `blocked_by=${row.blocked_by}: ${row.query}`,
  );
  for (const row of prepared?.rows ?? []) lines.push(`  prepared transaction ${row.gid}`);
  return lines.join('\n') || '  (no other sessions)';
}
