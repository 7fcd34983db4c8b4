import type { CopyStmt } from 'libpg-query';
import { type CopyCapture, planCopy } from '../rollback/copy.ts';
import type { NoCapture } from '../rollback/types.ts';
import type { AuditEntryInput } from '../src/cluster/audit.ts';
import { tableKey } from '../src/cluster/metadata.ts';
import { SqlError, SqlState } from '../src/errors.ts';
import type { ParsedStatement } from '../src/sql/parse.ts';
import type { BackendConnection, Consumer } from './backend-connection.ts';
import { tagRowCount } from './backend-decode.ts';
import * as be from './backend-encode.ts';
import { BackendCode, FrontendCode } from './codes.ts';
import type { Frame } from './framing.ts';
import * as fe from './frontend-encode.ts';
import { type Collected, collect, collected } from './results.ts';
import type { Session } from './session.ts';
import type { Transaction } from './transaction.ts';
import { MessageWriter } from './writer.ts';

/** Where the client's CopyData, CopyDone and CopyFail go while a COPY FROM STDIN runs. */
export interface CopySink {
  data(frame: Frame): void;
  done(frame: Frame): void;
  fail(frame?: Frame): void;
}

/**
 * COPY ... FROM STDIN on every backend: each backend enters copy-in mode, the client's data is
 * forwarded to all of them as it arrives, and the copied rows are read back (by the transaction
 * id in their xmin) so that the undo can delete them.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-COPY
 */
export async function copyIn(
  session: Session,
  statement: ParsedStatement,
  started: number,
): Promise<void> {
  if (!session.interactive) {
    throw new SqlError(
      SqlState.FEATURE_NOT_SUPPORTED,
      'COPY FROM STDIN needs a client connection to send the data; connect with psql or a driver',
    );
  }
  const txn = session.txn as Transaction;
  const backends = session.requireAllBackends();
  const cluster = session.cluster;
  const stmt = statement.node['CopyStmt'] as CopyStmt;
  const target = stmt.relation;
  const resolved =
    target?.relname === undefined
      ? undefined
      : cluster.resolveTable(target.schemaname, target.relname, session.searchPath);
  let plan: CopyCapture | NoCapture;
  if (txn.savepoints.length > 0) {
    plan = {
      reversibility: 'irreversible',
      reason:
        "COPY inside a savepoint is not captured: its rows carry the savepoint's own transaction id",
    };
  } else if (resolved !== undefined && txn.tables.has(tableKey(resolved.schema, resolved.name))) {
    plan = {
      reversibility: 'irreversible',
      reason:
        'COPY into a table this transaction already changed is not captured: its rows cannot be told apart',
    };
  } else {
    plan = planCopy(
      stmt,
      (schema, name) => cluster.resolveTable(schema, name, session.searchPath),
      {
        maxRows: cluster.config.maxCaptureRows,
      },
    );
  }
  if ('reason' in plan && plan.reversibility === 'irreversible' && cluster.config.requireRollback) {
    throw new SqlError(
      SqlState.FEATURE_NOT_SUPPORTED,
      `cluster "${cluster.name}" requires every change to be reversible, and this one is not: ${plan.reason}`,
    );
  }

  // Every backend enters copy-in mode (or fails).
  const starts = await Promise.all(
    backends.map((backend) => {
      const w = new MessageWriter(64 + statement.sql.length);
      const consumers: Consumer[] = [];
      session.joinTransaction(backend, w, consumers);
      fe.query(w, statement.sql);
      const reply = collected();
      let response: Frame | undefined;
      const untilCopyIn = collect(reply);
      consumers.push((frame) => {
        if (frame.code === BackendCode.CopyInResponse) {
          response = frame;
          return true;
        }
        return untilCopyIn(frame);
      });
      return backend.request(w.take(), ...consumers).then(
        () => ({ reply, response }),
        (error: SqlError) => ({ reply: { ...collected(), error } as Collected, response }),
      );
    }),
  );
  // From copy-in mode on, a backend may answer at any time (an error on a bad row): each gets a
  // consumer for the rest of its reply now, not only once the data has been sent.
  const ends = backends.map((backend, i) =>
    starts[i]?.response === undefined ? undefined : awaitEnd(backend),
  );
  const failed = starts.find((start) => start.reply.error !== null);
  if (failed !== undefined) {
    await Promise.all(backends.map((backend, i) => finishCopy(backend, 'fail', ends[i])));
    throw failed.reply.error;
  }
  session.flushOut();
  session.channel.write((starts[0] as { response: Frame }).response.raw);
  session.channel.uncork();

  // The client's data goes to every backend as it comes; the session waits for its end.
  const ended = new Promise<'done' | 'fail'>((resolve) => {
    session.copySink = {
      data: (frame) => {
        for (const backend of backends) backend.forward(frame.raw);
      },
      done: () => resolve('done'),
      fail: () => resolve('fail'),
    };
  });
  const how = await ended;
  session.copySink = undefined;
  session.channel.cork();
  const replies = await Promise.all(
    backends.map((backend, i) => finishCopy(backend, how, ends[i])),
  );
  if (how === 'fail') {
    throw replies[0]?.error ?? new SqlError(SqlState.QUERY_CANCELED, 'COPY from stdin failed');
  }
  const error = replies.find((reply) => reply.error !== null)?.error;
  if (error) throw error;
  const tags = replies.map((reply) => reply.results.at(-1)?.tag ?? '');
  if (tags.some((tag) => tag !== tags[0])) {
    throw new SqlError(
      SqlState.DATA_CORRUPTED,
      `backends diverged: COPY answered ${tags.map((t, i) => `"${t}" on ${backends[i]?.name}`).join(', ')}; the change was not applied on any backend`,
    );
  }
  const tag = tags[0] ?? 'COPY 0';

  let capture: Pick<AuditEntryInput, 'rollback' | 'reversibility' | 'reason' | 'afterImage'>;
  if ('after' in plan) {
    const rows = await readBack(backends, plan.after);
    capture = plan.build(rows);
  } else {
    capture = {
      rollback: null,
      reversibility: plan.reversibility,
      reason: plan.reason,
      afterImage: null,
    };
  }
  if (resolved !== undefined) txn.tables.add(tableKey(resolved.schema, resolved.name));
  be.commandComplete(session.out, tag);
  txn.wrote = true;
  txn.entries.push({
    cluster: cluster.name,
    user: session.user,
    session: session.id,
    transaction: txn.id,
    kind: 'write',
    sql: statement.sql,
    params: null,
    outcome: 'committed',
    error: null,
    durationMs: performance.now() - started,
    rowCount: tagRowCount(tag),
    commandTag: tag,
    rollbackOf: null,
    ...capture,
  });
}

