// pgbench through the proxy and straight to a backend, side by side, on throwaway servers.
//
// The proxy runs in a child process rather than in this one: the benchmark's own work
// (spawning pgbench, checksumming the backends between runs) then never shares an event loop
// with the proxy, and the proxy's CPU time can be read from /proc on its own. On a 2-core
// machine pgbench, two backends and the proxy still compete for the same cores, which is why
// every figure is relative to a direct run made on the same machine a moment apart.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { mintToken } from '../src/auth/tokens.ts';
import type { Config } from '../src/config/types.ts';
import { type EmbeddedPostgres, startPostgres } from '../src/embedded/postgres.ts';
import { secondsArgument } from './lib/args.ts';
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
  leftovers,
  pgbenchRowCounts,
  prepareRun,
  type Target,
} from './lib/pgbench-setup.ts';
import { type ProxyProcess, startProxyProcess } from './lib/proxy-process.ts';
import {
  type Machine,
  type RunRecord,
  renderMachine,
  renderTable,
  toRunRecord,
} from './lib/report.ts';

const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
const CLUSTER = 'bench';
const SCALE = 1;
const CLIENTS = 4;
const THREADS = 2;
const INIT_TIMEOUT_MS = 120_000;
const STEP_TIMEOUT_MS = 60_000;
/** Past its -T, pgbench still finishes the transactions in flight and disconnects. */
const RUN_GRACE_MS = 30_000;

const WORKLOADS = [
  { name: 'select-only', args: ['-S'] },
  { name: 'tpcb-like', args: [] },
] as const;
const MODES = ['simple', 'extended', 'prepared'] as const;

const USAGE = `Usage: npm run bench -- [pgbench] [--seconds N]

Starts two PostgreSQL backends, a catalog server and the proxy, initializes pgbench data
(scale ${SCALE}) through the proxy, then runs pgbench -c ${CLIENTS} -j ${THREADS} for N seconds
(default 10) per workload, query mode and target. Prints a table and writes
bench/results/pgbench-<timestamp>.json.
`;

interface Bench {
  backends: [Target, Target];
  direct: Target;
  proxy: Target;
  config: Config;
  logPath: string;
  proxyProcess: ProxyProcess;
  findings: string[];
}

export async function main(argv: string[]): Promise<number> {
  const parsed = secondsArgument(argv, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const { seconds } = parsed;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  await mkdir(RESULTS_DIR, { recursive: true });
  const servers: EmbeddedPostgres[] = [];
  const runs: RunRecord[] = [];
  let bench: Bench | undefined;
  let machine: Machine | undefined;
  let init: Awaited<ReturnType<typeof initializeCluster>> | undefined;
  let failure: string | undefined;
  try {
    const started = await Promise.allSettled([startPostgres(), startPostgres(), startPostgres()]);
    for (const result of started) if (result.status === 'fulfilled') servers.push(result.value);
    const refused = started.find((result) => result.status === 'rejected');
    if (refused !== undefined) throw refused.reason;
    bench = await setUp(servers, path.join(RESULTS_DIR, `pgbench-${stamp}.proxy.log`));
    machine = await describeMachine(bench.direct);
    init = await initializeCluster(bench);
    await measure(bench, seconds, runs);
    machine.loadAtEnd = os.loadavg();
  } catch (error) {
    failure = (error as Error).stack ?? String(error);
  } finally {
    await bench?.proxyProcess.stop();
    await Promise.allSettled(servers.map((server) => server.stop()));
  }
  const findings = bench?.findings ?? [];
  if (machine !== undefined) {
    process.stdout.write(
      `\npgbench -c ${CLIENTS} -j ${THREADS} -T ${seconds}, scale ${SCALE}; ` +
        `direct = backend 0, database bench_direct; proxy = cluster of 2 backends\n` +
        `${renderMachine(machine)}\n\n${renderTable(runs)}\n`,
    );
  }
  if (findings.length > 0) {
    process.stdout.write(`\nFindings:\n${findings.map((f) => `- ${f}`).join('\n')}\n`);
  }
  const file = path.join(RESULTS_DIR, `pgbench-${stamp}.json`);
  const settings = { startedAt: stamp, seconds, scale: SCALE, clients: CLIENTS, threads: THREADS };
  const result = { ...settings, machine, init, runs, findings, failure: failure ?? null };
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`\nresults: ${path.relative(process.cwd(), file)}\n`);
  if (bench !== undefined) {
    process.stdout.write(`proxy log: ${path.relative(process.cwd(), bench.logPath)}\n`);
  }
  if (failure !== undefined) {
    process.stderr.write(`benchmark failed: ${failure}\n`);
    return 1;
  }
  // A proxy that misbehaves is a finding to report; a direct run that fails, or a proxy that
  // dies, means the benchmark itself could not measure.
  const directFailed = runs.some((run) => run.target === 'direct' && run.status !== 'ok');
  if (directFailed) process.stderr.write('a direct run failed: the measurements are not usable\n');
  const crashed = findings.some((finding) => finding.startsWith('the proxy exited'));
  return directFailed || crashed ? 1 : 0;
}

