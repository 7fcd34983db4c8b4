import type { ProfileSummary } from './cpu-profile.ts';

export type CaptureSetting = 'on' | 'off';

/** One measured pgbench run of the capture benchmark. */
export interface CaptureRun {
  round: number;
  workload: string;
  mode: string;
  capture: CaptureSetting;
  status: 'ok' | 'errors' | 'failed' | 'timed out';
  tps: number | null;
  latencyMs: number | null;
  transactions: number | null;
  /** CPU milliseconds per committed transaction, by process, measured from /proc. */
  cpuPerTxnMs: {
    proxy: number | null;
    backends: number | null;
    catalog: number | null;
    /** pgbench and the benchmark's own process. */
    pgbench: number | null;
  };
  /** Busy share of all cores of the machine during the run, in %. */
  machineBusyPercent: number | null;
  /**
   * Share of all cores used by processes outside the benchmark during the run, in %: above a
   * few percent, something else competed for the machine and the run is not comparable.
   */
  outsideBusyPercent: number | null;
  /** The run's committed writes in the audit catalog, by reversibility. */
  audit: Record<string, number>;
  backendsIdentical: boolean | null;
  errors: string[];
  command: string;
  /** With --profile: the proxy's CPU profile over the run's window. */
  profile?: ProfileSummary;
}

const fixed = (value: number | null | undefined, digits: number) =>
  value === null || value === undefined ? '-' : value.toFixed(digits);

/** Aligned plain-text table; columns listed in `numeric` are right-aligned. */
export function table(header: string[], rows: string[][], numeric: ReadonlySet<number>): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
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

export function renderRuns(runs: readonly CaptureRun[]): string {
  const header = [
    'round',
    'workload',
    'mode',
    'capture',
    'TPS',
    'avg latency ms',
    'proxy CPU ms/txn',
    'backends CPU ms/txn',
    'catalog CPU ms/txn',
    'pgbench CPU ms/txn',
    'machine busy %',
    'outside %',
    'audit',
    'status',
  ];
  const rows = runs.map((run) => [
    String(run.round),
    run.workload,
    run.mode,
    run.capture,
    fixed(run.tps, 1),
    fixed(run.latencyMs, 3),
    fixed(run.cpuPerTxnMs.proxy, 3),
    fixed(run.cpuPerTxnMs.backends, 3),
    fixed(run.cpuPerTxnMs.catalog, 3),
    fixed(run.cpuPerTxnMs.pgbench, 3),
    fixed(run.machineBusyPercent, 0),
    fixed(run.outsideBusyPercent, 0),
    Object.entries(run.audit)
      .map(([reversibility, n]) => `${n} ${reversibility}`)
      .join(', ') || '-',
    run.backendsIdentical === false ? `${run.status}, backends differ` : run.status,
  ]);
  return table(header, rows, new Set([0, 4, 5, 6, 7, 8, 9, 10, 11]));
}

/** The on and off runs of the same round, workload and mode. */
export function pairs(runs: readonly CaptureRun[]): { on: CaptureRun; off: CaptureRun }[] {
  const found: { on: CaptureRun; off: CaptureRun }[] = [];
  for (const on of runs.filter((run) => run.capture === 'on')) {
    const off = runs.find(
      (run) =>
        run.capture === 'off' &&
        run.round === on.round &&
        run.workload === on.workload &&
        run.mode === on.mode,
    );
    if (off !== undefined) found.push({ on, off });
  }
  return found;
}

export function ratio(on: CaptureRun, off: CaptureRun): number | null {
  if (on.tps === null || off.tps === null || off.tps === 0) return null;
  return Math.round((on.tps / off.tps) * 1000) / 1000;
}

/** CPU milliseconds per transaction of everything a run uses: proxy, backends, catalog, pgbench. */
export function cpuPerTxn(run: CaptureRun): number | null {
  const parts = Object.values(run.cpuPerTxnMs);
  if (parts.some((part) => part === null)) return null;
  return parts.reduce<number>((sum, part) => sum + (part ?? 0), 0);
}

/**
 * The on/off throughput ratio as measured, and as the CPU per transaction predicts it: when the
 * machine's cores are the bottleneck (every process of the run shares them), throughput goes
 * as the inverse of CPU per transaction, a figure that other load on the machine disturbs far
 * less than TPS.
 */
export function cpuRatio(on: CaptureRun, off: CaptureRun): number | null {
  const a = cpuPerTxn(on);
  const b = cpuPerTxn(off);
  return a === null || b === null || a === 0 ? null : Math.round((b / a) * 1000) / 1000;
}

