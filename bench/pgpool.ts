// Write throughput of QueryOrchestrator against Pgpool-II in native replication mode, each on
// its own two throwaway backends, with a direct run on one PostgreSQL as the reference.
//
// Both proxies replicate by sending every write to every backend; QueryOrchestrator commits
// with two-phase commit and captures undo data, Pgpool-II commits on each backend in turn. The
// runs of one workload and mode follow each other (direct, qo, pgpool), so that the ratios
// compare figures taken on the same machine a moment apart.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { type EmbeddedPostgres, startPostgres } from '../src/embedded/postgres.ts';
import { secondsArgument } from './lib/args.ts';
import {
  type ComparedRun,
  compareProxies,
  renderComparison,
  toComparedRun,
} from './lib/comparison.ts';
import {
  describe,
  type PgbenchOutcome,
  pgbenchEnv,
  runPgbench,
  succeeded,
} from './lib/pgbench-process.ts';
import {
  activity,
  connectionArgs,
  differingTables,
  execute,
  initialize,
  pgbenchRowCounts,
  type Target,
} from './lib/pgbench-setup.ts';
import { findPgpool, PGPOOL_INSTALL_HINT, pgpoolVersion } from './lib/pgpool-process.ts';
import { pgpoolII, queryOrchestrator, type Replicator } from './lib/replicators.ts';
import { type Machine, renderMachine } from './lib/report.ts';
import {
  clearLeftovers,
  INSERT_LOCK_TABLE,
  INSERT_SCRIPT,
  INSERTS_TABLE,
  initializeDirectly,
  prepareWrites,
} from './lib/write-workload.ts';

const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
const SCALE = 1;
const CLIENTS = 4;
const THREADS = 2;
const INIT_TIMEOUT_MS = 120_000;
/** Past its -T, pgbench still finishes the transactions in flight and disconnects. */
const RUN_GRACE_MS = 30_000;
const MODES = ['simple', 'extended'] as const;

const USAGE = `Usage: npm run bench -- pgpool [--seconds N]

Starts five PostgreSQL servers (two backends for QueryOrchestrator, two for Pgpool-II, one
catalog; the direct reference is a database of the first), QueryOrchestrator and Pgpool-II in
native replication mode, and initializes pgbench data (scale ${SCALE}) through each proxy.
Then runs pgbench -c ${CLIENTS} -j ${THREADS} for N seconds (default 10) per workload
(TPC-B-like, INSERT only), query mode (simple, extended) and target (direct, qo, pgpool),
and checks after each proxy run that its two backends hold the same rows. Prints a table
and writes bench/results/pgpool-<timestamp>.json. Needs pgpool (${PGPOOL_INSTALL_HINT}).
`;

interface Bench {
  direct: Target;
  systems: Replicator[];
  insertScript: string;
  findings: string[];
}

export async function main(argv: string[]): Promise<number> {
  const parsed = secondsArgument(argv, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const { seconds } = parsed;
  const program = findPgpool();
  if (program === undefined) {
    process.stderr.write(
      `pgpool (Pgpool-II) is not installed. Install it: ${PGPOOL_INSTALL_HINT}\n`,
    );
    return 2;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  await mkdir(RESULTS_DIR, { recursive: true });
  const logs = {
    qo: path.join(RESULTS_DIR, `pgpool-${stamp}.proxy.log`),
    pgpool: path.join(RESULTS_DIR, `pgpool-${stamp}.pgpool.log`),
  };
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'qo-bench-pgpool-'));
  const servers: EmbeddedPostgres[] = [];
  const runs: ComparedRun[] = [];
  let bench: Bench | undefined;
  let machine: Machine | undefined;
  const init: Record<string, unknown> = {};
  let failure: string | undefined;
  try {
    const started = await Promise.allSettled(Array.from({ length: 5 }, () => startPostgres()));
    for (const result of started) if (result.status === 'fulfilled') servers.push(result.value);
    const refused = started.find((result) => result.status === 'rejected');
    if (refused !== undefined) throw refused.reason;
    bench = await setUp(servers, program, logs, scratch);
    for (const system of bench.systems) await system.start();
    machine = await describeMachine(bench.direct);
    init['direct'] = await initializeDirectly(bench.direct, SCALE, INIT_TIMEOUT_MS);
    for (const system of bench.systems) init[system.name] = await initializeThrough(bench, system);
    await measure(bench, seconds, runs);
    machine.loadAtEnd = os.loadavg();
  } catch (error) {
    failure = (error as Error).stack ?? String(error);
  } finally {
    await Promise.allSettled((bench?.systems ?? []).map((system) => system.stop()));
    await Promise.allSettled(servers.map((server) => server.stop()));
    await rm(scratch, { recursive: true, force: true });
  }
  compareProxies(runs);
  const findings = bench?.findings ?? [];
  const version = pgpoolVersion(program);
  if (machine !== undefined) {
    process.stdout.write(
      `\npgbench -c ${CLIENTS} -j ${THREADS} -T ${seconds}, scale ${SCALE}; direct = one ` +
        `PostgreSQL; qo = QueryOrchestrator, pgpool = Pgpool-II native replication, each on ` +
        `two backends of its own\n${renderMachine(machine)}\n${version}\n\n` +
        `${renderComparison(runs)}\n`,
    );
  }
  const bookkeeping = [
    ...new Set(runs.flatMap((run) => run.bookkeepingDiffers.map((t) => `${run.target} ${t}`))),
  ];
  if (bookkeeping.length > 0) {
    process.stdout.write(
      `\nidentical backends leaves out the proxies' own tables, which differed: ` +
        `${bookkeeping.join(', ')} (Pgpool-II writes its insert_lock rows on node 0 only)\n`,
    );
  }
  if (findings.length > 0) {
    process.stdout.write(`\nFindings:\n${findings.map((f) => `- ${f}`).join('\n')}\n`);
  }
  const file = path.join(RESULTS_DIR, `pgpool-${stamp}.json`);
  const settings = { startedAt: stamp, seconds, scale: SCALE, clients: CLIENTS, threads: THREADS };
  const result = {
    ...settings,
    machine,
    pgpool: version,
    insertOnly: { table: INSERTS_TABLE, script: INSERT_SCRIPT },
    init,
    runs,
    findings,
    failure: failure ?? null,
  };
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`\nresults: ${path.relative(process.cwd(), file)}\n`);
  process.stdout.write(
    `logs: ${path.relative(process.cwd(), logs.qo)}, ${path.relative(process.cwd(), logs.pgpool)}\n`,
  );
  if (failure !== undefined) {
    process.stderr.write(`benchmark failed: ${failure}\n`);
    return 1;
  }
  // A proxy that misbehaves is a finding; a failed direct run or a proxy that died means the
  // benchmark could not measure.
  const directFailed = runs.some((run) => run.target === 'direct' && run.status !== 'ok');
  if (directFailed) process.stderr.write('a direct run failed: the measurements are not usable\n');
  const crashed = findings.some((finding) => / exited during /.test(finding));
  return directFailed || crashed ? 1 : 0;
}

