// Pgpool-II in native replication mode as a child process of a benchmark, on a generated
// configuration in its own temporary directory (pid file, sockets, status file), so that it
// touches nothing of a system-wide installation.
// https://www.pgpool.net/docs/43/en/html/runtime-config-running-mode.html
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { closeLog, exitWithin } from './child.ts';
import type { Target } from './pgbench-setup.ts';

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
/** Preforked children: the benchmark's 4 clients plus the checks, with room to spare. */
const CHILDREN = 16;

export const PGPOOL_INSTALL_HINT = 'Debian: apt-get install -y pgpool2';

/** The pgpool program: on PATH, or in /usr/sbin where Debian puts it (not on a user's PATH). */
export function findPgpool(): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), '/usr/sbin', '/usr/bin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const file = path.join(dir, 'pgpool');
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** E.g. `pgpool-II version 4.3.5 (tamahomeboshi)`. */
export function pgpoolVersion(program: string): string {
  try {
    return execFileSync(program, ['--version'], { encoding: 'utf8', stdio: 'pipe' }).trim();
  } catch (error) {
    return `unknown (${(error as Error).message})`;
  }
}

/** Pgpool-II running on 127.0.0.1 with the given backends. */
export interface PgpoolProcess {
  readonly pid: number;
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly exited: boolean;
  readonly exitReason: string | undefined;
  /** CPU time of the main process, its live children and the children it has reaped, in ms. */
  cpuMs(): Promise<number | undefined>;
  /** `SHOW pool_nodes`: one `node <id> <host>:<port> <status>` line per backend. */
  nodes(): Promise<string[]>;
  /** Fast shutdown (SIGINT), then SIGKILL to its process group; removes its directory. */
  stop(): Promise<void>;
}

/** The settings that make Pgpool-II replicate every write to all backends itself. */
function pgpoolConf(dir: string, port: number, backends: Target[]): string {
  const quote = (value: string | number) =>
    typeof value === 'number' ? String(value) : `'${value.replace(/'/g, "''")}'`;
  const settings: [string, string | number][] = [
    ['backend_clustering_mode', 'native_replication'],
    ['listen_addresses', '127.0.0.1'],
    ['port', port],
    ['socket_dir', dir],
    // PCP (the admin protocol) on a Unix socket in the directory only: no TCP port to collide.
    ['pcp_listen_addresses', ''],
    ['pcp_socket_dir', dir],
    ['wd_ipc_socket_dir', dir],
    ['pid_file_name', path.join(dir, 'pgpool.pid')],
    ['logdir', dir],
    ['memqcache_oiddir', path.join(dir, 'oiddir')],
    ['use_watchdog', 'off'],
    ['memory_cache_enabled', 'off'],
    // Clients authenticate to the backends themselves, which trust 127.0.0.1.
    ['enable_pool_hba', 'off'],
    ['pool_passwd', ''],
    ['num_init_children', CHILDREN],
    ['max_pool', 4],
    ['connection_cache', 'on'],
    // A serial key takes the same value everywhere only if concurrent INSERTs into its table
    // are serialized: Pgpool-II locks a row of pgpool_catalog.insert_lock (or the table).
    ['insert_lock', 'on'],
    ['replicate_select', 'off'],
    ['load_balance_mode', 'on'],
    ['replication_stop_on_mismatch', 'off'],
    ['failover_if_affected_tuples_mismatch', 'off'],
    // No failover: a run that loses a backend must fail, not go on with one copy.
    ['failover_on_backend_error', 'off'],
    ['health_check_period', 0],
    ['sr_check_period', 0],
    ['log_destination', 'stderr'],
    ['log_min_messages', 'warning'],
  ];
  for (const [index, backend] of backends.entries()) {
    settings.push(
      [`backend_hostname${index}`, backend.host],
      [`backend_port${index}`, backend.port],
      [`backend_weight${index}`, 1],
      [`backend_flag${index}`, 'DISALLOW_TO_FAILOVER'],
    );
  }
  return `${settings.map(([name, value]) => `${name} = ${quote(value)}`).join('\n')}\n`;
}

/**
 * Starts Pgpool-II in the foreground (`-n`) in its own process group, discarding any backend
 * status file (`-D`), and waits until it answers `SHOW pool_nodes` with every backend up.
 * Its log (stderr) is appended to `logPath`.
 */
