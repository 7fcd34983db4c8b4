import { spawn } from 'node:child_process';
import pg from 'pg';
import type { Permission } from '../../src/auth/identity.ts';
import { mintToken } from '../../src/auth/tokens.ts';
import type { Config } from '../../src/config/types.ts';
import { silentLogger } from '../../src/log.ts';
import { type Orchestrator, startOrchestrator } from '../../src/orchestrator.ts';
import { startTestPostgres, type TestPostgres } from './postgres.ts';

/** A JSON body of the admin API, read loosely by tests. */
// biome-ignore lint/suspicious/noExplicitAny: tests read whatever the API returned.
export type AdminBody = any;

export const SECRET = 'test-secret-for-the-suite-0123456789';

export interface TestCluster {
  orchestrator: Orchestrator;
  /** The cluster's backends, in configuration order. */
  backends: TestPostgres[];
  cluster: string;
  proxyPort: number;
  adminUrl: string;
  adminToken: string;
  token(
    clusters: Record<string, Permission[]>,
    subject?: string,
    expiresIn?: string | number,
  ): Promise<string>;
  /** A node-postgres client connected through the proxy. */
  client(token?: string): Promise<pg.Client>;
  /** A node-postgres client connected straight to backend `index`. */
  direct(index: number): Promise<pg.Client>;
  /** Runs psql through the proxy with the given arguments and standard input. */
  psql(
    args: string[],
    input?: string,
    token?: string,
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Calls the admin API. */
  admin(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
  ): Promise<{ status: number; body: AdminBody }>;
  /** Ordered md5 of every table of backend `index` (schemas other than the system ones). */
  checksums(index: number): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

/**
 * Starts real PostgreSQL servers (the backends and one for the catalog) and the whole
 * orchestrator in this process, on free ports.
 */
export async function startTestCluster(
  options: {
    backends?: number;
    cluster?: string;
    requireRollback?: boolean;
    maxCaptureRows?: number;
    /** False turns capture off for the cluster (`capture: false`). */
    capture?: boolean;
    /** max_prepared_transactions of each backend, in order (default 20 each). */
    maxPreparedTransactions?: number[];
    requireTwoPhase?: boolean;
  } = {},
): Promise<TestCluster> {
  const count = options.backends ?? 2;
  const name = options.cluster ?? 'demo';
  const servers = await Promise.all(
    Array.from({ length: count + 1 }, (_, i) => {
      const prepared = options.maxPreparedTransactions?.[i];
      return startTestPostgres(prepared === undefined ? {} : { maxPreparedTransactions: prepared });
    }),
  );
  const catalogServer = servers[count] as TestPostgres;
  const backends = servers.slice(0, count);
  const config: Config = {
    source: 'test',
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    secret: SECRET,
    secretIsDefault: false,
    catalog: { kind: 'postgres', url: catalogServer.url },
    clusters: [
      {
        name,
        requireRollback: options.requireRollback ?? false,
        maxCaptureRows: options.maxCaptureRows ?? 100_000,
        ...(options.capture === undefined ? {} : { capture: options.capture }),
        ...(options.requireTwoPhase === undefined
          ? {}
          : { requireTwoPhase: options.requireTwoPhase }),
        backends: backends.map((server, index) => ({
          name: `${name}/${index}`,
          host: server.host,
          port: server.port,
          user: server.user,
          database: server.database,
        })),
      },
    ],
    dataDir: '/nonexistent',
    log: { level: 'error' },
  };
  let orchestrator: Orchestrator;
  try {
    orchestrator = await startOrchestrator(config, { logger: silentLogger });
  } catch (error) {
    await Promise.allSettled(servers.map((server) => server.stop()));
    throw error;
  }
  const adminToken = await mintToken(SECRET, { subject: 'root', admin: true });
  const adminUrl = `http://127.0.0.1:${orchestrator.admin.port}`;
  const proxyPort = orchestrator.proxy.port;
  const clients: pg.Client[] = [];
  const connect = async (settings: pg.ClientConfig) => {
    const client = new pg.Client(settings);
    client.on('error', () => {});
    await client.connect();
    clients.push(client);
    return client;
  };
  return {
    orchestrator,
    backends,
    cluster: name,
    proxyPort,
    adminUrl,
    adminToken,
    token: (clusters, subject = 'tester', expiresIn) =>
      mintToken(SECRET, { subject, clusters, ...(expiresIn === undefined ? {} : { expiresIn }) }),
    client: (token = adminToken) =>
      connect({ host: '127.0.0.1', port: proxyPort, user: 'app', password: token, database: name }),
    direct: (index) => {
      const server = backends[index] as TestPostgres;
      return connect({
        host: server.host,
        port: server.port,
        user: server.user,
        database: server.database,
      });
    },
    psql: (args, input, token = adminToken) =>
      run(
        'psql',
        ['-X', '-h', '127.0.0.1', '-p', String(proxyPort), '-U', 'app', '-d', name, ...args],
        input,
        { PGPASSWORD: token },
      ),
    admin: async (method, path, body, token = adminToken) => {
      const response = await fetch(`${adminUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {}
      return { status: response.status, body: parsed };
    },
    checksums: async (index) => {
      const client = await connect({
        host: backends[index]?.host,
        port: backends[index]?.port,
        user: backends[index]?.user,
        database: backends[index]?.database,
      });
      try {
        return await tableChecksums(client);
      } finally {
        await client.end();
      }
    },
    async stop() {
      await Promise.allSettled(clients.map((client) => client.end()));
      await orchestrator.stop();
      await Promise.allSettled(servers.map((server) => server.stop()));
    },
  };
}

/** An md5 per table of its rows' text, in a fixed order, so two databases can be compared. */
export async function tableChecksums(client: pg.Client): Promise<Record<string, string>> {
  const tables = await client.query<{ name: string }>(
    `SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables
     WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
  );
  const sums: Record<string, string> = {};
  for (const { name } of tables.rows) {
    const result = await client.query<{ sum: string | null; n: string }>(
      `SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS sum, count(*) AS n FROM ${name} t`,
    );
    sums[name] = `${result.rows[0]?.n}:${result.rows[0]?.sum}`;
  }
  return sums;
}

export function run(
  command: string,
  args: string[],
  input?: string,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}
