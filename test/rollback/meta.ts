import type { ResolveTable } from '../../rollback/plan.ts';
import type { TableMeta } from '../../src/cluster/metadata.ts';
import type { WireClient } from './wire.ts';

/*
 * A small pg_catalog scan into TableMeta for the rollback tests, independent of the catalog
 * scanner so that these tests exercise only the rollback planner.
 */

const attnames = (rel: string, keys: string) => `(SELECT json_agg(a.attname ORDER BY k.ord)
  FROM unnest(${keys}) WITH ORDINALITY k(attnum, ord)
  JOIN pg_attribute a ON a.attrelid = ${rel} AND a.attnum = k.attnum)`;

const foreignKeys = (where: string) => `(SELECT coalesce(json_agg(json_build_object(
    'name', con.conname, 'schema', cn.nspname, 'table', cc.relname,
    'columns', ${attnames('con.conrelid', 'con.conkey')},
    'referencedSchema', rn.nspname, 'referencedTable', rc.relname,
    'referencedColumns', ${attnames('con.confrelid', 'con.confkey')},
    'onDelete', con.confdeltype, 'onUpdate', con.confupdtype) ORDER BY con.conname), '[]')
  FROM pg_constraint con
  JOIN pg_class cc ON cc.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
  JOIN pg_class rc ON rc.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
  WHERE con.contype = 'f' AND ${where})`;

const SCAN = `SELECT coalesce(json_agg(json_build_object(
  'schema', n.nspname, 'name', c.relname, 'kind', c.relkind,
  'columns', (SELECT json_agg(json_build_object(
      'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'typeOid', a.atttypid,
      'notNull', a.attnotnull, 'default', pg_get_expr(d.adbin, d.adrelid),
      'identity', a.attidentity, 'generated', a.attgenerated <> '') ORDER BY a.attnum)
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  'primaryKey', coalesce((SELECT ${attnames('c.oid', 'con.conkey')} FROM pg_constraint con
    WHERE con.conrelid = c.oid AND con.contype = 'p'), '[]'),
  'uniqueKeys', (SELECT coalesce(json_agg(${attnames('c.oid', 'i.indkey::int2[]')}), '[]')
    FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND NOT i.indisprimary
      AND i.indpred IS NULL AND i.indexprs IS NULL
      AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) k(attnum)
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum WHERE NOT a.attnotnull)),
  'serialKey', false,
  'foreignKeys', ${foreignKeys('con.conrelid = c.oid')},
  'referencedBy', ${foreignKeys('con.confrelid = c.oid')},
  'triggers', (SELECT coalesce(json_agg(t.tgname ORDER BY t.tgname), '[]') FROM pg_trigger t
    WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
  'hasRules', EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN')
)), '[]')::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(string_to_array($1, ',')) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`;

/** Scans every relation of `schemas` and returns a resolver over them (unqualified: `public`). */
export async function scanMetadata(client: WireClient, schemas: string[]): Promise<ResolveTable> {
  const result = await client.run(SCAN, [schemas.join(',')]);
  const tables = JSON.parse(result.rows[0]![0]!.toString('utf8')) as TableMeta[];
  const byName = new Map(tables.map((t) => [`${t.schema}.${t.name}`, t]));
  return (schema, name) => byName.get(`${schema ?? 'public'}.${name}`);
}
