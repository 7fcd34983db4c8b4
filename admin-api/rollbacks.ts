/** Larger undos: a whole client transaction, or a cluster back to a point in its history. */
import type { Identity } from '../src/auth/identity.ts';
import type { GroupRollbackResult, RollbackTarget } from '../src/cluster/executor.ts';
import { conflict, HttpError, toHttpError } from './errors.ts';
import { defineRoute, type Services } from './route.ts';
import {
  array,
  boolean,
  integer,
  nullable,
  object,
  optional,
  record,
  required,
  string,
} from './validate.ts';

const conflictSchema = object({
  table: required(string()),
  key: required(record(nullable(string()))),
  columns: required(array(string())),
  reason: required(string()),
});

const groupResult = object({
  query_ids: required(array(integer(), 'The rollback entries, one per entry undone.')),
  rolled_back: required(array(integer(), 'The entries undone, newest first.')),
  sql: required(string()),
  conflicts: required(array(conflictSchema)),
  executed: required(boolean()),
});

const options = {
  required: false,
  schema: object(
    {
      force: optional(boolean('Roll back even when rows changed since.')),
      dry_run: optional(boolean('Only show the SQL and the conflicts.')),
    },
    { strict: true },
  ),
};

async function rollbackMany(
  services: Services,
  identity: Identity,
  target: RollbackTarget,
  body: { force?: boolean; dry_run?: boolean },
): Promise<{ status: number; body: unknown }> {
  const { executor } = services;
  if (executor.rollbackMany === undefined) {
    throw new HttpError(501, 'this proxy does not roll back several changes at once');
  }
  const dryRun = body.dry_run === true;
  let result: GroupRollbackResult;
  try {
    result = await executor.rollbackMany(identity, target, { force: body.force === true, dryRun });
  } catch (error) {
    throw toHttpError(error, 'rollback failed');
  }
  const json = {
    query_ids: result.queryIds,
    rolled_back: result.rolledBack,
    sql: result.sql,
    conflicts: result.conflicts,
    executed: result.executed,
  };
  if (!dryRun && !result.executed) {
    const rows = result.conflicts.length;
    throw conflict(
      `not rolled back: ${rows} row${rows === 1 ? '' : 's'} changed since; force to roll back anyway`,
      json,
    );
  }
  return { status: 200, body: json };
}

const responses = {
  200: { description: 'Rolled back, or what a rollback would do.', schema: groupResult },
  404: { description: 'No such transaction, cluster or entry.' },
  409: {
    description:
      'An entry is irreversible, nothing is left to roll back, or rows changed since (unless forced).',
  },
};

export const rollbackRoutes = [
  defineRoute({
    method: 'POST',
    path: '/transactions/:id/rollback',
    operationId: 'rollbackTransaction',
    summary: 'Roll back every change of one client transaction, newest first',
    description:
      'Needs an admin token or the `rollback` permission on the cluster. One transaction on every backend; each entry undone gets its rollback entry, recorded in one commit.',
    tag: 'queries',
    access: 'token',
    params: object({ id: required(string({ description: 'The transaction id of the entries.' })) }),
    body: options,
    responses,
    async handle(context) {
      return rollbackMany(
        context,
        context.identity,
        { transaction: context.params.id },
        context.body,
      );
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/clusters/:name/rollback',
    operationId: 'rollbackCluster',
    summary: 'Roll a cluster back to a point: undo every later change, newest first',
    description:
      'Changes after `to_query_id` that are still in effect are undone; a change and its rollback that both came later cancel out.',
    tag: 'clusters',
    access: 'token',
    params: object({ name: required(string({ description: 'The cluster.' })) }),
    body: {
      required: true,
      schema: object(
        {
          to_query_id: required(integer({ description: 'The last entry to keep.' })),
          force: optional(boolean('Roll back even when rows changed since.')),
          dry_run: optional(boolean('Only show the SQL and the conflicts.')),
        },
        { strict: true },
      ),
    },
    responses,
    async handle(context) {
      const { params, body } = context;
      return rollbackMany(
        context,
        context.identity,
        { cluster: params.name, toQueryId: body.to_query_id },
        body,
      );
    },
  }),
];
