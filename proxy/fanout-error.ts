import { SqlError } from '../src/errors.ts';
import type { BackendConnection } from './backend-connection.ts';
import type { Collected } from './results.ts';

/**
 * The error of a change sent to several backends, or undefined if none failed. When every
 * backend that answered failed alike (same SQLSTATE and message), the client gets PostgreSQL's
 * own error; when they disagree, the backends no longer hold the same data, so the error keeps
 * the SQLSTATE and says which backend failed, and how the others fared.
 */
export function fanoutError(
  backends: readonly BackendConnection[],
  replies: readonly Collected[],
): SqlError | undefined {
  const at = replies.findIndex((reply) => reply.error !== null);
  if (at < 0) return undefined;
  const error = replies[at]?.error as SqlError;
  const same = replies.every(
    (reply) => reply.error?.code === error.code && reply.error.message === error.message,
  );
  const name = backends[at]?.name ?? '?';
  if (same || error.message.includes(`backend ${name}`)) return error;
  const others = replies
    .map((reply, i) => ({ reply, name: backends[i]?.name ?? '?' }))
    .filter((_, i) => i !== at)
    .map(({ reply, name }) => `${name} ${reply.error === null ? 'succeeded' : 'failed too'}`);
  return new SqlError(error.code, `backend ${name}: ${error.message}`, {
    severity: error.severity,
    fields: error.fields,
    detail: [
      error.detail,
      `The change failed on ${name} only (${others.join(', ')}); the transaction fails on every backend.`,
    ]
      .filter((part) => part !== undefined)
      .join('\n'),
    hint: 'The backends of this cluster may differ; compare them (GET /clusters/<name>/consistency).',
    cause: error,
  });
}
