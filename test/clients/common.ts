/**
 * What every client-compatibility test shares: the cluster, the scenario's table, the check that
 * a client is installed, and the final step (roll the last change back through the admin API and
 * compare the backends).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestCluster } from '../harness/cluster.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SCRIPTS = path.join(ROOT, 'test/clients/scripts');

/** The columns of every scenario table; `id` is the key the rollback uses. */
export const COLUMNS = '(id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL)';

/**
 * The scenario, the same for every client:
 * 1. one transaction: INSERT 1, 2, 3 (parameters), UPDATE 2 to qty 25, DELETE 3;
 * 2. one prepared INSERT executed for 4, 5, 6, 7 (qty = id * 10), and a prepared SELECT by id
 *    executed for each row;
 * 3. a failing statement inside a transaction, ROLLBACK, and the session works;
 * 4. the last change: DELETE id 7 (a parameter), which the admin API then rolls back.
 */
export const TRANSACTION_ROWS = [
  { id: 1, name: 'one', qty: 10 },
  { id: 2, name: 'two', qty: 25 },
];
export const PREPARED_ROWS = [
  { id: 4, name: 'four', qty: 40 },
  { id: 5, name: 'five', qty: 50 },
  { id: 6, name: 'six', qty: 60 },
  { id: 7, name: 'seven', qty: 70 },
];
export const ALL_ROWS = [...TRANSACTION_ROWS, ...PREPARED_ROWS];

/**
 * The first line a command prints for `--version` (or the given arguments), or undefined when
 * the command cannot be run. Only an absent binary makes a test skip.
 */
export function commandVersion(command: string, args = ['--version']): string | undefined {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 20_000 });
  if (result.error !== undefined || result.status !== 0) return undefined;
  return `${result.stdout}${result.stderr}`.trim().split('\n')[0];
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs a client program to completion with extra environment, killing it (SIGKILL, by its own
 * process) if it outlives `timeoutMs`, so that a hang fails the test instead of stalling the run.
 */
export function runBounded(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 30_000);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** The version field of an installed npm package. */
export function packageVersion(name: string): string {
  const file = path.join(ROOT, 'node_modules', name, 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** A token such as an application holds: read, write and DDL on the cluster, not admin. */
export function appToken(tc: TestCluster, subject: string): Promise<string> {
  return tc.token({ [tc.cluster]: ['read', 'write', 'ddl'] }, subject);
}

/** The rows of a table on one backend, straight from it, ordered by id. */
export async function backendRows(tc: TestCluster, index: number, table: string) {
  const client = await tc.direct(index);
  try {
    const result = await client.query(`SELECT id, name, qty FROM ${table} ORDER BY id`);
    return result.rows as { id: number; name: string; qty: number }[];
  } finally {
    await client.end();
  }
}

export async function assertBackendsEqual(tc: TestCluster, message = 'backends are identical') {
  const [first, second] = await Promise.all([tc.checksums(0), tc.checksums(1)]);
  assert.deepEqual(second, first, message);
}

/**
 * Rolls back the newest committed write of the cluster, which must be the scenario's last change
 * (`DELETE FROM <table> ... id = 7`), then checks that row 7 is back on both backends and that the
 * backends are identical.
 */
export async function rollBackLastDelete(tc: TestCluster, table: string): Promise<void> {
  const listed = await tc.admin('GET', `/queries?cluster=${tc.cluster}&kind=write&limit=20`);
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  const entries = listed.body.queries as { id: number; sql: string; outcome: string }[];
  const last = entries.find((entry) => entry.outcome === 'committed');
  assert.ok(last, 'the last change is in the audit history');
  assert.match(last.sql, new RegExp(`^\\s*DELETE\\s+FROM\\s+"?${table}"?`, 'i'), last.sql);
  const before = await backendRows(tc, 0, table);
  assert.equal(
    before.find((row) => row.id === 7),
    undefined,
    'row 7 is deleted before the rollback',
  );

  const done = await tc.admin('POST', `/queries/${last.id}/rollback`, {});
  assert.equal(done.status, 200, JSON.stringify(done.body));
  assert.equal(done.body.executed, true);
  await assertBackendsEqual(tc, 'backends are identical after the rollback');
  for (const index of [0, 1]) {
    const rows = await backendRows(tc, index, table);
    assert.deepEqual(
      rows.find((row) => row.id === 7),
      { id: 7, name: 'seven', qty: 70 },
      `row 7 is back on backend ${index}`,
    );
  }
}
