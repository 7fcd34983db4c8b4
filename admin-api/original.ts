/**
 * The original's four endpoints (`/status` is in status.ts), with its request and response
 * shapes, so that its clients keep working. Their bodies are not strict: keys the original
 * ignored are ignored here too.
 */
import { can, canConnect } from '../src/auth/identity.ts';
import { mintOriginalToken } from '../src/auth/tokens.ts';
import type { ExecuteResult } from '../src/cluster/executor.ts';
import { forbidden, toHttpError } from './errors.ts';
import { rollbackEntry } from './queries.ts';
import { defineRoute } from './route.ts';
import { issueToken } from './tokens.ts';
import {
  array,
  boolean,
  choice,
  integer,
  nullable,
  object,
  optional,
  record,
  required,
  string,
} from './validate.ts';

const ok = (description: string) =>
  object({
    message: required(choice(['OK'])),
    query_id: required(nullable(integer({ description }))),
  });

export const originalRoutes = [
  defineRoute({
    method: 'POST',
    path: '/generate_token',
    operationId: 'generateToken',
    summary: "Issue a token in the original's claim shape",
    description:
      'Permission names: `adm`, `read`, `write` (the original grants `write`, `ddl` and ' +
      '`rollback` with `write`), or the current names. The token does not expire.',
    tag: 'original',
    access: 'admin',
    body: {
      required: true,
      schema: object({
        user: required(string({ description: 'Who holds the token.' })),
        data: required(
          record(array(string()), 'Cluster name to permission names, e.g. {"db1": ["adm"]}.'),
        ),
        is_admin: required(boolean()),
      }),
    },
    responses: {
      200: { description: 'The signed token.', schema: object({ token: required(string()) }) },
    },
    async handle({ body, catalog, secret }) {
      const claims = { user: body.user, data: body.data, is_admin: body.is_admin };
      const { token } = await issueToken(catalog, body.user, claims, undefined, (options) =>
        mintOriginalToken(secret, claims, options),
      );
      return { status: 200, body: { token } };
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/execute_query',
    operationId: 'executeQuery',
    summary: 'Run SQL on every database of a cluster',
    description:
      'Each statement is authorized against the permissions the token holds on the cluster. ' +
      'Overriding the generated rollback needs the `rollback` permission there.',
    tag: 'original',
    access: 'token',
    body: {
      required: true,
      schema: object({
        query: required(string({ minLength: 1, description: 'One or more SQL statements.' })),
        group: required(string({ minLength: 1, description: 'The cluster name.' })),
        rollback: optional(string({ description: 'Replaces the generated rollback.' })),
      }),
    },
    responses: {
      200: { description: 'Executed and recorded.', schema: ok('The last audit entry written.') },
    },
    async handle({ body, identity, executor }) {
      if (!canConnect(identity, body.group)) {
        throw forbidden(`the token has no permission on cluster "${body.group}"`);
      }
      if (body.rollback !== undefined && !can(identity, body.group, 'rollback')) {
        throw forbidden(
          `overriding the rollback needs the rollback permission on cluster "${body.group}"`,
        );
      }
      let result: ExecuteResult;
      try {
        result = await executor.execute(
          identity,
          body.group,
          body.query,
          body.rollback === undefined ? {} : { rollbackOverride: body.rollback },
        );
      } catch (error) {
        throw toHttpError(error, 'query failed');
      }
      return { status: 200, body: { message: 'OK', query_id: result.queryIds.at(-1) ?? null } };
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/execute_rollback',
    operationId: 'executeRollback',
    summary: 'Run the rollback of an audited query',
    description:
      'Needs an admin token or the `rollback` permission on the cluster of the query. A ' +
      'rollback whose rows changed since is refused; `POST /queries/{id}/rollback` can force it.',
    tag: 'original',
    access: 'token',
    body: {
      required: true,
      schema: object({ query_id: required(integer({ minimum: 1 })) }),
    },
    responses: {
      200: {
        description: 'Rolled back; the rollback is itself recorded.',
        schema: ok('The rollback.'),
      },
      404: { description: 'No query has that id.' },
      409: { description: 'The query cannot be rolled back (the message says why).' },
    },
    async handle(context) {
      const result = await rollbackEntry(context, context.identity, context.body.query_id, {
        force: false,
        dryRun: false,
      });
      return { status: 200, body: { message: 'OK', query_id: result.queryId ?? null } };
    },
  }),
];
