/** What the proxy knows of one table of a cluster, scanned from a backend's pg_catalog. */
export interface ColumnMeta {
  name: string;
  /** `format_type(atttypid, atttypmod)`, e.g. `character varying(100)`. */
  type: string;
  typeOid: number;
  notNull: boolean;
  /** Default expression text, if any. */
  default: string | null;
  /** `a` (GENERATED ALWAYS AS IDENTITY), `d` (BY DEFAULT), or '' */
  identity: '' | 'a' | 'd';
  /** A stored generated column: never written by an undo. */
  generated: boolean;
}

/** `a` no action, `r` restrict, `c` cascade, `n` set null, `d` set default (pg_constraint.confdeltype). */
export type ForeignKeyAction = 'a' | 'r' | 'c' | 'n' | 'd';

export interface ForeignKeyMeta {
  name: string;
  /** The referencing table. */
  schema: string;
  table: string;
  columns: string[];
  referencedSchema: string;
  referencedTable: string;
  referencedColumns: string[];
  onDelete: ForeignKeyAction;
  onUpdate: ForeignKeyAction;
}

export interface TableMeta {
  schema: string;
  name: string;
  /** `r` table, `p` partitioned table, `v` view, `m` materialized view, `f` foreign table. */
  kind: string;
  columns: ColumnMeta[];
  /** Primary key columns in key order; empty when the table has none. */
  primaryKey: string[];
  /** Unique constraints or indexes whose columns are all NOT NULL, each in key order. */
  uniqueKeys: string[][];
  /** True when the (single-column) primary key takes its values from a sequence or identity. */
  serialKey: boolean;
  /** Foreign keys of this table. */
  foreignKeys: ForeignKeyMeta[];
  /** Foreign keys of other tables (or this one) that reference this table. */
  referencedBy: ForeignKeyMeta[];
  /** Names of user triggers on the table (effects the proxy cannot see). */
  triggers: string[];
  /** True when rewrite rules other than a view's own exist on the table. */
  hasRules: boolean;
}

/** Key for the metadata map: schema and table names as stored (unquoted, case preserved). */
export function tableKey(schema: string, name: string): string {
  return `${schema}.${name}`;
}

export interface ClusterMetadata {
  cluster: string;
  tables: Map<string, TableMeta>;
  scannedAt: Date;
}
