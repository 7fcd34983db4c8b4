import { readdir, readFile } from 'node:fs/promises';

/*
 * CPU time from /proc, to say which process a run's time went to. Fields of /proc/<pid>/stat
 * after the command name: state is field 3, ppid 4, utime 14, stime 15, cutime 16, cstime 17,
 * all in clock ticks of 10 ms (see proc(5)).
 */

const TICK_MS = 10;

interface ProcStat {
  ppid: number;
  /** utime + stime */
  own: number;
  /** cutime + cstime: children that exited and were waited for. */
  children: number;
}

async function procStat(pid: number): Promise<ProcStat | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; count fields after its closing parenthesis.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const n = (i: number) => Number(fields[i]);
    return { ppid: n(1), own: n(11) + n(12), children: n(13) + n(14) };
  } catch {
    return undefined;
  }
}

/**
 * CPU milliseconds a PostgreSQL server has used so far: the postmaster, its live children
 * (backends, background workers), and the children it already reaped. The difference of two
 * readings is exact even when backends start and exit in between: an exited backend's time
 * moves from the live sum to the postmaster's children counters. A child reaped while the
 * children are being read would be missed or counted twice, so the reading is taken again
 * until the postmaster's counters did not move during it.
 */
export async function serverCpuMs(postmaster: number): Promise<number | undefined> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const before = await procStat(postmaster);
    if (before === undefined) return undefined;
    let live = 0;
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = await procStat(Number(entry));
      if (stat?.ppid === postmaster) live += stat.own;
    }
    const after = await procStat(postmaster);
    if (after?.children === before.children) return (before.own + before.children + live) * TICK_MS;
  }
  return undefined;
}

/**
 * CPU milliseconds of this process and of the children it has waited for (pgbench runs), so far.
 */
export async function selfCpuMs(): Promise<number> {
  const stat = await procStat(process.pid);
  return ((stat?.own ?? 0) + (stat?.children ?? 0)) * TICK_MS;
}

/** Busy and total CPU milliseconds of the whole machine, summed over its cores (/proc/stat). */
export async function machineCpuMs(): Promise<{ busy: number; total: number }> {
  const text = await readFile('/proc/stat', 'utf8');
  const values = (text.split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const total = values.slice(0, 8).reduce((sum, v) => sum + v, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: (total - idle) * TICK_MS, total: total * TICK_MS };
}

/** CPU milliseconds used so far by the processes of a measured run, and by the whole machine. */
export interface CpuReading {
  proxy: number | undefined;
  /** The servers whose cost is measured (a cluster's backends). */
  measured: number | undefined;
  catalog: number | undefined;
  /** The proxy and every server the benchmark started. */
  started: number | undefined;
  /** This process and the children it waited for (pgbench). */
  self: number;
  machine: { busy: number; total: number };
}

interface Server {
  pid: number;
}

export async function readCpu(
  proxy: { cpuMs(): Promise<number | undefined> },
  measured: readonly Server[],
  others: readonly Server[],
  catalog: Server,
): Promise<CpuReading> {
  const read = (servers: readonly Server[]) =>
    Promise.all(servers.map((server) => serverCpuMs(server.pid)));
  const [proxyMs, measuredMs, othersMs, catalogMs, self, machine] = await Promise.all([
    proxy.cpuMs(),
    read(measured),
    read(others),
    serverCpuMs(catalog.pid),
    selfCpuMs(),
    machineCpuMs(),
  ]);
  const sum = (values: (number | undefined)[]) =>
    values.some((v) => v === undefined)
      ? undefined
      : values.reduce<number>((total, v) => total + (v ?? 0), 0);
  return {
    proxy: proxyMs,
    measured: sum(measuredMs),
    catalog: catalogMs,
    started: sum([proxyMs, ...measuredMs, ...othersMs, catalogMs]),
    self,
    machine,
  };
}

/**
 * CPU per transaction between two readings, by process, and the busy share of the machine:
 * all of it, and what processes outside the benchmark used (other load that disturbs a run).
 */
export function cpuUsage(before: CpuReading, after: CpuReading, transactions: number) {
  const perTxn = (pick: (reading: CpuReading) => number | undefined): number | null => {
    const a = pick(before);
    const b = pick(after);
    return a === undefined || b === undefined || transactions === 0 ? null : (b - a) / transactions;
  };
  const total = after.machine.total - before.machine.total;
  const share = (ms: number | undefined) =>
    ms === undefined || total <= 0 ? null : Math.round((ms / total) * 100);
  const outside = (r: CpuReading) =>
    r.started === undefined ? undefined : r.machine.busy - r.started - r.self;
  const a = outside(before);
  const b = outside(after);
  return {
    cpuPerTxnMs: {
      proxy: perTxn((r) => r.proxy),
      backends: perTxn((r) => r.measured),
      catalog: perTxn((r) => r.catalog),
      pgbench: perTxn((r) => r.self),
    },
    machineBusyPercent: share(after.machine.busy - before.machine.busy),
    outsideBusyPercent: share(a === undefined || b === undefined ? undefined : b - a),
  };
}
