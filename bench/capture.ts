// What rollback capture costs: single-row UPDATE and DELETE by key through the proxy, on a
// cluster that captures and on one that does not (`capture: false`), in one run.
//
// Two clusters of two backends each run in the same proxy process, so both settings meet the
// same machine, catalog and proxy code, a moment apart. Each run also reads, from /proc, the
// CPU time of the proxy, of the cluster's two backends and of the catalog server, per
// transaction: on a 2-core machine every one of them competes for the same cores, and the
// added CPU per transaction says where capture's cost lands. With --profile the proxy runs
// under `node --cpu-prof` (a fresh process per run) and its self time is compared on vs off.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mintToken } from '../src/auth/tokens.ts';
import type { Config } from '../src/config/types.ts';
import { type EmbeddedPostgres, startPostgres } from '../src/embedded/postgres.ts';
import {
  type CaptureRun,
  type CaptureSetting,
  cpuRatio,
  pairs,
  ratio,
  renderProfileComparison,
  renderRatios,
  renderRuns,
} from './lib/capture-report.ts';
import {
  AuditReader,
  countRows,
  createTables,
  prepareWorkload,
  WORKLOADS,
  type WorkloadName,
  writeScripts,
} from './lib/capture-setup.ts';
import { largestProfile, monotonicUs, summarizeProfile } from './lib/cpu-profile.ts';
import { cpuUsage, readCpu } from './lib/cpu-usage.ts';
import { pgbenchEnv, runPgbench, runStatus } from './lib/pgbench-process.ts';
import { connectionArgs, differingTables, type Target } from './lib/pgbench-setup.ts';
import { type ProxyProcess, startProxyProcess } from './lib/proxy-process.ts';

const REPOSITORY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS_DIR = path.join(REPOSITORY, 'bench', 'results');
const CLUSTERS: Record<CaptureSetting, string> = { on: 'capture_on', off: 'capture_off' };
const CLIENTS = 4;
const THREADS = 2;
/** Rows each client may delete per second of a DELETE run; a run that uses them all is flagged. */
const DELETE_ROWS_PER_CLIENT_SECOND = 4_000;
/** Past its -T, pgbench still finishes the transactions in flight and disconnects. */
const RUN_GRACE_MS = 30_000;
const WARM_UP_SECONDS = 2;
/** The issue's target: capture costs at most this share of throughput, in %. */
const TARGET_COST_PERCENT = 25;
const MODES = ['simple', 'extended', 'prepared'] as const;

const USAGE = `Usage: npm run bench -- capture [--seconds N] [--mode M[,M...]] [--rounds N] [--profile]

Starts four PostgreSQL backends (two clusters of two: capture on, capture off), a catalog
server and the proxy, then runs pgbench -c ${CLIENTS} -j ${THREADS} for N seconds (default 10) per
workload (single-row UPDATE by key, single-row DELETE by key), query mode (default simple;
any of ${MODES.join(', ')}) and capture setting. Prints TPS, CPU per transaction and the
on/off ratio, and writes bench/results/capture-<timestamp>.json.
--profile runs the proxy under node --cpu-prof, one process per run, and compares the
proxy's self time per transaction with capture on and off.
`;

interface Options {
  seconds: number;
  modes: string[];
  rounds: number;
  profile: boolean;
}

interface Bench {
  servers: { on: [EmbeddedPostgres, EmbeddedPostgres]; off: [EmbeddedPostgres, EmbeddedPostgres] };
  catalog: EmbeddedPostgres;
  config: Config;
  token: string;
  scripts: Record<WorkloadName, string>;
  dir: string;
  logPath: string;
  audit: AuditReader;
  proxy: ProxyProcess | undefined;
  findings: string[];
}

function readOptions(argv: string[]): Options | string {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', default: '10' },
      mode: { type: 'string', default: 'simple' },
      rounds: { type: 'string', default: '1' },
      profile: { type: 'boolean', default: false },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return '';
  const seconds = Number(values.seconds);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) {
    return '--seconds must be a whole number from 1 to 3600';
  }
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) {
    return '--rounds must be a whole number from 1 to 20';
  }
  const modes = values.mode.split(',').map((mode) => mode.trim());
  const unknown = modes.find((mode) => !(MODES as readonly string[]).includes(mode));
  if (unknown !== undefined) return `--mode ${JSON.stringify(unknown)}: expected ${MODES}`;
  return { seconds, modes, rounds, profile: values.profile };
}

