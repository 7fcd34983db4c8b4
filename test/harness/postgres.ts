import { closeSync, existsSync, openSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { findPostgresBinaries } from '../../src/embedded/binaries.ts';
import { type EmbeddedPostgres, startPostgres } from '../../src/embedded/postgres.ts';

export interface TestPostgresOptions {
  /** The `postgres` role's password; TCP logins then use SCRAM-SHA-256. Default: trust. */
  password?: string;
  /** Default 20. */
  maxPreparedTransactions?: number;
  settings?: Record<string, string>;
}

/** A throwaway PostgreSQL for one test: local binaries, or a container when an engine runs. */
export interface TestPostgres extends AsyncDisposable {
  readonly kind: 'local' | 'container';
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string | undefined;
  readonly database: string;
  /** `postgres://user[:password]@host:port/database` */
  readonly url: string;
  /** The data directory of a local server; undefined for a container. */
  readonly dataDir: string | undefined;
  /** The local server, for what only it offers (pid, socket, log); undefined for a container. */
  readonly local: EmbeddedPostgres | undefined;
  /** Stops the server and removes its data. Idempotent. */
  stop(): Promise<void>;
  /** Signals the postmaster: SIGKILL (default) to simulate a crash, SIGSTOP a hang. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same data after stop-by-signal; the port stays for local servers. */
  restart(): Promise<void>;
}

type Testcontainers = typeof import('testcontainers');
type Engine = { kind: 'local' } | { kind: 'container'; tc: Testcontainers };

let engine: Promise<Engine> | undefined;

/**
 * Starts PostgreSQL for a test. `QO_TEST_POSTGRES=local|container` forces the choice; by default a
 * container is used when testcontainers finds a container engine, else the local binaries.
 */
export async function startTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  engine ??= chooseEngine();
  const chosen = await engine;
  return chosen.kind === 'container'
    ? startContainer(chosen.tc, options)
    : wrapLocal(await startPostgres(options));
}

async function chooseEngine(): Promise<Engine> {
  const forced = process.env['QO_TEST_POSTGRES'];
  if (forced === 'local') {
    announce(`harness: QO_TEST_POSTGRES=local, ${localDescription()}`);
    return { kind: 'local' };
  }
  if (forced === 'container' || mayHaveContainerEngine()) {
    try {
      const tc = await import('testcontainers');
      await tc.getContainerRuntimeClient();
      announce(`harness: container engine found, using ${containerImage()} containers`);
      return { kind: 'container', tc };
    } catch (error) {
      if (forced === 'container') {
        throw new Error('QO_TEST_POSTGRES=container, but no container engine', { cause: error });
      }
    }
  }
  announce(`harness: no container engine, ${localDescription()}`);
  return { kind: 'local' };
}

function localDescription(): string {
  const { bindir, version } = findPostgresBinaries();
  return `using local PostgreSQL binaries at ${bindir} (PostgreSQL ${version})`;
}

/**
 * Importing testcontainers costs ~260 ms per test file. Skip it when none of the places it looks
 * for an engine exists: DOCKER_HOST, ~/.testcontainers.properties, the usual Docker sockets.
 */
function mayHaveContainerEngine(): boolean {
  if (process.platform === 'win32' || process.env['DOCKER_HOST']) return true;
  const home = os.homedir();
  const runtimeDir = process.env['XDG_RUNTIME_DIR'];
  const places = [
    path.join(home, '.testcontainers.properties'),
    '/var/run/docker.sock',
    path.join(home, '.docker', 'run', 'docker.sock'),
    path.join(home, '.docker', 'desktop', 'docker.sock'),
    `/run/user/${os.userInfo().uid}/docker.sock`,
  ];
  if (runtimeDir) places.push(path.join(runtimeDir, 'docker.sock'));
  return places.some((place) => existsSync(place));
}

/**
 * Says which PostgreSQL the tests use, once per process, and once per run under scripts/test.mjs
 * (which sets QO_TEST_RUN_ID): the first test file to create the marker file says it.
 */
function announce(message: string): void {
  const runId = process.env['QO_TEST_RUN_ID'];
  if (runId) {
    try {
      closeSync(openSync(path.join(os.tmpdir(), `qo-test-announced-${runId}`), 'wx'));
    } catch {
      return;
    }
  }
  process.stderr.write(`${message}\n`);
}

function wrapLocal(server: EmbeddedPostgres): TestPostgres {
  return {
    kind: 'local',
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    database: server.database,
    url: server.url,
    dataDir: server.dataDir,
    local: server,
    stop: () => server.stop(),
    kill: async (signal) => server.kill(signal),
    restart: () => server.restart(),
    [Symbol.asyncDispose]: () => server.stop(),
  };
}

function containerImage(): string {
  return process.env['QO_TEST_POSTGRES_IMAGE'] || 'postgres:15';
}

// NOTE: the container path is written against the testcontainers API but has not run here:
// this machine has no container engine.
async function startContainer(
  tc: Testcontainers,
  options: TestPostgresOptions,
): Promise<TestPostgres> {
  const settings: Record<string, string> = {
    max_prepared_transactions: String(options.maxPreparedTransactions ?? 20),
    max_connections: '200',
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    ...options.settings,
  };
  const environment: Record<string, string> =
    options.password === undefined
      ? { POSTGRES_HOST_AUTH_METHOD: 'trust' }
      : { POSTGRES_PASSWORD: options.password, POSTGRES_HOST_AUTH_METHOD: 'scram-sha-256' };
  const container: StartedTestContainer = await new tc.GenericContainer(containerImage())
    .withEnvironment(environment)
    .withCommand(['postgres', ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])])
    .withExposedPorts(5432)
    .withTmpFs({ '/var/lib/postgresql/data': 'rw' })
    // The image's entrypoint starts a server to initialize, stops it, then starts the real one.
    .withWaitStrategy(tc.Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .withStartupTimeout(120_000)
    .start();
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= container.stop().then(() => undefined);
    return stopping;
  };
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}`;
  return {
    kind: 'container',
    host: container.getHost(),
    get port() {
      return container.getMappedPort(5432);
    },
    user: 'postgres',
    password: options.password,
    database: 'postgres',
    get url() {
      const port = container.getMappedPort(5432);
      return `postgres://postgres${auth}@${container.getHost()}:${port}/postgres`;
    },
    dataDir: undefined,
    local: undefined,
    stop,
    kill: async (signal = 'SIGKILL') => {
      const client = await tc.getContainerRuntimeClient();
      await client.container.getById(container.getId()).kill({ signal });
    },
    restart: () => container.restart(),
    [Symbol.asyncDispose]: stop,
  };
}
