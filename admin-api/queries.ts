/** Audit entries: search, show one with its rollback, and roll one back. */
import { can, type Identity } from '../src/auth/identity.ts';
import type { AuditEntry } from '../src/cluster/audit.ts';
import type { RollbackResult } from '../src/cluster/executor.ts';
import { conflict, forbidden, notFound, toHttpError } from './errors.ts';
import { defineRoute, type Services } from './route.ts';
import {
  anyValue,
  array,
  boolean,
  choice,
  integer,
  integerText,
  nullable,
  number,
  object,
  optional,
  record,
  required,
  type Schema,
  string,
} from './validate.ts';

const KINDS = ['read', 'write', 'ddl', 'transaction', 'session', 'other', 'rollback'] as const;
const REVERSIBILITY = ['exact', 'partial', 'irreversible', 'none'] as const;
const OUTCOMES = ['committed', 'failed', 'refused', 'executed', 'rolled_back'] as const;

const undoValue = object({
  oid: required(integer()),
  type: required(string()),
  binary: required(nullable(string({ description: 'Base64 of the binary value.' }))),
  text: optional(string({ description: 'A literal for people, when the type can be shown.' })),
});

const undoStatement = object({ sql: required(string()), params: required(array(undoValue)) });

const entryFields = {
  id: required(integer()),
  at: required(string({ format: 'date-time' })),
  cluster: required(string()),
  user: required(string()),
  session: required(string()),
  transaction: required(nullable(string())),
  kind: required(choice(KINDS)),
  sql: required(string()),
  params: required(nullable(array(nullable(string())))),
  outcome: required(choice(OUTCOMES)),
  error: required(nullable(string())),
  duration_ms: required(number()),
  row_count: required(nullable(integer())),
  command_tag: required(nullable(string())),
  reversibility: required(choice(REVERSIBILITY)),
  reason: required(nullable(string({ description: 'Why the rollback is partial or absent.' }))),
  rollback_of: required(nullable(integer({ description: 'The entry this one undid.' }))),
  rolled_back_by: required(nullable(integer({ description: 'The entry that undid this one.' }))),
};

const entrySummary = object({
  ...entryFields,
  rollback: required(nullable(object({ display: required(string()) }))),
});

const entryDetail = object({
  ...entryFields,
  rollback: required(
    nullable(
      object({
        display: required(string({ description: 'The undo with its values as literals.' })),
        statements: required(array(undoStatement, 'What runs, in order, on every backend.')),
      }),
    ),
  ),
  after_image: required(anyValue('The rows as the change left them, for the conflict check.')),
});

const conflictSchema = object({
  table: required(string()),
  key: required(record(nullable(string()))),
  columns: required(array(string())),
  reason: required(string()),
});

const rollbackResult = object({
  query_id: required(nullable(integer({ description: 'The rollback entry; null on a dry run.' }))),
  rollback_of: required(integer()),
  sql: required(string()),
  conflicts: required(array(conflictSchema)),
  executed: required(boolean()),
});

function entryJson(entry: AuditEntry, detail: boolean): Record<string, unknown> {
  const { rollback } = entry;
  return {
    id: entry.id,
    at: entry.at.toISOString(),
    cluster: entry.cluster,
    user: entry.user,
    session: entry.session,
    transaction: entry.transaction,
    kind: entry.kind,
    sql: entry.sql,
    params: entry.params,
    outcome: entry.outcome,
    error: entry.error,
    duration_ms: entry.durationMs,
    row_count: entry.rowCount,
    command_tag: entry.commandTag,
    reversibility: entry.reversibility,
    reason: entry.reason,
    rollback_of: entry.rollbackOf,
    rolled_back_by: entry.rolledBackBy,
    rollback:
      rollback === null
        ? null
        : detail
          ? { display: rollback.display, statements: rollback.statements }
          : { display: rollback.display },
    ...(detail ? { after_image: entry.afterImage ?? null } : {}),
  };
}

/**
 * Rolls back one audited entry, for this route and the original's `/execute_rollback`. What the
 * catalog already tells (absent, already undone, irreversible, no rollback) is refused here with
 * a message that says which; the executor then checks conflicts and runs the undo.
 */
