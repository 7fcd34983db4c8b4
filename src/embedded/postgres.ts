import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findPostgresBinaries, postgresRunAs, type RunAs } from './binaries.ts';
import { launch, launchOnFreePort, type ServerContext, StartError, setRef } from './launch.ts';
import { OWNER_FILE, sweepOrphans } from './orphans.ts';
import { isRunning, LogTail, runProgram, waitForExit } from './process.ts';
import { templateDataDir } from './template.ts';

export interface StartPostgresOptions {
  /** Each server gets its own directory under this one; default `<tmpdir>/qo-postgres-<uid>`. */
  dataRoot?: string;
  /** TCP port on 127.0.0.1; absent or 0 picks a free one (again, if another process takes it). */
  port?: number;
  /** Default 20, so that two-phase commit (PREPARE TRANSACTION) works. */
  maxPreparedTransactions?: number;
  /** When given, the `postgres` role gets this password and TCP logins must use SCRAM-SHA-256. */
  password?: string;
  /** Extra `postgresql.conf` settings, passed as `-c name=value`; they override the defaults. */
  settings?: Record<string, string>;
  /** How long to wait for the server to accept connections; default 30 s. */
  startTimeoutMs?: number;
}

/** A throwaway PostgreSQL server on 127.0.0.1, removed with its data when stopped. */
export interface EmbeddedPostgres extends AsyncDisposable {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: 'postgres';
  readonly password: string | undefined;
  readonly database: 'postgres';
  readonly dataDir: string;
  /** Directory of the Unix-domain socket; connections through it are always trusted. */
  readonly socketDir: string;
  /** `postgres://postgres[:password]@127.0.0.1:<port>/postgres` */
  readonly url: string;
  /** Process id of the postmaster (changes on restart). */
  readonly pid: number;
  /** Server version, e.g. `15.18`. */
  readonly version: string;
  /** Fast shutdown (clients are disconnected), then removes the data directory. Idempotent. */
  stop(): Promise<void>;
  /** Sends a signal to the postmaster only, e.g. SIGKILL to simulate a crash, SIGSTOP a hang. */
  kill(signal?: NodeJS.Signals): void;
  /** Stops the server (if it still runs) and starts it again on the same port and data. */
  restart(): Promise<void>;
  /** The last lines of the server log. */
  logTail(lines?: number): string;
}

/** sun_path holds 108 bytes: the socket directory plus `/.s.PGSQL.<port>` and a NUL must fit. */
const MAX_SOCKET_DIR_LENGTH = 107 - '/.s.PGSQL.65535'.length;
const STALE_SHARED_MEMORY = /pre-existing shared memory block/;

/** Starts a PostgreSQL server from the local binaries on a copy of a cached template. */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<EmbeddedPostgres> {
  const bins = findPostgresBinaries();
  const runAs = postgresRunAs();
  const dataRoot =
    options.dataRoot ?? path.join(os.tmpdir(), `qo-postgres-${process.getuid?.() ?? 'user'}`);
  await mkdir(dataRoot, { recursive: true });
  const serverDir = await createServerDir(dataRoot, runAs);
  const dataDir = path.join(serverDir, 'data');
  let socketDir = dataDir;
  try {
    const [template] = await Promise.all([templateDataDir(bins, runAs), sweepOnce(dataRoot)]);
    // As root, cp -a keeps the template's owner (the postgres user); otherwise it is ours anyway.
    await runProgram('cp', ['-a', template, dataDir], {
      runAs: undefined,
      cwd: serverDir,
      timeoutMs: 60_000,
    });
    await writeFile(path.join(dataDir, 'pg_hba.conf'), hbaConf(options.password !== undefined));
    if (dataDir.length > MAX_SOCKET_DIR_LENGTH) socketDir = await createSocketDir(runAs);
    const ctx: ServerContext = {
      bins,
      runAs,
      serverDir,
      dataDir,
      socketDir,
      settings: serverSettings(options, socketDir),
      log: new LogTail(),
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
    };
    const { child, port } = await launchOnFreePort(ctx, options.port ?? 0);
    const server = new LocalPostgres(ctx, child, port, options.password);
    if (options.password !== undefined) {
      await setPassword(socketDir, port, options.password).catch(async (error: unknown) => {
        await server.stop();
        throw error;
      });
    }
    return server;
  } catch (error) {
    await removeDirs(serverDir, socketDir, dataDir);
    throw error;
  }
}

function serverSettings(options: StartPostgresOptions, socketDir: string): Map<string, string> {
  const settings = new Map<string, string>([
    ['listen_addresses', '127.0.0.1'],
    ['unix_socket_directories', socketDir],
    ['fsync', 'off'],
    // With fsync off a synchronous commit is only a write() to the page cache: measured with
    // pgbench it costs nothing, and it keeps committed rows across kill('SIGKILL'), which
    // synchronous_commit=off would lose for up to three wal_writer_delay periods.
    ['synchronous_commit', 'on'],
    ['full_page_writes', 'off'],
    ['max_prepared_transactions', String(options.maxPreparedTransactions ?? 20)],
    ['max_connections', '200'],
    // The readiness check reads the log; English messages on stderr are what it looks for.
    ['lc_messages', 'C'],
    ['logging_collector', 'off'],
  ]);
  if (options.password !== undefined) settings.set('password_encryption', 'scram-sha-256');
  for (const [name, value] of Object.entries(options.settings ?? {})) settings.set(name, value);
  return settings;
}

