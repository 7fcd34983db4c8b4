import type { AlterTableCmd, AlterTableStmt, RangeVar, RenameStmt } from 'libpg-query';
import {
  exact,
  LOCKED_BY_US,
  literal,
  nothing,
  plan,
  qualified,
  RELATION_KEYWORDS,
  regclass,
  SKIPPED,
  TEMPORARY,
  text,
  words,
} from './ddl-sql.ts';
import { failed } from './outcome.ts';
import { irreversible } from './table.ts';
import { quoteIdent } from './template.ts';
import type { CapturedRow, CaptureOutcome, CapturePlan, NoCapture } from './types.ts';

/* ALTER TABLE ... ADD COLUMN and RENAME, undone; see ddl.ts for how what they did is read. */

/** Reads the schema, name and persistence of the table a statement names, as it resolves it. */
function resolveRelation(relation: RangeVar): string {
  return (
    'SELECT n.nspname::text, c.relname::text, c.relpersistence::text FROM pg_class c ' +
    `JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ${regclass(relation)}`
  );
}

/**
 * After an ALTER or RENAME ... IF EXISTS: how many relations named `name` (as the statement left
 * it) the transaction holds ACCESS EXCLUSIVE on. With none, the statement changed nothing.
 */
function lockedAfter(schema: string | undefined, name: string): string {
  const where =
    `c.relname = ${literal(name)}` + (schema ? ` AND n.nspname = ${literal(schema)}` : '');
  return (
    'SELECT count(*)::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace ' +
    `WHERE ${where} AND ${LOCKED_BY_US}`
  );
}

/**
 * The table of an ALTER or RENAME as it was before, or the outcome when there is nothing to
 * undo: it was missing and IF EXISTS skipped it (nothing of that name got locked), or it is
 * temporary.
 */
function target(
  rows: CapturedRow[] | undefined,
  after: CapturedRow[][] | undefined,
): { schema: string; name: string } | CaptureOutcome {
  const row = rows?.[0];
  if (row === undefined) {
    return text(after?.[0]?.[0], 0) === '0'
      ? nothing('the relation did not exist: nothing was changed')
      : failed('the relation the statement changed did not exist just before it ran');
  }
  if (text(row, 2) === 't') return nothing(TEMPORARY);
  return { schema: text(row, 0) ?? '', name: text(row, 1) ?? '' };
}

function only(relation: RangeVar): string {
  // `inh` is left out of the parse tree when false, which is what ONLY writes.
  return relation.inh === true ? '' : 'ONLY ';
}

/** ALTER TABLE whose every action is ADD COLUMN: the undo drops the columns it added. */
export function alterTable(stmt: AlterTableStmt): CapturePlan | NoCapture {
  const relation = stmt.relation;
  const cmds = (stmt.cmds ?? []).map((c) => (c as { AlterTableCmd: AlterTableCmd }).AlterTableCmd);
  if (stmt.objtype !== 'OBJECT_TABLE' || relation === undefined) {
    return irreversible(
      `ALTER ${words(stmt.objtype?.replace(/^OBJECT_/, '') ?? '')} is not undone yet`,
    );
  }
  const other = cmds.find((cmd) => cmd.subtype !== 'AT_AddColumn');
  if (other !== undefined) {
    if (other.subtype === 'AT_AlterColumnType') {
      return irreversible(
        'ALTER COLUMN ... TYPE is not undone: converting the values back is not always exact',
      );
    }
    return irreversible(`ALTER TABLE ${words(other.subtype ?? '')} is not undone yet`);
  }
  const added = cmds.map((cmd) => ({
    name: (cmd.def as { ColumnDef?: { colname?: string } } | undefined)?.ColumnDef?.colname ?? '',
    ifNotExists: cmd.missing_ok === true,
  }));
  return plan(
    [
      resolveRelation(relation),
      'SELECT a.attname::text FROM pg_attribute a ' +
        `WHERE a.attrelid = ${regclass(relation)} AND a.attnum > 0 AND NOT a.attisdropped`,
    ],
    stmt.missing_ok ? [lockedAfter(relation.schemaname, relation.relname ?? '')] : [],
    ({ before, after, notices }) => {
      const table = target(before[0], after);
      if (!('schema' in table)) return table;
      const existing = new Set((before[1] ?? []).map((row) => text(row, 0)));
      const skipped = added.filter((c) => c.ifNotExists && existing.has(c.name));
      const said = notices?.filter((code) => code === SKIPPED.duplicateColumn).length ?? 0;
      if (said !== skipped.length) {
        return failed('the columns of the table changed while the statement ran');
      }
      const made = added.filter((c) => !skipped.includes(c)).map((c) => c.name);
      if (made.length === 0) return nothing('every column already existed: nothing was added');
      const drops = made.reverse().map((c) => `DROP COLUMN ${quoteIdent(c)}`);
      return exact([
        `ALTER TABLE ${only(relation)}${qualified(table.schema, table.name)} ${drops.join(', ')}`,
      ]);
    },
  );
}

/** RENAME of a relation, of a column of a relation, or of a schema: renamed back. */
export function rename(stmt: RenameStmt): CapturePlan | NoCapture {
  const newName = stmt.newname ?? '';
  if (stmt.renameType === 'OBJECT_SCHEMA') {
    const old = stmt.subname ?? '';
    return plan([], [], () =>
      exact([`ALTER SCHEMA ${quoteIdent(newName)} RENAME TO ${quoteIdent(old)}`]),
    );
  }
  const relation = stmt.relation;
  const column = stmt.renameType === 'OBJECT_COLUMN';
  const keyword = RELATION_KEYWORDS[(column ? stmt.relationType : stmt.renameType) ?? ''];
  if (relation === undefined || keyword === undefined) {
    const what = words(stmt.renameType?.replace(/^OBJECT_/, '') ?? '');
    return irreversible(`RENAME of ${what} is not undone yet`);
  }
  const nameAfter = column ? (relation.relname ?? '') : newName;
  const after = stmt.missing_ok ? [lockedAfter(relation.schemaname, nameAfter)] : [];
  return plan([resolveRelation(relation)], after, ({ before, after }) => {
    const table = target(before[0], after);
    if (!('schema' in table)) return table;
    if (column) {
      const renamed = `${quoteIdent(newName)} TO ${quoteIdent(stmt.subname ?? '')}`;
      const name = qualified(table.schema, table.name);
      return exact([`ALTER ${keyword} ${only(relation)}${name} RENAME COLUMN ${renamed}`]);
    }
    const now = qualified(table.schema, newName);
    return exact([`ALTER ${keyword} ${now} RENAME TO ${quoteIdent(table.name)}`]);
  });
}
