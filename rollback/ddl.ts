import type {
  AlterTableStmt,
  CompositeTypeStmt,
  CreateEnumStmt,
  CreateSchemaStmt,
  CreateSeqStmt,
  CreateStmt,
  CreateTableAsStmt,
  DropStmt,
  IndexStmt,
  RangeVar,
  RenameStmt,
  SelectStmt,
  ViewStmt,
} from 'libpg-query';
import { nodeKind } from './ast.ts';
import { alterTable, rename } from './ddl-alter.ts';
import {
  exact,
  isTemporarySchema,
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
import type { CapturePlan, NoCapture } from './types.ts';

/*
 * The undo of the simple schema changes: what a CREATE made is dropped, a column ADD COLUMN
 * added is dropped, a RENAME is renamed back. The undo is plain SQL without parameters.
 *
 * What a statement created and where is read from the backend in the statement's own round
 * trip, never guessed: a relation is found by its name among those the transaction holds an
 * ACCESS EXCLUSIVE lock on (PostgreSQL takes one on every relation it creates), so a view made
 * temporary by what it reads, or an index PostgreSQL named, is dropped where it really is. A
 * relation of that name already there before (IF NOT EXISTS skipped, OR REPLACE replaced) is
 * told apart by reading the names first; ALTER or RENAME ... IF EXISTS that found nothing
 * locked nothing of that name. Schemas and columns take no such lock: IF NOT EXISTS that did
 * nothing is recognized by the SQLSTATE of the notice PostgreSQL sends then. A relation that
 * another session created between the reads and the statement (making IF NOT EXISTS skip) is
 * not locked by this transaction, so it is not taken for one this statement made.
 *
 * Queries that run after the statement must return the same rows on every backend (the proxy
 * compares them), so they return names, never OIDs.
 */

// NOTE: dropping what a CREATE made also drops rows written into it since, and DROP COLUMN the
// values written into the column since; the conflict check does not look at them. Roll back
// those later changes first (a rollback to a point does, newest first).

/**
 * Plans the capture of a schema change: queries to run around it, in its round trip, and how
 * to build its undo from what they return; or, for a change that is not undone, the reason.
 * The statement itself runs as written (`sql`).
 */
export function planDdl(stmt: { node: unknown; sql: string }): CapturePlan | NoCapture {
  const tree = stmt.node as Record<string, unknown>;
  const kind = nodeKind(tree) ?? 'this statement';
  try {
    const planned = planKind(kind, tree[kind]);
    return 'build' in planned ? { ...planned, statement: stmt.sql } : planned;
  } catch (error) {
    return irreversible(`the undo could not be planned: ${(error as Error).message}`);
  }
}

function planKind(kind: string, body: unknown): CapturePlan | NoCapture {
  switch (kind) {
    case 'CreateStmt':
      return createRelation('TABLE', (body as CreateStmt).relation);
    case 'CreateTableAsStmt': {
      const stmt = body as CreateTableAsStmt;
      const keyword = stmt.objtype === 'OBJECT_MATVIEW' ? 'MATERIALIZED VIEW' : 'TABLE';
      return createRelation(keyword, stmt.into?.rel);
    }
    case 'SelectStmt':
      return createRelation('TABLE', (body as SelectStmt).intoClause?.rel);
    case 'CreateSeqStmt':
      return createRelation('SEQUENCE', (body as CreateSeqStmt).sequence);
    case 'ViewStmt':
      return createRelation('VIEW', (body as ViewStmt).view);
    case 'CompositeTypeStmt':
      return createRelation('TYPE', (body as CompositeTypeStmt).typevar);
    case 'IndexStmt':
      return createIndex(body as IndexStmt);
    case 'CreateEnumStmt':
      return createEnum(body as CreateEnumStmt);
    case 'CreateSchemaStmt':
      return createSchema(body as CreateSchemaStmt);
    case 'AlterTableStmt':
      return alterTable(body as AlterTableStmt);
    case 'RenameStmt':
      return rename(body as RenameStmt);
    case 'DropStmt': {
      const type = (body as DropStmt).removeType ?? '';
      const what = RELATION_KEYWORDS[type] ?? words(type.replace(/^OBJECT_/, ''));
      return irreversible(
        `DROP ${what} is not undone: the definition and rows of what it drops are not captured`,
      );
    }
    case 'TruncateStmt':
      return irreversible('TRUNCATE is not undone: the rows it removes are not captured');
    default:
      return irreversible(`the proxy does not build an undo for ${words(kind)} yet`);
  }
}

/**
 * CREATE TABLE, CREATE TABLE AS, SELECT INTO, CREATE MATERIALIZED VIEW, CREATE SEQUENCE,
 * CREATE VIEW and CREATE TYPE ... AS (composite): all make one relation named in the statement.
 */
function createRelation(keyword: string, relation: RangeVar | undefined): CapturePlan | NoCapture {
  const name = relation?.relname;
  if (relation === undefined || name === undefined) {
    return irreversible('the statement names no relation');
  }
  if (relation.relpersistence === 't' || relation.schemaname === 'pg_temp') {
    return { reversibility: 'none', reason: TEMPORARY };
  }
  const where =
    `c.relname = ${literal(name)}` +
    (relation.schemaname ? ` AND n.nspname = ${literal(relation.schemaname)}` : '');
  const from = 'FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace';
  return plan(
    [`SELECT n.nspname::text ${from} WHERE ${where}`],
    [`SELECT n.nspname::text, c.relpersistence::text ${from} WHERE ${where} AND ${LOCKED_BY_US}`],
    ({ before, after }) => {
      const existed = new Set((before[0] ?? []).map((row) => text(row, 0)));
      const locked = after?.[0] ?? [];
      const made = locked.filter((row) => !existed.has(text(row, 0)));
      if (made.length === 0) {
        // Locked but there before: OR REPLACE replaced it (IF NOT EXISTS takes no lock).
        return locked.length > 0 && keyword === 'VIEW'
          ? failed(`it replaced view ${name}, whose former definition is not captured`)
          : nothing(`${name} already existed: nothing was created`);
      }
      if (made.length > 1) {
        return failed(`more than one new relation is named ${name}; which one it made is unclear`);
      }
      const schema = text(made[0], 0) ?? '';
      if (text(made[0], 1) === 't' || isTemporarySchema(schema)) return nothing(TEMPORARY);
      return exact([`DROP ${keyword} ${qualified(schema, name)}`]);
    },
  );
}

/** CREATE INDEX, named or named by PostgreSQL, in the schema of its table. */
function createIndex(stmt: IndexStmt): CapturePlan | NoCapture {
  const table = stmt.relation;
  if (table?.relname === undefined) return irreversible('the statement names no table');
  const from =
    'FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid ' +
    `JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indrelid = ${regclass(table)}`;
  return plan(
    [`SELECT c.relname::text ${from}`],
    [`SELECT n.nspname::text, c.relname::text, c.relpersistence::text ${from} AND ${LOCKED_BY_US}`],
    ({ before, after }) => {
      const existed = new Set((before[0] ?? []).map((row) => text(row, 0)));
      const made = (after?.[0] ?? []).filter((row) => !existed.has(text(row, 1)));
      if (made.length === 0) {
        return nothing(`index ${stmt.idxname ?? ''} already existed: nothing was created`);
      }
      if (made.length > 1) return failed('more than one new index appeared on the table');
      const [schema, name, persistence] = [0, 1, 2].map((i) => text(made[0], i) ?? '');
      if (persistence === 't') return nothing(TEMPORARY);
      return exact([`DROP INDEX ${qualified(schema as string, name as string)}`]);
    },
  );
}

/** The name and, when written, the schema of a type named as a list (`s.mood`, `mood`). */
function typeName(names: readonly unknown[] | undefined): { schema?: string; name: string } {
  const parts = (names ?? []).map((n) => (n as { String?: { sval?: string } }).String?.sval ?? '');
  const name = parts.at(-1) ?? '';
  return parts.length > 1 ? { schema: parts.at(-2) as string, name } : { name };
}

function createEnum(stmt: CreateEnumStmt): CapturePlan | NoCapture {
  const { schema, name } = typeName(stmt.typeName);
  // Read after the statement: making a type in pg_temp may have created the temporary schema.
  return plan(
    [],
    [`SELECT ${schema === undefined ? 'current_schema()' : literal(schema)}::text`],
    ({ after }) => {
      const where = text(after?.[0]?.[0], 0);
      if (where === null) return failed('the schema the type was created in is unknown');
      if (isTemporarySchema(where)) return nothing(TEMPORARY);
      return exact([`DROP TYPE ${qualified(where, name)}`]);
    },
  );
}

const ROLE_FUNCTIONS: Record<string, string> = {
  ROLESPEC_CURRENT_USER: 'current_user',
  ROLESPEC_CURRENT_ROLE: 'current_role',
  ROLESPEC_SESSION_USER: 'session_user',
};

function createSchema(stmt: CreateSchemaStmt): CapturePlan | NoCapture {
  if ((stmt.schemaElts?.length ?? 0) > 0) {
    return irreversible('CREATE SCHEMA with elements is not undone yet');
  }
  // Without a name the schema is named after its owner.
  const role = stmt.authrole;
  const named =
    stmt.schemaname ?? (role?.roletype === 'ROLESPEC_CSTRING' ? role.rolename : undefined);
  const owner = ROLE_FUNCTIONS[role?.roletype ?? ''];
  if (named === undefined && owner === undefined) {
    return irreversible('the name of the schema it creates is unknown');
  }
  return plan(named === undefined ? [`SELECT ${owner}::text`] : [], [], ({ before, notices }) => {
    const name = named ?? text(before[0]?.[0], 0);
    if (name === null) return failed('the name of the schema it created is unknown');
    if (notices?.includes(SKIPPED.duplicateSchema)) {
      return nothing(`schema ${name} already existed: nothing was created`);
    }
    return exact([`DROP SCHEMA ${quoteIdent(name)}`]);
  });
}