export async function startPgpool(
  program: string,
  backends: Target[],
  logPath: string,
): Promise<PgpoolProcess> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qo-pgpool-'));
  await mkdir(path.join(dir, 'oiddir'));
  const port = await freePort();
  const conf = path.join(dir, 'pgpool.conf');
  await writeFile(conf, pgpoolConf(dir, port, backends));
  await writeFile(path.join(dir, 'pcp.conf'), '');
  await writeFile(path.join(dir, 'pool_hba.conf'), 'host all all 127.0.0.1/32 trust\n');
  const log = createWriteStream(logPath, { flags: 'a' });
  const args = ['-n', '-D', '-f', conf, '-F', path.join(dir, 'pcp.conf')];
  const child = spawn(program, [...args, '-a', path.join(dir, 'pool_hba.conf')], {
    cwd: dir,
    detached: true,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  let exitReason: string | undefined;
  child.once('exit', (code, signal) => {
    exitReason = signal === null ? `code ${code}` : `signal ${signal}`;
  });
  const pid = child.pid ?? -1;
  // Its children outlive it (they are reparented, not ended) but share its process group: a
  // SIGKILL to the group leaves none behind.
  const killGroup = () => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const forget = () => {
    killGroup();
    rmSync(dir, { recursive: true, force: true });
  };
  live.add(forget);
  installExitHooks();
  const target: Target = { host: '127.0.0.1', port, user: 'postgres', database: 'postgres' };
  const stop = async () => {
    live.delete(forget);
    if (exitReason === undefined) {
      // SIGINT is its fast shutdown: the main process ends its children, then exits.
      child.kill('SIGINT');
      if (!(await exitWithin(child, STOP_TIMEOUT_MS))) {
        killGroup();
        await exitWithin(child, STOP_TIMEOUT_MS);
      }
    } else {
      // It died on its own: its children may have outlived it.
      killGroup();
    }
    await closeLog(log);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilReady(target, backends.length, () => exitReason);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    pid,
    host: '127.0.0.1',
    port,
    get exited() {
      return exitReason !== undefined;
    },
    get exitReason() {
      return exitReason;
    },
    cpuMs: () => treeCpuMs(pid),
    nodes: () => poolNodes(target),
    stop,
  };
}

const live = new Set<() => void>();
let hooksInstalled = false;

/**
 * A Pgpool-II in its own process group gets no terminal signal: when this process ends, by
 * exit or by a signal, it kills the groups still running and removes their directories. After a signal that nothing else
 * handles, it exits rather than dying of the signal, so that the 'exit' handlers that stop the
 * benchmark's other children (the PostgreSQL servers, the proxy) still run.
 */
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const killAll = () => {
    for (const kill of live) kill();
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      if (process.listenerCount(signal) === 0) process.exit(128 + os.constants.signals[signal]);
    });
  }
}

async function waitUntilReady(
  target: Target,
  backendCount: number,
  exitReason: () => string | undefined,
): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    const exited = exitReason();
    if (exited !== undefined) throw new Error(`Pgpool-II exited while starting (${exited})`);
    try {
      const nodes = await poolNodes(target);
      if (nodes.length === backendCount && nodes.every((node) => / up$/.test(node))) return;
      last = nodes.join('; ');
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`Pgpool-II was not ready within ${START_TIMEOUT_MS / 1000} s: ${last}`);
}

async function poolNodes(target: Target): Promise<string[]> {
  const client = new pg.Client({ ...target, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    const result = await client.query<Record<string, string>>('SHOW pool_nodes');
    return result.rows.map(
      (row) => `node ${row['node_id']} ${row['hostname']}:${row['port']} ${row['status']}`,
    );
  } finally {
    await client.end();
  }
}

/** A port the kernel reports free on 127.0.0.1 (another process may still take it first). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port from the kernel'));
      });
    });
  });
}

/**
 * Fields 14-17 of /proc/<pid>/stat are utime, stime, cutime and cstime in clock ticks (100 per
 * second); the c- fields hold the children already reaped. Live children are found by their
 * parent pid (field 4).
 */
async function treeCpuMs(pid: number): Promise<number | undefined> {
  const main = await statFields(pid);
  if (main === undefined) return undefined;
  let ticks = sum(main, [11, 12, 13, 14]);
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = await statFields(Number(entry));
    if (fields !== undefined && Number(fields[1]) === pid) ticks += sum(fields, [11, 12, 13, 14]);
  }
  return ticks * 10;
}

/** The fields after the command name (which may hold spaces): index 0 is field 3, the state. */
async function statFields(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

const sum = (fields: string[], indexes: number[]) =>
  indexes.reduce((total, index) => total + Number(fields[index] ?? 0), 0);