export async function main(argv: string[]): Promise<number> {
  const options = readOptions(argv);
  if (typeof options === 'string') {
    if (options === '') process.stdout.write(USAGE);
    else process.stderr.write(`${options}\n${USAGE}`);
    return options === '' ? 0 : 2;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = path.join(RESULTS_DIR, `capture-${stamp}`);
  await mkdir(dir, { recursive: true });
  const servers: EmbeddedPostgres[] = [];
  const runs: CaptureRun[] = [];
  let bench: Bench | undefined;
  let failure: string | undefined;
  try {
    const started = await Promise.allSettled(Array.from({ length: 5 }, () => startPostgres()));
    for (const result of started) if (result.status === 'fulfilled') servers.push(result.value);
    const refused = started.find((result) => result.status === 'rejected');
    if (refused !== undefined) throw refused.reason;
    bench = await setUp(servers, dir);
    if (!options.profile) {
      bench.proxy = await startProxyProcess(bench.config, bench.logPath);
      await warmUp(bench);
    }
    for (let round = 1; round <= options.rounds; round++) {
      for (const workload of WORKLOADS) {
        for (const mode of options.modes) {
          // Alternate which setting goes first, so neither always meets a warmer machine.
          const order: CaptureSetting[] = round % 2 === 1 ? ['on', 'off'] : ['off', 'on'];
          for (const capture of order) {
            runs.push(
              await measure(bench, options, { round, workload: workload.name, mode }, capture),
            );
          }
        }
      }
    }
  } catch (error) {
    failure = (error as Error).stack ?? String(error);
  } finally {
    await bench?.proxy?.stop();
    await Promise.allSettled(servers.map((server) => server.stop()));
  }
  report(runs, options, bench?.findings ?? []);
  const file = path.join(RESULTS_DIR, `capture-${stamp}.json`);
  const machine = { nproc: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? 'unknown' };
  const settings = { startedAt: stamp, ...options, clients: CLIENTS, threads: THREADS };
  const result = {
    ...settings,
    machine,
    runs,
    ratios: pairs(runs).map(({ on, off }) => ({
      round: on.round,
      workload: on.workload,
      mode: on.mode,
      ratio: ratio(on, off),
      cpuRatio: cpuRatio(on, off),
    })),
    findings: bench?.findings ?? [],
    failure: failure ?? null,
  };
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`\nresults: ${path.relative(process.cwd(), file)}\n`);
  if (bench !== undefined) {
    process.stdout.write(`proxy log and scripts: ${path.relative(process.cwd(), dir)}\n`);
  }
  if (failure !== undefined) {
    process.stderr.write(`benchmark failed: ${failure}\n`);
    return 1;
  }
  return runs.every((run) => run.status === 'ok') ? 0 : 1;
}

async function setUp(servers: EmbeddedPostgres[], dir: string): Promise<Bench> {
  const [on0, on1, off0, off1, catalog] = servers as [
    EmbeddedPostgres,
    EmbeddedPostgres,
    EmbeddedPostgres,
    EmbeddedPostgres,
    EmbeddedPostgres,
  ];
  await Promise.all([on0, on1, off0, off1].map((server) => createTables(direct(server))));
  const secret = randomBytes(24).toString('hex');
  const cluster = (name: string, members: EmbeddedPostgres[], capture: boolean) => ({
    name,
    requireRollback: false,
    maxCaptureRows: 100_000,
    capture,
    backends: members.map((server, index) => ({
      name: `${name}/${index}`,
      host: '127.0.0.1',
      port: server.port,
      user: 'postgres',
      database: 'postgres',
    })),
  });
  const config: Config = {
    source: 'bench/capture.ts',
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    secret,
    secretIsDefault: false,
    catalog: { kind: 'postgres', url: catalog.url },
    clusters: [cluster(CLUSTERS.on, [on0, on1], true), cluster(CLUSTERS.off, [off0, off1], false)],
    dataDir: '/nonexistent',
    // Warnings only: a log line per statement would be measured along with capture.
    log: { level: 'warn' },
  };
  return {
    servers: { on: [on0, on1], off: [off0, off1] },
    catalog,
    config,
    token: await mintToken(secret, { subject: 'bench', admin: true, expiresIn: '6h' }),
    scripts: await writeScripts(dir),
    dir,
    logPath: path.join(dir, 'proxy.log'),
    audit: new AuditReader(catalog.url),
    proxy: undefined,
    findings: [],
  };
}

