/**
 * The catalog queries of the metadata scanner. Each returns the whole set for the database;
 * the scanner groups rows by relation oid. See
 * https://www.postgresql.org/docs/current/catalogs.html for the columns used.
 */

/** Relations the proxy may address: tables, partitioned tables, views, matviews, foreign tables. */
const RELATIONS = `
  SELECT c.oid, n.nspname, c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'`;

/** Attribute names of `rel` for the attnums in `keys` (an int2[]), in array order. */
const names = (rel: string, keys: string) => `
  ARRAY(SELECT a.attname::text
        FROM unnest(${keys}) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = ${rel} AND a.attnum = k.attnum
        ORDER BY k.ord)`;

export interface RelationRow {
  oid: number;
  schema: string;
  name: string;
  kind: string;
  triggers: string[];
  has_rules: boolean;
}

/** Internal triggers (those of foreign keys, deferred unique checks) are not user effects. */
const relationsSql = `
  WITH rels AS (${RELATIONS})
  SELECT rels.oid, rels.nspname AS schema, rels.relname AS name, rels.relkind::text AS kind,
    ARRAY(SELECT t.tgname::text FROM pg_trigger t
          WHERE t.tgrelid = rels.oid AND NOT t.tgisinternal ORDER BY t.tgname) AS triggers,
    EXISTS (SELECT 1 FROM pg_rewrite r
            WHERE r.ev_class = rels.oid AND r.rulename <> '_RETURN') AS has_rules
  FROM rels
  ORDER BY rels.nspname, rels.relname`;

export interface ColumnRow {
  rel: number;
  name: string;
  type: string;
  type_oid: number;
  not_null: boolean;
  default: string | null;
  identity: '' | 'a' | 'd';
  generated: string;
}

const columnsSql = `
  WITH rels AS (${RELATIONS})
  SELECT a.attrelid AS rel, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
    a.atttypid AS type_oid, a.attnotnull AS not_null,
    pg_get_expr(d.adbin, d.adrelid) AS default,
    a.attidentity::text AS identity, a.attgenerated::text AS generated
  FROM pg_attribute a
  JOIN rels ON rels.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE a.attnum > 0 AND NOT a.attisdropped
  ORDER BY a.attrelid, a.attnum`;

export interface KeyRow {
  rel: number;
  primary: boolean;
  columns: string[];
  not_null: boolean;
}

/**
 * Primary keys and unique indexes that identify a row: valid, not partial, no expressions.
 * Only the first `indnkeyatts` entries of `indkey` are key columns; the rest are INCLUDE.
 */
const keysSql = `
  WITH rels AS (${RELATIONS}),
  keys AS (
    SELECT i.indrelid, i.indexrelid, i.indisprimary,
      ARRAY(SELECT u.attnum FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS u(attnum, ord)
            WHERE u.ord <= i.indnkeyatts ORDER BY u.ord) AS attnums
    FROM pg_index i JOIN rels ON rels.oid = i.indrelid
    WHERE (i.indisprimary OR i.indisunique) AND i.indisvalid
      AND i.indpred IS NULL AND i.indexprs IS NULL)
  SELECT keys.indrelid AS rel, keys.indisprimary AS primary,
    ${names('keys.indrelid', 'keys.attnums')} AS columns,
    NOT EXISTS (SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = keys.indrelid AND a.attnum = ANY (keys.attnums)
                  AND NOT a.attnotnull) AS not_null
  FROM keys
  ORDER BY keys.indrelid, keys.indisprimary DESC, keys.indexrelid`;

export interface ForeignKeyRow {
  name: string;
  rel: number;
  schema: string;
  table: string;
  columns: string[];
  referenced_rel: number;
  referenced_schema: string;
  referenced_table: string;
  referenced_columns: string[];
  on_delete: string;
  on_update: string;
}

/**
 * Foreign keys between scanned relations. A foreign key that references a partitioned table
 * has an extra pg_constraint row per referenced partition, with the same referencing table
 * and a parent constraint (conparentid) on that same table: those are implementation rows and
 * are skipped. Rows cloned onto referencing partitions are real constraints and kept.
 */
const foreignKeysSql = `
  WITH rels AS (${RELATIONS})
  SELECT c.conname AS name,
    c.conrelid AS rel, src.nspname AS schema, src.relname AS table,
    ${names('c.conrelid', 'c.conkey')} AS columns,
    c.confrelid AS referenced_rel, dst.nspname AS referenced_schema,
    dst.relname AS referenced_table,
    ${names('c.confrelid', 'c.confkey')} AS referenced_columns,
    c.confdeltype::text AS on_delete, c.confupdtype::text AS on_update
  FROM pg_constraint c
  JOIN rels src ON src.oid = c.conrelid
  JOIN rels dst ON dst.oid = c.confrelid
  WHERE c.contype = 'f'
    AND NOT EXISTS (SELECT 1 FROM pg_constraint p
                    WHERE p.oid = c.conparentid AND p.conrelid = c.conrelid)
  ORDER BY c.conrelid, c.conname`;

/**
 * The whole scan as one simple-query message: one round trip, and one snapshot (REPEATABLE
 * READ) so that concurrent DDL cannot make the four results disagree. Results come back in
 * statement order, BEGIN and COMMIT included.
 */
export const SCAN_SQL = [
  'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
  relationsSql,
  columnsSql,
  keysSql,
  foreignKeysSql,
  'COMMIT',
].join(';\n');
