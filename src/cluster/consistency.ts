/** How a consistency check compares the backends of a cluster. */
export interface ConsistencyOptions {
  /** Rows per chunk of a table's key range; each chunk is hashed on its own. Default 10,000. */
  chunkRows?: number;
  /** A differing chunk of at most this many rows on every backend has its keys listed. Default 1,000. */
  keyRows?: number;
  /** Keys listed per table at most. Default 100. */
  maxKeys?: number;
}

/** A key whose row is not the same everywhere. */
export interface KeyDifference {
  /** Key column to value, as text. */
  key: Record<string, string>;
  /** Backends without the row. */
  missingOn: string[];
  /** Backends whose row differs from that of the first backend holding it. */
  differsOn: string[];
}

export interface TableDifference {
  /** `schema.table`, quoted where needed. */
  table: string;
  /** Backends where the table does not exist. */
  missingOn?: string[];
  /** Backends whose columns (names, types, order) differ from the first backend's. */
  columnsDifferOn?: string[];
  /** Rows on each backend, by backend name. */
  rows?: Record<string, number>;
  /** Chunks whose hashes differ, of how many. */
  chunks?: { differing: number; total: number };
  /** Keys of differing rows, when the differing chunks are small. */
  keys?: KeyDifference[];
  /** True when more keys differ than were listed, or a differing chunk was too big to list. */
  keysOmitted?: boolean;
  /** Why keys cannot be listed (a table without a primary key or non-null unique key). */
  note?: string;
}

export interface ConsistencyReport {
  cluster: string;
  /** Backend names, in configuration order. */
  backends: string[];
  /** `consistent`: every table is identical; `different`; `incomplete`: a backend was unreachable. */
  status: 'consistent' | 'different' | 'incomplete';
  /** Tables compared. */
  tables: number;
  differences: TableDifference[];
  unreachable: { backend: string; error: string }[];
  durationMs: number;
}
