/**
 * The catalog's tables. Changes here become migrations with `npm run catalog:generate`
 * (drizzle-kit), which are committed and applied at open.
 *
 * Everything lives in the `qo` schema so that a PostgreSQL catalog can share a database
 * with other applications without its `tables` or `columns` clashing with theirs.
 */
import {
  bigint,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  timestamp,
  unique,
} from 'drizzle-orm/pg-core';

export const qo = pgSchema('qo');

/** Where drizzle's migrator records applied migrations (kept apart from the `qo` schema). */
export const MIGRATIONS = { schema: 'drizzle', table: 'qo_catalog_migrations' } as const;

const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
// Ids come from the catalog (one identity sequence), never from a proxy instance, so several
// instances may share one PostgreSQL catalog.
const identityId = () => bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity();

export const auditEntries = qo.table(
  'audit_entries',
  {
    id: identityId(),
    at: at('at').notNull().defaultNow(),
    cluster: text('cluster').notNull(),
    userName: text('user_name').notNull(),
    session: text('session').notNull(),
    transaction: text('transaction'),
    kind: text('kind').notNull(),
    sql: text('sql').notNull(),
    params: jsonb('params').$type<(string | null)[]>(),
    outcome: text('outcome').notNull(),
    error: text('error'),
    durationMs: doublePrecision('duration_ms').notNull(),
    rowCount: bigint('row_count', { mode: 'number' }),
    commandTag: text('command_tag'),
    rollback: jsonb('rollback'),
    reversibility: text('reversibility').notNull(),
    reason: text('reason'),
    rollbackOf: bigint('rollback_of', { mode: 'number' }),
    rolledBackBy: bigint('rolled_back_by', { mode: 'number' }),
    afterImage: jsonb('after_image'),
  },
  (t) => [
    index('audit_entries_cluster_id_idx').on(t.cluster, t.id),
    index('audit_entries_transaction_idx').on(t.transaction),
  ],
);

/**
 * The commit decision of a two-phase commit: a row here means every backend must
 * `COMMIT PREPARED` the transaction named `gid`; no row means roll it back.
 */
export const commitDecisions = qo.table('commit_decisions', {
  gid: text('gid').primaryKey(),
  cluster: text('cluster').notNull(),
  decidedAt: at('decided_at').notNull().defaultNow(),
  state: text('state').notNull().default('commit'),
});

export const clusters = qo.table('clusters', {
  name: text('name').primaryKey(),
  scannedAt: at('scanned_at'),
});

export const backends = qo.table(
  'backends',
  {
    cluster: text('cluster')
      .notNull()
      .references(() => clusters.name, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    host: text('host').notNull(),
    port: integer('port').notNull(),
    database: text('database').notNull(),
    userName: text('user_name').notNull(),
    schema: text('schema'),
  },
  (t) => [primaryKey({ columns: [t.cluster, t.name] })],
);

export const schemas = qo.table(
  'schemas',
  {
    id: identityId(),
    cluster: text('cluster').notNull(),
    name: text('name').notNull(),
  },
  (t) => [unique('schemas_cluster_name_key').on(t.cluster, t.name)],
);

export const tables = qo.table(
  'tables',
  {
    id: identityId(),
    cluster: text('cluster').notNull(),
    schema: text('schema').notNull(),
    name: text('name').notNull(),
    kind: text('kind').notNull(),
    primaryKey: text('primary_key').array().notNull(),
    serialKey: boolean('serial_key').notNull(),
    uniqueKeys: jsonb('unique_keys').$type<string[][]>().notNull(),
    triggers: text('triggers').array().notNull(),
    hasRules: boolean('has_rules').notNull(),
  },
  (t) => [unique('tables_cluster_schema_name_key').on(t.cluster, t.schema, t.name)],
);

export const columns = qo.table(
  'columns',
  {
    id: identityId(),
    cluster: text('cluster').notNull(),
    schema: text('schema').notNull(),
    table: text('table').notNull(),
    position: integer('position').notNull(),
    name: text('name').notNull(),
    type: text('type').notNull(),
    typeOid: bigint('type_oid', { mode: 'number' }).notNull(),
    notNull: boolean('not_null').notNull(),
    default: text('default'),
    identity: text('identity').notNull().default(''),
    generated: boolean('generated').notNull(),
  },
  (t) => [
    unique('columns_cluster_table_position_key').on(t.cluster, t.schema, t.table, t.position),
  ],
);

/** Foreign keys, one row each, stored with the referencing table. */
export const constraints = qo.table(
  'constraints',
  {
    id: identityId(),
    cluster: text('cluster').notNull(),
    name: text('name').notNull(),
    schema: text('schema').notNull(),
    table: text('table').notNull(),
    columns: text('columns').array().notNull(),
    referencedSchema: text('referenced_schema').notNull(),
    referencedTable: text('referenced_table').notNull(),
    referencedColumns: text('referenced_columns').array().notNull(),
    onDelete: text('on_delete').notNull(),
    onUpdate: text('on_update').notNull(),
  },
  (t) => [
    index('constraints_cluster_table_idx').on(t.cluster, t.schema, t.table),
    index('constraints_cluster_referenced_idx').on(
      t.cluster,
      t.referencedSchema,
      t.referencedTable,
    ),
  ],
);

/** Tokens issued by the admin API, and revocations by `jti`. */
export const tokens = qo.table('tokens', {
  jti: text('jti').primaryKey(),
  subject: text('subject').notNull(),
  claims: jsonb('claims').notNull(),
  issuedAt: at('issued_at').notNull().defaultNow(),
  expiresAt: at('expires_at'),
  revokedAt: at('revoked_at'),
});