async function setUp(servers: EmbeddedPostgres[], logPath: string): Promise<Bench> {
  const [first, second, catalogServer] = servers as [EmbeddedPostgres, ...EmbeddedPostgres[]];
  const backend = (server: EmbeddedPostgres | undefined): Target => ({
    host: '127.0.0.1',
    port: server?.port ?? 0,
    user: 'postgres',
    database: 'postgres',
  });
  const backends: [Target, Target] = [backend(first), backend(second)];
  // The direct runs use their own database on backend 0: same server and data, while the
  // cluster's two copies stay untouched, so a proxy run can be checked for divergence.
  await execute(backends[0], ['CREATE DATABASE bench_direct']);
  const secret = randomBytes(24).toString('hex');
  const config: Config = {
    source: 'bench/pgbench.ts',
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    secret,
    secretIsDefault: false,
    catalog: { kind: 'postgres', url: catalogServer?.url ?? '' },
    clusters: [
      {
        name: CLUSTER,
        requireRollback: false,
        maxCaptureRows: 100_000,
        backends: backends.map((target, index) => ({
          name: `${CLUSTER}/${index}`,
          host: target.host,
          port: target.port,
          user: target.user,
          database: target.database,
        })),
      },
    ],
    dataDir: '/nonexistent',
    log: { level: 'info' },
  };
  const proxyProcess = await startProxyProcess(config, logPath);
  const token = await mintToken(secret, { subject: 'bench', admin: true, expiresIn: '6h' });
  return {
    backends,
    direct: { ...backend(first), database: 'bench_direct' },
    proxy: {
      host: proxyProcess.host,
      port: proxyProcess.port,
      user: 'bench',
      database: CLUSTER,
      password: token,
    },
    config,
    logPath,
    proxyProcess,
    findings: [],
  };
}

/**
 * `pgbench -i` through the proxy. When it fails, each step is tried alone through the proxy to
 * say which one fails, and both backends are then initialized directly so the runs can go on.
 */
async function initializeCluster(bench: Bench) {
  const direct = await initialize(bench.direct, SCALE, INIT_TIMEOUT_MS);
  if (!succeeded(direct)) throw new Error(`pgbench -i on backend 0 failed:\n${direct.stderr}`);
  const viaProxy = await initialize(bench.proxy, SCALE, INIT_TIMEOUT_MS, {
    onTimeout: () => probe(bench),
  });
  const result = {
    directMs: direct.elapsedMs,
    proxyMs: viaProxy.elapsedMs,
    throughProxy: succeeded(viaProxy),
    proxyOutput: viaProxy.stdout + viaProxy.stderr,
    atTimeout: viaProxy.atTimeout ?? null,
    steps: [] as { step: string; ok: boolean; elapsedMs: number; errors: string[] }[],
  };
  if (result.throughProxy) {
    const counts = await Promise.all(bench.backends.map(pgbenchRowCounts));
    const differ = await differingTables(...bench.backends);
    const expected = {
      branches: SCALE,
      tellers: 10 * SCALE,
      accounts: 100_000 * SCALE,
      history: 0,
    };
    if (differ.length === 0 && counts.every((c) => isDeepStrictEqual(c, expected))) return result;
    bench.findings.push(
      `pgbench -i through the proxy reported success but left the backends with ` +
        `${JSON.stringify(counts)}; tables that differ: ${differ.join(', ') || 'none'}`,
    );
    await resync(bench);
    return result;
  }
  bench.findings.push(`pgbench -i -s ${SCALE} through the proxy failed: ${describe(viaProxy)}`);
  // Each step alone, from a clean start: d drop, t create tables, g generate with COPY,
  // G generate with INSERT ... SELECT, v vacuum, p primary keys.
  await resync(bench);
  for (const step of ['d', 't', 'g', 'G', 'v', 'p']) {
    const outcome = await initialize(bench.proxy, SCALE, STEP_TIMEOUT_MS, {
      steps: step,
      onTimeout: () => probe(bench),
    });
    const ok = succeeded(outcome);
    result.steps.push({ step, ok, elapsedMs: outcome.elapsedMs, errors: outcome.errors });
    if (!ok) bench.findings.push(`pgbench -i -I ${step} through the proxy: ${describe(outcome)}`);
    if (outcome.timedOut) await resync(bench);
  }
  await resync(bench);
  return result;
}

