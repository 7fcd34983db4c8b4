// The two systems the Pgpool-II comparison drives the same way: each keeps two backends alike,
// can be stopped and started again, and is reached by pgbench at one address.
import { mintToken } from '../../src/auth/tokens.ts';
import type { Config } from '../../src/config/types.ts';
import type { Target } from './pgbench-setup.ts';
import { type PgpoolProcess, startPgpool } from './pgpool-process.ts';
import { type ProxyProcess, startProxyProcess } from './proxy-process.ts';

export interface Replicator {
  readonly name: 'qo' | 'pgpool';
  readonly backends: [Target, Target];
  /** Where clients connect; changes when the system is started again. */
  target(): Target;
  /** How it exited if it has; undefined while it runs. */
  exitReason(): string | undefined;
  /** CPU time used so far by all its processes, in ms. */
  cpuMs(): Promise<number | undefined>;
  /** What is wrong with it beyond its backends' contents, e.g. a detached node; [] when fine. */
  problems(): Promise<string[]>;
  /**
   * Tables of the proxy's own that it writes on one backend only, by design: left out of the
   * identical-backends verdict and reported apart.
   */
  readonly bookkeeping: RegExp | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const CLUSTER = 'bench';

/** QueryOrchestrator in a child process, one cluster of the two backends, an admin token. */
export function queryOrchestrator(
  backends: [Target, Target],
  catalogUrl: string,
  secret: string,
  logPath: string,
): Replicator {
  const config: Config = {
    source: 'bench/pgpool.ts',
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    secret,
    secretIsDefault: false,
    catalog: { kind: 'postgres', url: catalogUrl },
    clusters: [
      {
        name: CLUSTER,
        requireRollback: false,
        maxCaptureRows: 100_000,
        backends: backends.map((backend, index) => ({
          name: `${CLUSTER}/${index}`,
          host: backend.host,
          port: backend.port,
          user: backend.user,
          database: backend.database,
        })),
      },
    ],
    dataDir: '/nonexistent',
    log: { level: 'info' },
  };
  let proxy: ProxyProcess | undefined;
  let token = '';
  return {
    name: 'qo',
    backends,
    target() {
      if (proxy === undefined) throw new Error('QueryOrchestrator is not running');
      return {
        host: proxy.host,
        port: proxy.port,
        user: 'bench',
        database: CLUSTER,
        password: token,
      };
    },
    exitReason: () => proxy?.exitReason,
    cpuMs: async () => proxy?.cpuMs(),
    problems: async () => [],
    bookkeeping: undefined,
    async start() {
      token = await mintToken(secret, { subject: 'bench', admin: true, expiresIn: '6h' });
      proxy = await startProxyProcess(config, logPath);
    },
    async stop() {
      await proxy?.stop();
    },
  };
}

/** Pgpool-II in native replication mode on the two backends. */
export function pgpoolII(program: string, backends: [Target, Target], logPath: string): Replicator {
  let pool: PgpoolProcess | undefined;
  return {
    name: 'pgpool',
    backends,
    // Pgpool-II adds the insert_lock row of a table with a serial (its oid) on the main node
    // only (seen with 4.3.5), so that table differs between the backends by design.
    bookkeeping: /^pgpool_catalog\./,
    target() {
      if (pool === undefined) throw new Error('Pgpool-II is not running');
      return { host: pool.host, port: pool.port, user: 'postgres', database: 'postgres' };
    },
    exitReason: () => pool?.exitReason,
    cpuMs: async () => pool?.cpuMs(),
    async problems() {
      if (pool === undefined || pool.exited) return [];
      try {
        const nodes = await withTimeout(pool.nodes(), 10_000, 'SHOW pool_nodes');
        const down = nodes.filter((node) => !/ up$/.test(node));
        return down.length === 0 ? [] : [`Pgpool-II reports ${down.join('; ')}`];
      } catch (error) {
        return [`Pgpool-II did not answer SHOW pool_nodes: ${(error as Error).message}`];
      }
    },
    async start() {
      pool = await startPgpool(program, backends, logPath);
    },
    async stop() {
      await pool?.stop();
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
