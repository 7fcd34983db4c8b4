import assert from 'node:assert/strict';
import { loadModule, parseSync } from 'libpg-query';
import {
  encodeUndo,
  type PlanOptions,
  planCapture,
  type ResolveTable,
} from '../../rollback/plan.ts';
import type { CapturedRow, CaptureOutcome, CapturePlan, NoCapture } from '../../rollback/types.ts';
import type { Rollback } from '../../src/cluster/audit.ts';
import { startTestPostgres, type TestPostgres } from '../harness/postgres.ts';
import { type Result, WireClient } from './wire.ts';

/*
 * Runs capture plans the way the proxy will, on one connection: `before` statements and the
 * rewritten statement in one transaction with the client's parameters, hidden columns in
 * binary, then the `after` statements without parameters; then undo statements bound with their
 * binary values and type OIDs.
 */

export interface Server {
  pg: TestPostgres;
  client: WireClient;
  /** A second connection, for concurrent changes. */
  other: WireClient;
  close(): Promise<void>;
}

export async function startServer(): Promise<Server> {
  await loadModule();
  const pg = await startTestPostgres();
  const options = { host: pg.host, port: pg.port, user: pg.user, database: pg.database };
  const client = await WireClient.connect(options);
  const other = await WireClient.connect(options);
  return {
    pg,
    client,
    other,
    close: async () => {
      await client.close();
      await other.close();
      await pg.stop();
    },
  };
}

export function plan(
  sql: string,
  resolve: ResolveTable,
  maxRows = 10_000,
  options: Omit<PlanOptions, 'maxRows'> = {},
): CapturePlan | NoCapture {
  const node = parseSync(sql).stmts![0]!.stmt!;
  return planCapture({ node, sql }, resolve, { maxRows, ...options });
}

export function mustPlan(sql: string, resolve: ResolveTable, maxRows?: number): CapturePlan {
  const planned = plan(sql, resolve, maxRows);
  assert.ok('build' in planned, `expected a capture plan, got: ${JSON.stringify(planned)}`);
  return planned;
}

export function captured(result: Result): CapturedRow[] {
  return result.rows.map((row) => row.map((value, i) => ({ oid: result.fields[i]!.oid, value })));
}

export interface Executed {
  outcome: CaptureOutcome;
  /** What the client would see: each row without the hidden columns. */
  clientRows: CapturedRow[];
  command: string;
}

/**
 * Executes a plan in its own transaction. `between` runs after the `before` reads and before
 * the statement (to stage a concurrent change).
 */
export async function execute(
  client: WireClient,
  planned: CapturePlan,
  params: (Buffer | string | null)[] = [],
  types: number[] = [],
  between?: () => Promise<void>,
): Promise<Executed> {
  await client.query('BEGIN');
  try {
    const before: CapturedRow[][] = [];
    for (const sql of planned.before) before.push(captured(await client.run(sql, params, types)));
    await between?.();
    const result = await client.run(planned.statement, params, types);
    const after: CapturedRow[][] = [];
    for (const sql of planned.after ?? []) after.push(captured(await client.run(sql)));
    const rows = captured(result);
    const visible = rows.map((row) => row.slice(0, row.length - planned.hiddenColumns));
    const returned = rows.map((row) => row.slice(row.length - planned.hiddenColumns));
    const count = /(\d+)$/.exec(result.command)?.[1];
    const rowCount = count === undefined ? null : Number(count);
    const outcome = planned.build({ before, returned, after, rowCount });
    await client.query('COMMIT');
    return { outcome, clientRows: visible, command: result.command };
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

export async function undo(client: WireClient, rollback: Rollback | null): Promise<void> {
  assert.ok(rollback, 'expected a rollback');
  await client.query('BEGIN');
  try {
    for (const stmt of rollback.statements) {
      const { types, values } = encodeUndo(stmt);
      await client.run(stmt.sql, values, types);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

/**
 * A table's exact contents: each row's binary values (ordered by the row's text) and the md5
 * of each row's text, so that equal snapshots mean byte-identical rows.
 */
export async function snapshot(client: WireClient, table: string): Promise<string[]> {
  const result = await client.run(
    `SELECT md5(t::text), t.* FROM ${table} t ORDER BY t::text COLLATE "C"`,
  );
  return result.rows.map((row) =>
    row.map((v) => (v === null ? 'NULL' : v.toString('hex'))).join('|'),
  );
}

/** Runs a statement with a plan, checks that its undo restores the table, and returns both. */
export async function roundTrip(
  client: WireClient,
  resolve: ResolveTable,
  table: string,
  sql: string,
  params: (Buffer | string | null)[] = [],
  types: number[] = [],
): Promise<Executed> {
  const start = await snapshot(client, table);
  const executed = await execute(client, mustPlan(sql, resolve), params, types);
  assert.notDeepEqual(await snapshot(client, table), start, 'the statement changed nothing');
  await undo(client, executed.outcome.rollback);
  assert.deepEqual(await snapshot(client, table), start);
  return executed;
}