export async function rollbackEntry(
  services: Services,
  identity: Identity,
  id: number,
  options: { force: boolean; dryRun: boolean },
): Promise<RollbackResult> {
  const entry = await services.catalog.getEntry(id);
  if (entry === undefined) throw notFound(`query ${id} does not exist`);
  if (!can(identity, entry.cluster, 'rollback')) {
    throw forbidden(
      `rolling back query ${id} needs the rollback permission on cluster "${entry.cluster}"`,
    );
  }
  const because = entry.reason === null ? '' : `: ${entry.reason}`;
  if (entry.rolledBackBy !== null) {
    throw conflict(`query ${id} was already rolled back by query ${entry.rolledBackBy}`, {
      rolled_back_by: entry.rolledBackBy,
    });
  }
  if (entry.reversibility === 'irreversible') {
    throw conflict(`query ${id} is irreversible${because}`);
  }
  if (entry.rollback === null) {
    throw conflict(`query ${id} has no rollback${because}`);
  }
  let result: RollbackResult;
  try {
    result = await services.executor.rollback(identity, id, options);
  } catch (error) {
    throw toHttpError(error, 'rollback failed');
  }
  if (!options.dryRun && !result.executed) {
    const rows = result.conflicts.length;
    throw conflict(
      rows === 0
        ? `query ${id} was not rolled back`
        : `query ${id} was not rolled back: ${rows} row${rows === 1 ? '' : 's'} changed since; force to roll back anyway`,
      { sql: result.sql, conflicts: result.conflicts, executed: false },
    );
  }
  return result;
}

export const idParam: Schema<{ id: number }> = object({
  id: required(integerText({ minimum: 1, description: 'The audit entry id.' })),
});

export const queryRoutes = [
  defineRoute({
    method: 'GET',
    path: '/queries',
    operationId: 'listQueries',
    summary: 'Search the audit entries, newest first',
    tag: 'queries',
    access: 'admin',
    query: object(
      {
        cluster: optional(string()),
        user: optional(string()),
        transaction: optional(string()),
        kind: optional(choice(KINDS)),
        after_id: optional(integerText({ minimum: 0, description: 'Only entries after it.' })),
        limit: optional(integerText({ minimum: 1, maximum: 1000, description: 'Default 100.' })),
      },
      { strict: true },
    ),
    responses: {
      200: {
        description: 'The matching entries.',
        schema: object({ queries: required(array(entrySummary)) }),
      },
    },
    async handle({ query, catalog }) {
      const entries = await catalog.listEntries({
        ...(query.cluster === undefined ? {} : { cluster: query.cluster }),
        ...(query.user === undefined ? {} : { user: query.user }),
        ...(query.transaction === undefined ? {} : { transaction: query.transaction }),
        ...(query.kind === undefined ? {} : { kind: query.kind }),
        ...(query.after_id === undefined ? {} : { afterId: query.after_id }),
        ...(query.limit === undefined ? {} : { limit: query.limit }),
      });
      return { status: 200, body: { queries: entries.map((entry) => entryJson(entry, false)) } };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/queries/:id',
    operationId: 'getQuery',
    summary: 'One audit entry with its rollback and reversibility',
    tag: 'queries',
    access: 'admin',
    params: idParam,
    responses: {
      200: { description: 'The entry.', schema: entryDetail },
      404: { description: 'No entry has that id.' },
    },
    async handle({ params, catalog }) {
      const entry = await catalog.getEntry(params.id);
      if (entry === undefined) throw notFound(`query ${params.id} does not exist`);
      return { status: 200, body: entryJson(entry, true) };
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/queries/:id/rollback',
    operationId: 'rollbackQuery',
    summary: 'Roll back one audited change, or show what that would run',
    description:
      'Needs an admin token or the `rollback` permission on the cluster of the entry. Rows ' +
      'changed since the entry ran are conflicts: the rollback is refused unless forced.',
    tag: 'queries',
    access: 'token',
    params: idParam,
    body: {
      required: false,
      schema: object(
        {
          force: optional(boolean('Roll back even when rows changed since.')),
          dry_run: optional(boolean('Only show the SQL and the conflicts.')),
        },
        { strict: true },
      ),
    },
    responses: {
      200: { description: 'Rolled back, or what a rollback would do.', schema: rollbackResult },
      404: { description: 'No entry has that id.' },
      409: {
        description:
          'The entry has no rollback, is irreversible, was already rolled back, or rows changed since.',
      },
    },
    async handle(context) {
      const { params, body, identity } = context;
      const result = await rollbackEntry(context, identity, params.id, {
        force: body.force === true,
        dryRun: body.dry_run === true,
      });
      return {
        status: 200,
        body: {
          query_id: result.queryId ?? null,
          rollback_of: params.id,
          sql: result.sql,
          conflicts: result.conflicts,
          executed: result.executed,
        },
      };
    },
  }),
];
