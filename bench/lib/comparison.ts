// The rows of a benchmark that runs one workload direct and through two replicating proxies.
import { type PgbenchOutcome, runStatus } from './pgbench-process.ts';

export type ComparedTarget = 'direct' | 'qo' | 'pgpool';

export interface ComparedRun {
  workload: string;
  mode: string;
  target: ComparedTarget;
  status: 'ok' | 'errors' | 'failed' | 'timed out';
  tps: number | null;
  latencyMs: number | null;
  transactions: number | null;
  failedTransactions: number | null;
  /** This TPS over the direct TPS of the same workload and mode. */
  tpsVsDirect: number | null;
  /** This average latency over the direct one. */
  latencyVsDirect: number | null;
  /** On the qo row: its TPS over Pgpool-II's, same workload and mode. */
  qoVsPgpoolTps: number | null;
  /** Proxy rows: CPU time of the proxy (all its processes) over the run's wall time, % of one core. */
  proxyCpuPercent: number | null;
  /** Proxy rows: whether its two backends held the same rows after the run. */
  backendsIdentical: boolean | null;
  divergedTables: string[];
  /** Proxy rows: tables of the proxy's own bookkeeping that differ (not counted above). */
  bookkeepingDiffers: string[];
  errors: string[];
  elapsedMs: number;
  command: string;
}

const ratio = (a: number | null | undefined, b: number | null | undefined) =>
  a == null || b == null || b === 0 ? null : Math.round((a / b) * 1000) / 1000;

export function toComparedRun(
  pair: { workload: string; mode: string },
  target: ComparedTarget,
  outcome: PgbenchOutcome,
  direct?: PgbenchOutcome,
): ComparedRun {
  return {
    ...pair,
    target,
    status: runStatus(outcome),
    tps: outcome.tps ?? null,
    latencyMs: outcome.latencyMs ?? null,
    transactions: outcome.transactions ?? null,
    failedTransactions: outcome.failedTransactions ?? null,
    tpsVsDirect: target === 'direct' ? null : ratio(outcome.tps, direct?.tps),
    latencyVsDirect: target === 'direct' ? null : ratio(outcome.latencyMs, direct?.latencyMs),
    qoVsPgpoolTps: null,
    proxyCpuPercent: null,
    backendsIdentical: null,
    divergedTables: [],
    bookkeepingDiffers: [],
    errors: outcome.errors,
    elapsedMs: outcome.elapsedMs,
    command: `pgbench ${outcome.args.join(' ')}`,
  };
}

/** Fills in qo/pgpool on the qo row of each workload and mode that has both. */
export function compareProxies(runs: ComparedRun[]): void {
  for (const qo of runs.filter((run) => run.target === 'qo')) {
    const pgpool = runs.find(
      (run) => run.target === 'pgpool' && run.workload === qo.workload && run.mode === qo.mode,
    );
    qo.qoVsPgpoolTps = ratio(qo.tps, pgpool?.tps);
  }
}

const fixed = (value: number | null, digits: number) =>
  value === null ? '-' : value.toFixed(digits);

/** The result table as aligned plain text. */
export function renderComparison(runs: ComparedRun[]): string {
  const header = [
    'workload',
    'mode',
    'target',
    'TPS',
    'avg latency ms',
    'qo/pgpool TPS',
    'TPS/direct',
    'latency/direct',
    'proxy CPU %',
    'identical backends',
    'status',
  ];
  const rows = runs.map((run) => [
    run.workload,
    run.mode,
    run.target,
    fixed(run.tps, 1),
    fixed(run.latencyMs, 3),
    fixed(run.qoVsPgpoolTps, 3),
    fixed(run.tpsVsDirect, 3),
    fixed(run.latencyVsDirect, 2),
    fixed(run.proxyCpuPercent, 0),
    run.backendsIdentical === null ? '-' : run.backendsIdentical ? 'yes' : 'no',
    run.status,
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const numeric = new Set([3, 4, 5, 6, 7, 8]);
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        numeric.has(column) ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0),
      )
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}