/** Unix-socket logins are trusted: the socket sits in a directory only the server can read. */
function hbaConf(withPassword: boolean): string {
  const method = withPassword ? 'scram-sha-256' : 'trust';
  return [
    '# TYPE  DATABASE     USER  ADDRESS       METHOD',
    'local   all          all                 trust',
    `host    all          all   127.0.0.1/32  ${method}`,
    'local   replication  all                 trust',
    `host    replication  all   127.0.0.1/32  ${method}`,
    '',
  ].join('\n');
}

async function createServerDir(dataRoot: string, runAs: RunAs | undefined): Promise<string> {
  const dir = await mkdtemp(path.join(dataRoot, 'pg-'));
  await writeFile(path.join(dir, OWNER_FILE), `${process.pid}\n`);
  // The postgres user must be able to reach the data directory inside.
  if (runAs) await chmod(dir, 0o755);
  return dir;
}

async function createSocketDir(runAs: RunAs | undefined): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qo-pgs-'));
  if (runAs) await chown(dir, runAs.uid, runAs.gid);
  return dir;
}

const swept = new Set<string>();
async function sweepOnce(dataRoot: string): Promise<void> {
  if (swept.has(dataRoot)) return;
  swept.add(dataRoot);
  await sweepOrphans(dataRoot);
}

async function removeDirs(serverDir: string, socketDir: string, dataDir: string): Promise<void> {
  await rm(serverDir, { recursive: true, force: true, maxRetries: 3 });
  if (socketDir !== dataDir) await rm(socketDir, { recursive: true, force: true });
}

/** Sets the password over the trusted Unix socket, before any TCP client needs it. */
async function setPassword(socketDir: string, port: number, password: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ host: socketDir, port, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    // ALTER ROLE takes no bind parameters; escapeLiteral quotes the value.
    await client.query(`ALTER ROLE postgres PASSWORD ${client.escapeLiteral(password)}`);
  } finally {
    await client.end();
  }
}

const live = new Set<LocalPostgres>();
let exitHookInstalled = false;

/**
 * Best effort when the process ends without stopping its servers: kill each by its pid. A fatal
 * signal skips 'exit' handlers, so SIGTERM, SIGINT and SIGHUP are caught too; when nothing else
 * listens for the signal, it is raised again so that the process still ends as it would have.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const server of live) server.killAndForget();
  };
  process.on('exit', killAll);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      if (process.listenerCount(signal) > 0) return;
      killAll();
      process.kill(process.pid, signal);
    });
  }
}

class LocalPostgres implements EmbeddedPostgres {
  readonly host = '127.0.0.1' as const;
  readonly user = 'postgres' as const;
  readonly database = 'postgres' as const;
  readonly port: number;
  readonly password: string | undefined;
  readonly url: string;
  readonly #ctx: ServerContext;
  #child: ChildProcess;
  #stopping: Promise<void> | undefined;

  constructor(ctx: ServerContext, child: ChildProcess, port: number, password: string | undefined) {
    this.#ctx = ctx;
    this.#child = child;
    this.port = port;
    this.password = password;
    const auth = password === undefined ? '' : `:${encodeURIComponent(password)}`;
    this.url = `postgres://postgres${auth}@127.0.0.1:${port}/postgres`;
    live.add(this);
    installExitHook();
  }

  get dataDir(): string {
    return this.#ctx.dataDir;
  }

  get socketDir(): string {
    return this.#ctx.socketDir;
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  get version(): string {
    return this.#ctx.bins.version;
  }

  logTail(lines = 50): string {
    return this.#ctx.log.lines(lines);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (isRunning(this.#child)) this.#child.kill(signal);
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async restart(): Promise<void> {
    if (this.#stopping) throw new Error(`PostgreSQL on port ${this.port} was stopped`);
    await this.#terminate();
    // After a SIGKILL the old backends may hold shared memory for a moment.
    for (let attempt = 1; ; attempt++) {
      try {
        this.#child = await launch(this.#ctx, this.port);
        return;
      } catch (error) {
        const stale = error instanceof StartError && STALE_SHARED_MEMORY.test(error.output);
        if (!stale || attempt >= 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** Synchronous, for the exit handler: SIGKILL and remove what can be removed. */
  killAndForget(): void {
    live.delete(this);
    this.kill('SIGKILL');
    try {
      rmSync(this.#ctx.serverDir, { recursive: true, force: true });
      if (this.#ctx.socketDir !== this.#ctx.dataDir)
        rmSync(this.#ctx.socketDir, { recursive: true });
    } catch {
      // Children of the killed postmaster may still be writing; a later sweep removes the rest.
    }
  }

  async #stop(): Promise<void> {
    try {
      await this.#terminate();
    } finally {
      live.delete(this);
      await removeDirs(this.#ctx.serverDir, this.#ctx.socketDir, this.#ctx.dataDir);
    }
  }

  /**
   * SIGINT is PostgreSQL's fast shutdown: it ends client sessions and exits (SIGTERM, smart
   * shutdown, would wait for every client to leave). SIGCONT wakes a postmaster a test stopped
   * with SIGSTOP. Escalates to immediate shutdown (SIGQUIT), then SIGKILL.
   */
  async #terminate(): Promise<void> {
    const child = this.#child;
    if (!isRunning(child)) return;
    setRef(child, true);
    for (const [signal, waitMs] of [
      ['SIGINT', 10_000],
      ['SIGQUIT', 5_000],
      ['SIGKILL', 5_000],
    ] as const) {
      child.kill(signal);
      child.kill('SIGCONT');
      if (await waitForExit(child, waitMs)) return;
    }
    throw new Error(`PostgreSQL (pid ${child.pid}) did not exit after SIGKILL`);
  }
}