export function renderRatios(runs: readonly CaptureRun[], target: number): string {
  const cost = (r: number | null) => (r === null ? '-' : `${((1 - r) * 100).toFixed(1)}%`);
  const verdict = (r: number | null) =>
    r === null ? '-' : (1 - r) * 100 <= target ? 'within target' : 'over target';
  const rows = pairs(runs).map(({ on, off }) => {
    const r = ratio(on, off);
    const c = cpuRatio(on, off);
    return [
      String(on.round),
      on.workload,
      on.mode,
      fixed(on.tps, 1),
      fixed(off.tps, 1),
      fixed(r, 3),
      cost(r),
      verdict(r),
      fixed(cpuPerTxn(on), 3),
      fixed(cpuPerTxn(off), 3),
      fixed(c, 3),
      cost(c),
    ];
  });
  const header = [
    'round',
    'workload',
    'mode',
    'TPS on',
    'TPS off',
    'on/off',
    'cost',
    'TPS verdict',
    'CPU ms/txn on',
    'CPU ms/txn off',
    'off/on CPU',
    'cost by CPU',
  ];
  const rounds = new Set(runs.map((run) => run.round)).size;
  const each = table(header, rows, new Set([0, 3, 4, 5, 6, 8, 9, 10, 11]));
  return rounds > 1 ? `${each}\n\n${renderMedians(runs, target)}` : each;
}

function median(values: number[]): number | null {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Over several rounds: the median ratios of each workload and mode. */
function renderMedians(runs: readonly CaptureRun[], target: number): string {
  const groups = new Map<string, { on: CaptureRun; off: CaptureRun }[]>();
  for (const pair of pairs(runs)) {
    const key = `${pair.on.workload} ${pair.on.mode}`;
    groups.set(key, [...(groups.get(key) ?? []), pair]);
  }
  const rows = [...groups].map(([key, list]) => {
    const r = median(list.map(({ on, off }) => ratio(on, off) ?? Number.NaN));
    const c = median(list.map(({ on, off }) => cpuRatio(on, off) ?? Number.NaN));
    const [workload = '', mode = ''] = key.split(' ');
    const cost = (x: number | null) => (x === null ? '-' : `${((1 - x) * 100).toFixed(1)}%`);
    const verdict = r === null ? '-' : (1 - r) * 100 <= target ? 'within target' : 'over target';
    return [
      workload,
      mode,
      String(list.length),
      fixed(r, 3),
      cost(r),
      verdict,
      fixed(c, 3),
      cost(c),
    ];
  });
  const header = [
    'workload',
    'mode',
    'rounds',
    'median on/off',
    'cost',
    'TPS verdict',
    'median off/on CPU',
    'cost by CPU',
  ];
  return `medians\n${table(header, rows, new Set([2, 3, 4, 6, 7]))}`;
}

/** Microseconds of proxy CPU per transaction, from a profile's self time. */
function perTxnUs(ms: number, run: CaptureRun): number {
  return run.transactions ? (ms * 1000) / run.transactions : Number.NaN;
}

/**
 * Where the proxy's extra time per transaction goes with capture on: self time per area and
 * per function, on versus off, both per transaction, largest increase first.
 */
export function renderProfileComparison(on: CaptureRun, off: CaptureRun, top = 15): string {
  if (on.profile === undefined || off.profile === undefined) return '';
  const onProfile = on.profile;
  const offProfile = off.profile;
  const compare = (onEntries: [string, number][], offEntries: [string, number][]) => {
    const keys = new Set([...onEntries, ...offEntries].map(([key]) => key));
    const onMap = new Map(onEntries);
    const offMap = new Map(offEntries);
    return [...keys]
      .map((key) => {
        const a = perTxnUs(onMap.get(key) ?? 0, on);
        const b = perTxnUs(offMap.get(key) ?? 0, off);
        return { key, on: a, off: b, added: a - b };
      })
      .sort((x, y) => y.added - x.added);
  };
  const render = (title: string, list: ReturnType<typeof compare>) =>
    `${title}\n${table(
      ['us/txn on', 'us/txn off', 'added', title.startsWith('area') ? 'area' : 'function'],
      list
        .slice(0, top)
        .map((row) => [fixed(row.on, 1), fixed(row.off, 1), fixed(row.added, 1), row.key]),
      new Set([0, 1, 2]),
    )}`;
  const totalOn = perTxnUs(onProfile.sampledMs, on);
  const totalOff = perTxnUs(offProfile.sampledMs, off);
  const idle = (p: ProfileSummary, run: CaptureRun) =>
    perTxnUs(p.areas.find(([area]) => area === '(idle)')?.[1] ?? 0, run);
  return [
    `proxy profile, ${on.workload} -M ${on.mode} round ${on.round}: ` +
      `busy ${fixed(totalOn - idle(onProfile, on), 1)} us/txn with capture, ` +
      `${fixed(totalOff - idle(offProfile, off), 1)} us/txn without` +
      (onProfile.windowed && offProfile.windowed ? '' : ' (whole profiles: window missed)'),
    render('areas', compare(onProfile.areas, offProfile.areas)),
    render('functions', compare(onProfile.functions, offProfile.functions)),
  ].join('\n\n');
}