async function setUp(
  servers: EmbeddedPostgres[],
  program: string,
  logs: { qo: string; pgpool: string },
  scratch: string,
): Promise<Bench> {
  const [qo0, qo1, catalog, pool0, pool1] = servers.map(
    (server): Target => ({
      host: '127.0.0.1',
      port: server.port,
      user: 'postgres',
      database: 'postgres',
    }),
  ) as [Target, Target, Target, Target, Target];
  // The direct runs use their own database on the first server: the cluster's copies stay
  // untouched, so that each proxy run can be checked for divergence.
  await execute(qo0, ['CREATE DATABASE bench_direct']);
  await Promise.all([pool0, pool1].map((backend) => execute(backend, INSERT_LOCK_TABLE)));
  const insertScript = path.join(scratch, 'insert-only.sql');
  await writeFile(insertScript, INSERT_SCRIPT);
  const catalogUrl = `postgres://postgres@127.0.0.1:${catalog.port}/postgres`;
  const secret = randomBytes(24).toString('hex');
  const systems = [
    queryOrchestrator([qo0, qo1], catalogUrl, secret, logs.qo),
    pgpoolII(program, [pool0, pool1], logs.pgpool),
  ];
  const bench: Bench = {
    direct: { ...qo0, database: 'bench_direct' },
    systems,
    insertScript,
    findings: [],
  };
  return bench;
}

/**
 * `pgbench -i` and the INSERT table through the proxy; on any failure, or backends left
 * different, the finding is recorded and both backends are initialized directly.
 */
async function initializeThrough(bench: Bench, system: Replicator) {
  const outcome = await initialize(system.target(), SCALE, INIT_TIMEOUT_MS, {
    onTimeout: () => probe(system),
  });
  const result = {
    elapsedMs: outcome.elapsedMs,
    throughProxy: succeeded(outcome),
    output: outcome.stdout + outcome.stderr,
    insertsTable: 'created through the proxy',
    resynced: false,
  };
  const label = `through ${system.name}`;
  let ok = result.throughProxy;
  if (!ok) bench.findings.push(`pgbench -i -s ${SCALE} ${label} failed: ${describe(outcome)}`);
  if (ok) {
    try {
      await execute(system.target(), [INSERTS_TABLE]);
    } catch (error) {
      ok = false;
      result.insertsTable = (error as Error).message;
      bench.findings.push(`CREATE TABLE bench_inserts ${label} failed: ${result.insertsTable}`);
    }
  }
  if (ok) {
    const counts = await Promise.all(system.backends.map(pgbenchRowCounts));
    const differ = (await compareBackends(system)).data;
    const expected = {
      branches: SCALE,
      tellers: 10 * SCALE,
      accounts: 100_000 * SCALE,
      history: 0,
    };
    if (differ.length > 0 || !counts.every((count) => isDeepStrictEqual(count, expected))) {
      ok = false;
      bench.findings.push(
        `initialization ${label} reported success but left the backends with ` +
          `${JSON.stringify(counts)}; tables that differ: ${differ.join(', ') || 'none'}`,
      );
    }
  }
  if (!ok) {
    await resync(bench, system);
    result.resynced = true;
  }
  return result;
}

