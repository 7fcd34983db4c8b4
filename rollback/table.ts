import type { RangeVar } from 'libpg-query';
import type { ForeignKeyAction, ForeignKeyMeta, TableMeta } from '../src/cluster/metadata.ts';
import { tableName } from './template.ts';
import type { NoCapture } from './types.ts';

export type ResolveTable = (schema: string | undefined, name: string) => TableMeta | undefined;

export function irreversible(reason: string): NoCapture {
  return { reversibility: 'irreversible', reason };
}

export function modifyingCte(): NoCapture {
  // Statements with data-modifying WITH queries are planned in cte.ts; this answers one nested
  // below the top level (INSERT ... WITH ... SELECT), which PostgreSQL refuses to run anyway.
  return irreversible('a data-modifying WITH query below the top level is not captured');
}

export function isNoCapture(value: object): value is NoCapture {
  return 'reason' in value && !('build' in value);
}

const KIND_NAMES: Record<string, string> = {
  v: 'a view',
  m: 'a materialized view',
  f: 'a foreign table',
};

/** The metadata of a statement's target table, or why its changes cannot be captured. */
export function resolveTarget(
  relation: RangeVar | undefined,
  resolve: ResolveTable,
): TableMeta | NoCapture {
  if (relation?.relname === undefined) return irreversible('the statement has no target table');
  const written = relation.schemaname
    ? `${relation.schemaname}.${relation.relname}`
    : relation.relname;
  const table = resolve(relation.schemaname, relation.relname);
  if (table === undefined) {
    return irreversible(`table ${written} is not in the scanned metadata`);
  }
  if (table.kind !== 'r' && table.kind !== 'p') {
    // NOTE: writes through views are not captured; the view's rules decide what changes.
    const what = KIND_NAMES[table.kind] ?? `a relation of kind '${table.kind}'`;
    return irreversible(`${tableName(table)} is ${what}; only changes to tables are captured`);
  }
  if (table.hasRules) {
    // A rule can redirect the change elsewhere, and PostgreSQL refuses RETURNING on a table with
    // conditional DO INSTEAD rules: adding the hidden columns could make the statement fail.
    // NOTE: changes to tables with rewrite rules are not captured.
    return irreversible(
      `table ${tableName(table)} has rewrite rules, which may redirect the change; ` +
        'it is not captured',
    );
  }
  return table;
}

/**
 * The columns that identify a row: the primary key, else the first unique key whose columns
 * are all NOT NULL. Keys touching `avoid` (columns the statement changes) are skipped, since
 * they cannot match a row before and after the change.
 */
export function chooseKey(
  table: TableMeta,
  avoid: ReadonlySet<string> = new Set(),
): string[] | undefined {
  const candidates = [table.primaryKey, ...table.uniqueKeys].filter((k) => k.length > 0);
  return candidates.find((key) => key.every((c) => !avoid.has(c)));
}

export function hasKey(table: TableMeta): boolean {
  return table.primaryKey.length > 0 || table.uniqueKeys.some((k) => k.length > 0);
}

export function noKey(table: TableMeta): NoCapture {
  return irreversible(`table ${tableName(table)} has no primary key or unique not-null key`);
}

/** Why an exact undo of a change to this table may still miss effects the proxy cannot see. */
export function sideEffectReasons(table: TableMeta): string[] {
  const reasons: string[] = [];
  if (table.triggers.length > 0) {
    const names = table.triggers.join(', ');
    reasons.push(`table ${tableName(table)} has triggers (${names}) whose effects are not undone`);
  }
  return reasons;
}

const ACTION_NAMES: Partial<Record<ForeignKeyAction, string>> = {
  c: 'CASCADE',
  n: 'SET NULL',
  d: 'SET DEFAULT',
};

/**
 * Foreign keys referencing the table whose action (on delete, or on update of the given
 * columns) changes rows of another table: those changes are not in the captured rows.
 */
export function cascadeReason(
  table: TableMeta,
  event: 'delete' | 'update',
  updatedColumns?: ReadonlySet<string>,
): string | undefined {
  const hits = table.referencedBy.filter((fk) => {
    const action = event === 'delete' ? fk.onDelete : fk.onUpdate;
    if (ACTION_NAMES[action] === undefined) return false;
    return updatedColumns === undefined || fk.referencedColumns.some((c) => updatedColumns.has(c));
  });
  if (hits.length === 0) return undefined;
  const described = hits.map(
    (fk) => `${referencing(fk)} (ON ${event.toUpperCase()} ${actionOf(fk, event)})`,
  );
  const verb = event === 'delete' ? 'deleting from' : 'updating';
  // NOTE: rows changed by cascading foreign keys are not captured, so their undo is missing.
  const targets = described.join(', ');
  return `${verb} ${tableName(table)} cascades to ${targets}; those rows are not captured`;
}

function referencing(fk: ForeignKeyMeta): string {
  return tableName({ schema: fk.schema, name: fk.table });
}

function actionOf(fk: ForeignKeyMeta, event: 'delete' | 'update'): string {
  return ACTION_NAMES[event === 'delete' ? fk.onDelete : fk.onUpdate] ?? '';
}

/** The type name (format_type) of each named column, for casts and hints. */
export function columnTypes(table: TableMeta, columns: readonly string[]): string[] {
  return columns.map((c) => table.columns.find((m) => m.name === c)?.type ?? 'unknown');
}