/** What the sessions on both backends are doing, for a run that has stopped moving. */
async function probe(bench: Bench): Promise<string> {
  const parts = await Promise.all(
    bench.backends.map(async (backend, index) => `backend ${index}:\n${await activity(backend)}`),
  );
  return parts.join('\n');
}

/** Every workload and mode, direct then through the proxy; each run is added to `runs`. */
async function measure(bench: Bench, seconds: number, runs: RunRecord[]): Promise<void> {
  for (const workload of WORKLOADS) {
    for (const mode of MODES) {
      const args = ['-n', '-c', String(CLIENTS), '-j', String(THREADS), '-T', String(seconds)];
      const pair = { workload: workload.name, mode };
      const command = [...args, ...workload.args, '-M', mode];
      await prepareRun(bench.direct);
      const direct = await runOnce(bench.direct, command, seconds);
      runs.push(toRunRecord(pair, 'direct', direct));
      await Promise.all(bench.backends.map(prepareRun));
      const cpuBefore = await bench.proxyProcess.cpuMs();
      const proxied = await runOnce(bench.proxy, command, seconds, () => probe(bench));
      const cpuAfter = await bench.proxyProcess.cpuMs();
      const proxy = toRunRecord(pair, 'proxy', proxied, direct);
      if (cpuBefore !== undefined && cpuAfter !== undefined) {
        proxy.proxyCpuPercent = Math.round(((cpuAfter - cpuBefore) / proxied.elapsedMs) * 100);
      }
      runs.push(proxy);
      await checkAfterProxyRun(bench, proxy, proxied);
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

/** Records what went wrong in a proxy run, and puts the cluster back in shape for the next. */
async function checkAfterProxyRun(bench: Bench, run: RunRecord, outcome: PgbenchOutcome) {
  const label = `${run.workload} -M ${run.mode} through the proxy`;
  if (run.status !== 'ok') {
    bench.findings.push(`${label}: ${describe(outcome)}`);
  }
  let broken = outcome.timedOut;
  if (bench.proxyProcess.exited) {
    bench.findings.push(`the proxy exited during ${label} (${bench.proxyProcess.exitReason})`);
    broken = true;
  }
  run.divergedTables = await differingTables(...bench.backends);
  run.backendsIdentical = run.divergedTables.length === 0;
  if (!run.backendsIdentical) {
    bench.findings.push(`after ${label} the backends differ in ${run.divergedTables.join(', ')}`);
    broken = true;
  }
  if (broken) await resync(bench);
}

/**
 * Restarts the proxy and reinitializes both backends directly, so that the next proxy run
 * starts from identical backends whatever the last one left behind (hung sessions, prepared
 * transactions, diverged rows).
 */
async function resync(bench: Bench): Promise<void> {
  await bench.proxyProcess.stop();
  for (const [index, backend] of bench.backends.entries()) {
    // A closed connection takes PostgreSQL a moment to notice: wait up to 5 s for it.
    let left = await leftovers(backend);
    for (let waited = 0; left.sessions > 0 && waited < 5_000; waited += 250) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      left = await leftovers(backend);
    }
    if (left.prepared.length > 0 || left.sessions > 0) {
      bench.findings.push(
        `after stopping the proxy, backend ${index} still had ${left.sessions} client sessions ` +
          `and prepared transactions [${left.prepared.join(', ')}]`,
      );
    }
  }
  bench.proxyProcess = await startProxyProcess(bench.config, bench.logPath);
  bench.proxy = { ...bench.proxy, host: bench.proxyProcess.host, port: bench.proxyProcess.port };
  for (const backend of bench.backends) {
    const outcome = await initialize(backend, SCALE, INIT_TIMEOUT_MS);
    if (!succeeded(outcome)) {
      throw new Error(`pgbench -i directly on port ${backend.port} failed: ${describe(outcome)}`);
    }
  }
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
