import { type ConflictRead, conflictReads } from '../rollback/conflicts.ts';
import { encodeUndo } from '../rollback/plan.ts';
import type { AuditEntry } from '../src/cluster/audit.ts';
import type { Conflict } from '../src/cluster/executor.ts';
import { SqlError, SqlState } from '../src/errors.ts';
import type { Consumer } from './backend-connection.ts';
import type { ClusterRuntime } from './cluster.ts';
import type { FrontendMessage } from './frontend.ts';
import * as fe from './frontend-encode.ts';
import { collect, collected } from './results.ts';
import type { Session } from './session.ts';
import { MessageWriter } from './writer.ts';

/**
 * Reads, on the first available backend of the session, every row the given changes (newest
 * first) left, in binary, and lists those that changed since. Read without locks, outside the
 * undo's transaction.
 */
// NOTE: a row changed between this check and the undo is not seen as a conflict; the check
// does not lock the rows it compares.
export async function findConflicts(
  session: Session,
  cluster: ClusterRuntime,
  entries: readonly AuditEntry[],
): Promise<Conflict[]> {
  const { reads, missing } = conflictReads(
    entries.map((entry) => entry.afterImage),
    (schema, name) => cluster.resolveTable(schema, name, []),
  );
  const backend = session.backends.find((b) => b.failure === undefined);
  if (backend === undefined) {
    throw new SqlError(
      SqlState.CONNECTION_FAILURE,
      `no backend of cluster "${cluster.name}" answers`,
    );
  }
  const conflicts = [...missing];
  if (reads.length === 0) return conflicts;
  // One round trip for every read: Parse, Bind, Execute each, then one Sync.
  const w = new MessageWriter(1024);
  const consumers: Consumer[] = [];
  backend.endExchange(w, consumers);
  for (const read of reads) {
    const { types, values } = encodeUndo(read.statement);
    fe.parse(w, '', read.statement.sql, types);
    fe.bind(w, '', '', [1], values, [1]);
    fe.describe(w, 'P', '');
    fe.execute(w, '', 0);
    backend.statements.set('', read.statement.sql);
  }
  fe.sync(w);
  const reply = collected();
  consumers.push(collect(reply));
  await backend.request(w.take(), ...consumers);
  if (reply.error !== null) throw reply.error;
  reads.forEach((read: ConflictRead, i) => {
    const result = reply.results[i];
    const fields = result?.fields ?? [];
    const rows = (result?.rows ?? []).map((row) =>
      row.map((value, c) => ({ oid: fields[c]?.typeOid ?? 0, value })),
    );
    conflicts.push(...read.compare(rows));
  });
  return conflicts;
}

/** Parse, Bind and Execute of every undo statement of the entries, in order, then one Sync. */
export function undoMessages(entries: readonly AuditEntry[]): FrontendMessage[] {
  const messages: FrontendMessage[] = [];
  for (const entry of entries) {
    for (const statement of entry.rollback?.statements ?? []) {
      const { types, values } = encodeUndo(statement);
      messages.push(
        { type: 'parse', name: '', sql: statement.sql, paramTypes: types },
        {
          type: 'bind',
          portal: '',
          statement: '',
          paramFormats: [1],
          params: values,
          resultFormats: [],
        },
        { type: 'execute', portal: '', maxRows: 0 },
      );
    }
  }
  messages.push({ type: 'sync' });
  return messages;
}

/** The undo of several entries as people read it: each under a comment naming its entry. */
export function undoDisplay(entries: readonly AuditEntry[]): string {
  if (entries.length === 1) return entries[0]?.rollback?.display ?? '';
  return entries
    .map((entry) => `-- undo of query ${entry.id}\n${entry.rollback?.display ?? ''}`)
    .join('\n');
}
