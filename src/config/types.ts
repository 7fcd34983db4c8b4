/** One PostgreSQL database of a cluster, as the proxy connects to it. */
export interface BackendConfig {
  /** Stable name used in logs and errors, e.g. `prod/0` or `10.0.0.1:64000`. */
  name: string;
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /** The schema that queries address on this database (the original's `schema`); put first on search_path. */
  schema?: string;
}

/** A cluster: databases kept identical, addressed by clients through the startup `database`. */
export interface ClusterConfig {
  name: string;
  backends: BackendConfig[];
  /** Start this many throwaway PostgreSQL servers from the local binaries as the backends (demo, tests). */
  embedded?: number;
  /** Refuse writes whose rollback would be irreversible, before they run. */
  requireRollback: boolean;
  /** Rows captured per statement for its rollback; above it the write is recorded irreversible. */
  maxCaptureRows: number;
  /**
   * Refuse changes while a backend cannot take part in two-phase commit
   * (max_prepared_transactions = 0), instead of committing backends one after the other.
   */
  requireTwoPhase?: boolean;
  /**
   * False: changes run without capture and are recorded with no undo (to measure what capture
   * costs, or for data that never needs one). Absent means true (configurations built in code).
   */
  capture?: boolean;
}

export type CatalogConfig =
  | { kind: 'embedded'; dataDir: string }
  | { kind: 'postgres'; url: string };

export interface ListenConfig {
  host: string;
  port: number;
}

export type TlsMode = 'disable' | 'allow' | 'require';

/** TLS towards clients. `cert` and `key` are absolute paths of PEM files, set unless disabled. */
export interface TlsConfig {
  mode: TlsMode;
  cert?: string;
  key?: string;
}

export interface SessionsConfig {
  /** Milliseconds a client may leave a transaction open and idle; 0 means no limit. */
  idleInTransactionTimeoutMs: number;
}

export interface Config {
  /** Path of the file this was read from, for messages. */
  source: string;
  listen: ListenConfig;
  admin: ListenConfig;
  secret: string;
  /** True when the secret came from a `${VAR:-default}` default, so the start can warn. */
  secretIsDefault: boolean;
  catalog: CatalogConfig;
  clusters: ClusterConfig[];
  /** Directory for runtime state of embedded parts (catalog, throwaway servers). */
  dataDir: string;
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
  /** Absent means disabled (configurations built in code, tests). */
  tls?: TlsConfig;
  /** Absent means no idle limit. */
  sessions?: SessionsConfig;
}