/** The tables that differ between a system's backends, its own bookkeeping apart. */
async function compareBackends(system: Replicator) {
  const differ = await differingTables(...system.backends);
  const own = (name: string) => system.bookkeeping?.test(name) ?? false;
  return { data: differ.filter((name) => !own(name)), bookkeeping: differ.filter(own) };
}

/** What the sessions on both backends of a system are doing, for a run that stopped moving. */
async function probe(system: Replicator): Promise<string> {
  const parts = await Promise.all(
    system.backends.map(async (backend, index) => `backend ${index}:\n${await activity(backend)}`),
  );
  return parts.join('\n');
}

/** Every workload and mode: direct, then each proxy; each run is added to `runs`. */
async function measure(bench: Bench, seconds: number, runs: ComparedRun[]): Promise<void> {
  const workloads = [
    { name: 'tpcb-like', args: [] as string[] },
    { name: 'insert-only', args: ['-f', bench.insertScript] },
  ];
  for (const workload of workloads) {
    for (const mode of MODES) {
      const pair = { workload: workload.name, mode };
      const args = ['-n', '-c', String(CLIENTS), '-j', String(THREADS), '-T', String(seconds)];
      const command = [...args, ...workload.args, '-M', mode];
      await prepareWrites(bench.direct);
      const direct = await runOnce(bench.direct, command, seconds);
      const directRun = toComparedRun(pair, 'direct', direct);
      runs.push(directRun);
      if (directRun.status !== 'ok') {
        bench.findings.push(`${workload.name} -M ${mode} direct: ${describe(direct)}`);
      }
      for (const system of bench.systems) {
        await Promise.all(system.backends.map(prepareWrites));
        const cpuBefore = await system.cpuMs();
        const outcome = await runOnce(system.target(), command, seconds, () => probe(system));
        const cpuAfter = await system.cpuMs();
        const run = toComparedRun(pair, system.name, outcome, direct);
        if (cpuBefore !== undefined && cpuAfter !== undefined) {
          run.proxyCpuPercent = Math.round(((cpuAfter - cpuBefore) / outcome.elapsedMs) * 100);
        }
        runs.push(run);
        await checkAfterRun(bench, system, run, outcome);
      }
    }
  }
}

function runOnce(
  target: Target,
  args: string[],
  seconds: number,
  onTimeout?: () => Promise<string>,
): Promise<PgbenchOutcome> {
  return runPgbench(
    [...args, ...connectionArgs(target), target.database],
    pgbenchEnv(target.password),
    seconds * 1000 + RUN_GRACE_MS,
    onTimeout,
  );
}

/** Records what went wrong in a proxy run, and puts the system back in shape for the next. */
async function checkAfterRun(
  bench: Bench,
  system: Replicator,
  run: ComparedRun,
  outcome: PgbenchOutcome,
): Promise<void> {
  const label = `${run.workload} -M ${run.mode} through ${system.name}`;
  if (run.status !== 'ok') bench.findings.push(`${label}: ${describe(outcome)}`);
  let broken = outcome.timedOut;
  const exited = system.exitReason();
  if (exited !== undefined) {
    bench.findings.push(`${system.name} exited during ${label} (${exited})`);
    broken = true;
  }
  for (const problem of await system.problems()) {
    bench.findings.push(`after ${label}: ${problem}`);
    broken = true;
  }
  const differ = await compareBackends(system);
  run.divergedTables = differ.data;
  run.bookkeepingDiffers = differ.bookkeeping;
  run.backendsIdentical = run.divergedTables.length === 0;
  if (!run.backendsIdentical) {
    bench.findings.push(`after ${label} the backends differ in ${run.divergedTables.join(', ')}`);
    broken = true;
  }
  if (broken) await resync(bench, system);
}

/**
 * Stops the system, clears what it left on its backends (sessions, prepared transactions),
 * initializes both backends directly and starts it again, so that its next run starts from
 * identical backends and a fresh proxy (no cached table metadata from before).
 */
async function resync(bench: Bench, system: Replicator): Promise<void> {
  await system.stop();
  for (const [index, backend] of system.backends.entries()) {
    const left = await clearLeftovers(backend);
    if (left !== undefined) {
      bench.findings.push(`after stopping ${system.name}, backend ${index} still had ${left}`);
    }
    await initializeDirectly(backend, SCALE, INIT_TIMEOUT_MS);
  }
  await system.start();
}

async function describeMachine(target: Target): Promise<Machine> {
  const [version] = await execute(target, ['SHOW server_version']);
  const pgbench = await runPgbench(['--version'], pgbenchEnv(), 10_000);
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown CPU',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    postgres: String(version?.rows[0]?.server_version ?? 'unknown'),
    pgbench: pgbench.stdout.trim(),
    loadAtStart: os.loadavg(),
    loadAtEnd: [],
  };
}