/** Collects what a backend answers from copy-in mode on, up to its ReadyForQuery. */
function awaitEnd(backend: BackendConnection): Promise<Collected> {
  const reply = collected();
  return backend.request(Buffer.alloc(0), collect(reply)).then(
    () => reply,
    (error: SqlError) => ({ ...reply, error }),
  );
}

/** Ends copy-in mode on a backend with CopyDone or CopyFail and waits for its answer. */
async function finishCopy(
  backend: BackendConnection,
  how: 'done' | 'fail',
  end: Promise<Collected> | undefined,
): Promise<Collected> {
  if (end === undefined) return collected();
  const w = new MessageWriter(64);
  if (how === 'done') w.begin(FrontendCode.CopyDone).end();
  else
    w.begin(FrontendCode.CopyFail)
      .cstring('COPY from stdin failed: the client sent CopyFail')
      .end();
  backend.forward(w.take());
  return end;
}

/** Reads the copied rows back on every backend; they must agree, key for key. */
async function readBack(backends: readonly BackendConnection[], sql: string) {
  const replies = await Promise.all(
    backends.map(async (backend) => {
      const w = new MessageWriter(64 + sql.length);
      fe.parse(w, '', sql, []);
      fe.bind(w, '', '', [], [], [1]);
      fe.describe(w, 'P', '');
      fe.execute(w, '', 0);
      fe.sync(w);
      backend.statements.set('', sql);
      const reply = collected();
      await backend.request(w.take(), collect(reply));
      return reply;
    }),
  );
  const error = replies.find((reply) => reply.error !== null)?.error;
  if (error) throw error;
  const first = replies[0]?.results[0];
  const fields = first?.fields ?? [];
  const fingerprint = (reply: Collected) =>
    (reply.results[0]?.rows ?? [])
      .map((row) => row.map((value) => value?.toString('hex') ?? '-').join(','))
      .sort()
      .join('\n');
  const reference = replies[0] === undefined ? '' : fingerprint(replies[0]);
  replies.forEach((reply, i) => {
    if (fingerprint(reply) !== reference) {
      throw new SqlError(
        SqlState.DATA_CORRUPTED,
        `backends diverged: the rows COPY wrote on ${backends[i]?.name} differ from ${backends[0]?.name}'s; the change was not applied on any backend`,
      );
    }
  });
  return (first?.rows ?? []).map((row) =>
    row.map((value, i) => ({ oid: fields[i]?.typeOid ?? 0, value })),
  );
}
