/** Per-cluster maintenance: whether the backends of a cluster still hold the same data. */
import { HttpError } from './errors.ts';
import { defineRoute } from './route.ts';
import {
  array,
  boolean,
  choice,
  integer,
  integerText,
  object,
  optional,
  record,
  required,
  string,
} from './validate.ts';

const keyDifference = object({
  key: required(record(string(), 'Key column to value, as text.')),
  missing_on: required(array(string(), 'Backends without the row.')),
  differs_on: required(array(string(), 'Backends whose row differs.')),
});

const tableDifference = object({
  table: required(string()),
  missing_on: optional(array(string(), 'Backends where the table does not exist.')),
  columns_differ_on: optional(array(string(), 'Backends whose columns differ.')),
  rows: optional(record(integer(), 'Rows on each backend.')),
  chunks: optional(object({ differing: required(integer()), total: required(integer()) })),
  keys: optional(array(keyDifference, 'Keys of differing rows, when few differ.')),
  keys_omitted: optional(boolean('More keys differ than were listed.')),
  note: optional(string()),
});

const report = object({
  cluster: required(string()),
  backends: required(array(string())),
  status: required(choice(['consistent', 'different', 'incomplete'])),
  tables: required(integer({ description: 'Tables compared.' })),
  differences: required(array(tableDifference)),
  unreachable: required(array(object({ backend: required(string()), error: required(string()) }))),
  duration_ms: required(integer()),
});

export const clusterRoutes = [
  defineRoute({
    method: 'GET',
    path: '/clusters/:name/consistency',
    operationId: 'checkConsistency',
    summary: 'Compare the backends of a cluster table by table',
    description:
      'Hashes every table in key order, in chunks of key ranges, on every backend, and reports the tables that differ; for small differences, the keys of the differing rows. Reads only; the catalog is not used.',
    tag: 'clusters',
    access: 'admin',
    params: object({ name: required(string({ description: 'The cluster.' })) }),
    query: object(
      {
        chunk_rows: optional(
          integerText({ minimum: 1, description: 'Rows per chunk; default 10000.' }),
        ),
        key_rows: optional(
          integerText({
            minimum: 0,
            description: 'Largest differing chunk whose keys are listed; default 1000.',
          }),
        ),
        max_keys: optional(
          integerText({ minimum: 0, description: 'Keys listed per table; default 100.' }),
        ),
      },
      { strict: true },
    ),
    responses: {
      200: {
        description: 'The comparison; `status` says whether the backends agree.',
        schema: report,
      },
      404: { description: 'No such cluster.' },
    },
    async handle({ params, query, executor }) {
      if (executor.consistency === undefined) {
        throw new HttpError(501, 'this proxy offers no consistency check');
      }
      const result = await executor.consistency(params.name, {
        ...(query.chunk_rows === undefined ? {} : { chunkRows: query.chunk_rows }),
        ...(query.key_rows === undefined ? {} : { keyRows: query.key_rows }),
        ...(query.max_keys === undefined ? {} : { maxKeys: query.max_keys }),
      });
      return {
        status: 200,
        body: {
          cluster: result.cluster,
          backends: result.backends,
          status: result.status,
          tables: result.tables,
          differences: result.differences.map((d) => ({
            table: d.table,
            ...(d.missingOn === undefined ? {} : { missing_on: d.missingOn }),
            ...(d.columnsDifferOn === undefined ? {} : { columns_differ_on: d.columnsDifferOn }),
            ...(d.rows === undefined ? {} : { rows: d.rows }),
            ...(d.chunks === undefined ? {} : { chunks: d.chunks }),
            ...(d.keys === undefined
              ? {}
              : {
                  keys: d.keys.map((k) => ({
                    key: k.key,
                    missing_on: k.missingOn,
                    differs_on: k.differsOn,
                  })),
                }),
            ...(d.keysOmitted === undefined ? {} : { keys_omitted: d.keysOmitted }),
            ...(d.note === undefined ? {} : { note: d.note }),
          })),
          unreachable: result.unreachable,
          duration_ms: result.durationMs,
        },
      };
    },
  }),
];
