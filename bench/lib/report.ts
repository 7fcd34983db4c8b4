import { type PgbenchOutcome, runStatus } from './pgbench-process.ts';

/** One measured pgbench run. */
export interface RunRecord {
  workload: string;
  mode: string;
  target: 'direct' | 'proxy';
  status: 'ok' | 'errors' | 'failed' | 'timed out';
  tps: number | null;
  latencyMs: number | null;
  transactions: number | null;
  failedTransactions: number | null;
  /** Proxy rows: this TPS over the direct TPS of the same workload and mode. */
  tpsRatio: number | null;
  /** Proxy rows: this average latency over the direct one. */
  latencyRatio: number | null;
  /** Proxy rows: CPU time of the proxy process over the run's wall time, in % of one core. */
  proxyCpuPercent: number | null;
  /** Proxy rows: false when the two backends no longer held the same rows after the run. */
  backendsIdentical: boolean | null;
  divergedTables: string[];
  errors: string[];
  elapsedMs: number;
  command: string;
}

export interface Machine {
  nproc: number;
  cpu: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  postgres: string;
  pgbench: string;
  /** 1, 5 and 15 minute load averages when the runs began and when they ended. */
  loadAtStart: number[];
  loadAtEnd: number[];
}

const fixed = (value: number | null, digits: number) =>
  value === null ? '-' : value.toFixed(digits);

/** The result table as aligned plain text. */
export function renderTable(runs: RunRecord[]): string {
  const header = [
    'workload',
    'mode',
    'target',
    'TPS',
    'avg latency ms',
    'proxy/direct TPS',
    'proxy/direct latency',
    'proxy CPU %',
    'status',
  ];
  const rows = runs.map((run) => [
    run.workload,
    run.mode,
    run.target,
    fixed(run.tps, 1),
    fixed(run.latencyMs, 3),
    fixed(run.tpsRatio, 3),
    fixed(run.latencyRatio, 2),
    fixed(run.proxyCpuPercent, 0),
    run.backendsIdentical === false ? `${run.status}, backends differ` : run.status,
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const numeric = new Set([3, 4, 5, 6, 7]);
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

export function renderMachine(machine: Machine): string {
  return [
    `machine: nproc ${machine.nproc}, ${machine.cpu}, ${machine.memoryGiB} GiB, Linux ${machine.kernel}`,
    `versions: PostgreSQL ${machine.postgres}, ${machine.pgbench}, node ${machine.node}`,
    `load average: ${load(machine.loadAtStart)} at the start, ${load(machine.loadAtEnd)} at the end`,
  ].join('\n');
}

const load = (values: number[]) => values.map((value) => value.toFixed(2)).join(' ');

/** The table row of one pgbench run; `direct` is the run to compare a proxy run with. */
export function toRunRecord(
  pair: { workload: string; mode: string },
  target: 'direct' | 'proxy',
  outcome: PgbenchOutcome,
  direct?: PgbenchOutcome,
): RunRecord {
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || b === 0 ? null : Math.round((a / b) * 1000) / 1000;
  return {
    ...pair,
    target,
    status: runStatus(outcome),
    tps: outcome.tps ?? null,
    latencyMs: outcome.latencyMs ?? null,
    transactions: outcome.transactions ?? null,
    failedTransactions: outcome.failedTransactions ?? null,
    tpsRatio: direct ? ratio(outcome.tps, direct.tps) : null,
    latencyRatio: direct ? ratio(outcome.latencyMs, direct.latencyMs) : null,
    proxyCpuPercent: null,
    backendsIdentical: null,
    divergedTables: [],
    errors: outcome.errors,
    elapsedMs: outcome.elapsedMs,
    command: `pgbench ${outcome.args.join(' ')}`,
  };
}
