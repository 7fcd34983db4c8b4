import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { execute, type Target } from './pgbench-setup.ts';

/*
 * The tables and pgbench scripts of the capture benchmark. Both are created straight on every
 * backend before the proxy starts, so the proxy's metadata scan at start knows them: a table
 * missing from the metadata is not captured, which would make capture look free.
 */

export const UPDATE_ROWS = 100_000;
/** Keys of the rows client c deletes: c * STRIDE + 1, + 2, ... (pgbench numbers clients from 0). */
const STRIDE = 100_000_000;

export type WorkloadName = 'update' | 'delete';

export const WORKLOADS: readonly { name: WorkloadName; script: string }[] = [
  {
    name: 'update',
    script: [
      `\\set id random(1, ${UPDATE_ROWS})`,
      'UPDATE capture_update SET counter = counter + 1 WHERE id = :id;',
    ].join('\n'),
  },
  {
    // pgbench keeps a client's variables from one transaction to the next, so `n` counts the
    // client's transactions (from -D n=0) and every DELETE finds a row no other one took.
    name: 'delete',
    script: [
      '\\set n :n + 1',
      `\\set id :client_id * ${STRIDE} + :n`,
      'DELETE FROM capture_delete WHERE id = :id;',
    ].join('\n'),
  },
];

/** Writes each workload's script into `dir`; returns the file of each. */
export async function writeScripts(dir: string): Promise<Record<WorkloadName, string>> {
  const files = {} as Record<WorkloadName, string>;
  for (const workload of WORKLOADS) {
    const file = path.join(dir, `${workload.name}.sql`);
    await writeFile(file, `${workload.script}\n`);
    files[workload.name] = file;
  }
  return files;
}

export function createTables(target: Target): Promise<unknown> {
  return execute(target, [
    'CREATE TABLE capture_update (id integer PRIMARY KEY, counter bigint NOT NULL, note text NOT NULL)',
    `INSERT INTO capture_update SELECT g, 0, 'row ' || g FROM generate_series(1, ${UPDATE_ROWS}) g`,
    'CREATE TABLE capture_delete (id bigint PRIMARY KEY, note text NOT NULL)',
    'VACUUM ANALYZE capture_update',
  ]);
}

/** Vacuums what the last run left, and refills the rows a DELETE run consumes. */
export function prepareWorkload(
  target: Target,
  workload: WorkloadName,
  clients: number,
  perClient: number,
): Promise<unknown> {
  if (workload === 'update') return execute(target, ['VACUUM capture_update']);
  return execute(target, [
    'TRUNCATE capture_delete',
    `INSERT INTO capture_delete SELECT c * ${STRIDE} + n, 'row ' || n
       FROM generate_series(0, ${clients - 1}) c, generate_series(1, ${perClient}) n`,
    'VACUUM ANALYZE capture_delete',
  ]);
}

export async function countRows(target: Target, table: string): Promise<number> {
  const [result] = await execute(target, [`SELECT count(*)::bigint AS n FROM ${table}`]);
  return Number(result?.rows[0]?.n ?? Number.NaN);
}

/** The audit catalog, read directly: how the proxy recorded the changes of a run. */
export class AuditReader {
  constructor(private readonly url: string) {}

  private async query<T extends pg.QueryResultRow>(sql: string, params: unknown[]) {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 10_000 });
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  async lastId(): Promise<number> {
    const rows = await this.query<{ id: string | null }>(
      'SELECT max(id)::text AS id FROM qo.audit_entries',
      [],
    );
    return Number(rows[0]?.id ?? 0);
  }

  /** Committed writes of a cluster after entry `afterId`, counted by reversibility. */
  async reversibility(cluster: string, afterId: number): Promise<Record<string, number>> {
    const rows = await this.query<{ reversibility: string; n: string }>(
      `SELECT reversibility, count(*)::text AS n FROM qo.audit_entries
        WHERE cluster = $1 AND id > $2 AND kind = 'write' AND outcome = 'committed'
        GROUP BY 1 ORDER BY 1`,
      [cluster, afterId],
    );
    return Object.fromEntries(rows.map((row) => [row.reversibility, Number(row.n)]));
  }
}