function direct(server: EmbeddedPostgres): Target {
  return { host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres' };
}

function through(proxy: ProxyProcess, cluster: string, token: string): Target {
  return { host: proxy.host, port: proxy.port, user: 'bench', database: cluster, password: token };
}

/** A short UPDATE run on each cluster: parse caches, metadata and JIT, before anything counts. */
async function warmUp(bench: Bench): Promise<void> {
  const proxy = bench.proxy as ProxyProcess;
  for (const cluster of Object.values(CLUSTERS)) {
    const target = through(proxy, cluster, bench.token);
    const args = ['-n', '-c', String(CLIENTS), '-j', String(THREADS), '-T', `${WARM_UP_SECONDS}`];
    await runPgbench(
      [...args, '-f', bench.scripts.update, ...connectionArgs(target), target.database],
      pgbenchEnv(target.password),
      WARM_UP_SECONDS * 1000 + RUN_GRACE_MS,
    );
  }
}

async function measure(
  bench: Bench,
  options: Options,
  run: { round: number; workload: WorkloadName; mode: string },
  capture: CaptureSetting,
): Promise<CaptureRun> {
  const cluster = CLUSTERS[capture];
  const [first, second] = bench.servers[capture];
  const perClient = options.seconds * DELETE_ROWS_PER_CLIENT_SECOND;
  await Promise.all(
    [first, second].map((s) => prepareWorkload(direct(s), run.workload, CLIENTS, perClient)),
  );
  const label = `${run.workload}-${run.mode}-${capture}-${run.round}`;
  const proxy = options.profile
    ? await startProxyProcess(bench.config, bench.logPath, [
        '--cpu-prof',
        `--cpu-prof-dir=${path.join(bench.dir, label)}`,
      ])
    : (bench.proxy as ProxyProcess);
  const target = through(proxy, cluster, bench.token);
  const args = [
    '-n',
    ...['-c', String(CLIENTS), '-j', String(THREADS), '-T', String(options.seconds)],
    ...['-M', run.mode, '-D', 'n=0', '-f', bench.scripts[run.workload]],
  ];
  const auditFrom = await bench.audit.lastId();
  const other: CaptureSetting = capture === 'on' ? 'off' : 'on';
  const cpu = () => readCpu(proxy, [first, second], bench.servers[other], bench.catalog);
  const before = await cpu();
  const fromUs = monotonicUs();
  const outcome = await runPgbench(
    [...args, ...connectionArgs(target), target.database],
    pgbenchEnv(target.password),
    options.seconds * 1000 + RUN_GRACE_MS,
  );
  const toUs = monotonicUs();
  const after = await cpu();
  let profile: CaptureRun['profile'];
  if (options.profile) {
    await proxy.stop();
    // tsx's module hooks run on a thread of their own, which writes a profile too: the main
    // thread's is the largest.
    const file = await largestProfile(path.join(bench.dir, label));
    profile = await summarizeProfile(file ?? '(none)', REPOSITORY, { fromUs, toUs }).catch(
      (error) => {
        bench.findings.push(`${label}: no CPU profile (${(error as Error).message})`);
        return undefined;
      },
    );
  }

  const usage = cpuUsage(before, after, outcome.transactions ?? 0);
  const record: CaptureRun = {
    ...run,
    capture,
    status: runStatus(outcome),
    tps: outcome.tps ?? null,
    latencyMs: outcome.latencyMs ?? null,
    transactions: outcome.transactions ?? null,
    ...usage,
    audit: await bench.audit.reversibility(cluster, auditFrom),
    backendsIdentical: (await differingTables(direct(first), direct(second))).length === 0,
    errors: outcome.errors,
    command: `pgbench ${outcome.args.join(' ')}`,
    ...(profile === undefined ? {} : { profile }),
  };
  await check(bench, record, perClient, direct(first));
  return record;
}

/** Says what makes a run's figures doubtful: missing rows, uncaptured changes, divergence. */
async function check(bench: Bench, run: CaptureRun, perClient: number, first: Target) {
  const label = `${run.workload} -M ${run.mode} capture ${run.capture} (round ${run.round})`;
  if (run.status !== 'ok')
    bench.findings.push(`${label}: ${run.status}: ${run.errors.join(' | ')}`);
  if (run.backendsIdentical === false) bench.findings.push(`${label}: the backends differ`);
  const transactions = run.transactions ?? 0;
  if (run.workload === 'delete') {
    const left = await countRows(first, 'capture_delete');
    const deleted = CLIENTS * perClient - left;
    if (deleted !== transactions) {
      bench.findings.push(
        `${label}: ${transactions} DELETEs deleted ${deleted} rows; some found no row ` +
          '(raise DELETE_ROWS_PER_CLIENT_SECOND) or failed',
      );
    }
  }
  const expected = run.capture === 'on' ? 'exact' : 'none';
  if ((run.audit[expected] ?? 0) !== transactions) {
    bench.findings.push(
      `${label}: expected ${transactions} audit entries with reversibility ${expected}, ` +
        `found ${JSON.stringify(run.audit)}`,
    );
  }
}

function report(runs: CaptureRun[], options: Options, findings: string[]): void {
  if (runs.length === 0) return;
  process.stdout.write(
    `\npgbench -c ${CLIENTS} -j ${THREADS} -T ${options.seconds}; each cluster has 2 backends; ` +
      `nproc ${os.availableParallelism()}, load ${os
        .loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}\n\n${renderRuns(runs)}\n\n` +
      `capture on / capture off (target: capture costs at most ${TARGET_COST_PERCENT}%)\n` +
      `${renderRatios(runs, TARGET_COST_PERCENT)}\n`,
  );
  if (options.profile) {
    for (const { on, off } of pairs(runs)) {
      const text = renderProfileComparison(on, off);
      if (text !== '') process.stdout.write(`\n${text}\n`);
    }
  }
  if (findings.length > 0) {
    process.stdout.write(`\nFindings:\n${findings.map((f) => `- ${f}`).join('\n')}\n`);
  }
}
