import { planDdl } from '../rollback/ddl.ts';
import { isCaptured, isConcurrentChange, planCapture, writtenRelations } from '../rollback/plan.ts';
import type { CapturedRow, CapturePlan, NoCapture } from '../rollback/types.ts';
import type { AuditEntryInput } from '../src/cluster/audit.ts';
import { tableKey } from '../src/cluster/metadata.ts';
import { SqlError, SqlState } from '../src/errors.ts';
import { planDeterminism } from '../src/sql/determinism.ts';
import type { ParsedStatement } from '../src/sql/parse.ts';
import type { BackendConnection, Consumer } from './backend-connection.ts';
import { decodeFields, type FieldDescription, tagRowCount } from './backend-decode.ts';
import * as be from './backend-encode.ts';
import { BackendCode } from './codes.ts';
import { fanoutError } from './fanout-error.ts';
import * as fe from './frontend-encode.ts';
import {
  type Collected,
  collect,
  collected,
  emptyResult,
  type StatementResult,
} from './results.ts';
import type { Session } from './session.ts';
import { type Bound, isHiddenParameter } from './session-types.ts';
import type { Transaction } from './transaction.ts';
import { MessageWriter } from './writer.ts';

const CAPTURED_TYPES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt']);
/** Statements that change nothing a rollback could restore. */
const NOTHING_TO_UNDO = new Set(['NotifyStmt', 'LockStmt']);

function noCaptureFor(statement: ParsedStatement): NoCapture {
  if (NOTHING_TO_UNDO.has(statement.type)) {
    return {
      reversibility: 'none',
      reason: `${statement.type.replace(/Stmt$/, '')} changes no data`,
    };
  }
  return {
    reversibility: 'irreversible',
    reason: `the proxy does not build an undo for ${statement.type.replace(/Stmt$/, '')} yet`,
  };
}

/**
 * Runs a change on every backend of the cluster, in parallel, inside the session's transaction:
 * capture what its undo needs, compare what each backend answered, answer the client once,
 * and keep the audit entry for the commit.
 */
export async function write(
  session: Session,
  statement: ParsedStatement,
  bound: Bound | null,
  started: number,
): Promise<void> {
  const txn = session.txn as Transaction;
  const backends = session.requireAllBackends();
  const cluster = session.cluster;
  if (cluster.config.requireTwoPhase && !cluster.twoPhase) {
    throw new SqlError(
      SqlState.OBJECT_NOT_IN_PREREQUISITE_STATE,
      `cluster "${cluster.name}" requires two-phase commit, and a backend has max_prepared_transactions = 0`,
      {
        hint: 'Set max_prepared_transactions above 0 on every backend and restart them, or set require_two_phase: false.',
      },
    );
  }
  const original = statement;
  const deterministic = await makeDeterministic(session, statement, backends);
  statement = deterministic.statement;
  let plan: CapturePlan | null = null;
  let skipped: NoCapture | null = null;
  if (cluster.config.capture === false) {
    skipped = { reversibility: 'none', reason: 'capture is off for this cluster' };
  } else if (isCaptured(statement.node)) {
    const result = planCapture(
      { node: statement.node, sql: statement.sql },
      (schema, name) => cluster.resolveTable(schema, name, session.searchPath),
      {
        maxRows: cluster.config.maxCaptureRows,
        changedTables: txn.tables,
        inSavepoint: txn.savepoints.length > 0,
      },
    );
    if ('statement' in result) plan = result;
    else skipped = result;
  } else if (statement.classification.class === 'ddl') {
    const result = planDdl({ node: statement.node, sql: statement.sql });
    if ('statement' in result) plan = result;
    else skipped = result;
  } else {
    skipped = noCaptureFor(statement);
  }
  // An undo being run is not refused for having no undo of its own (DROP undoing a CREATE).
  const strict = cluster.config.requireRollback && session.auditAs === undefined;
  if (skipped?.reversibility === 'irreversible' && strict) {
    throw refusedIrreversible(cluster.name, skipped.reason);
  }

  // Parameter types and the client's own result columns, from a Describe cached per text.
  let paramTypes = bound?.paramTypes ?? [];
  let clientFields: FieldDescription[] | null = null;
  if (plan !== null && (plan.clientReturns || (bound !== null && plan.before.length > 0))) {
    const shape = await describe(session, statement.sql, paramTypes);
    paramTypes = shape.paramTypes;
    clientFields = shape.fields;
  }
  const sql = plan?.statement ?? statement.sql;
  const clientColumns = plan === null ? -1 : plan.clientReturns ? (clientFields?.length ?? 0) : 0;
  const resultFormats =
    plan === null
      ? (bound?.resultFormats ?? [])
      : [
          ...expandFormats(bound?.resultFormats ?? [], clientColumns),
          ...new Array<number>(plan.hiddenColumns).fill(1),
        ];

  const run = (backend: BackendConnection, index: number): Promise<Collected> => {
    const w = new MessageWriter(256 + sql.length);
    const consumers: Consumer[] = [];
    session.joinTransaction(backend, w, consumers);
    if (index > 0) {
      for (const sync of deterministic.sequenceSync) {
        fe.query(w, sync);
        consumers.push(collect(collected()));
      }
    }
    const reply = collected();
    if (plan === null && bound === null) {
      fe.query(w, sql);
    } else {
      const params = bound?.params ?? [];
      const paramFormats = bound?.paramFormats ?? [];
      for (const before of plan?.before ?? []) {
        fe.parse(w, '', before, paramTypes);
        fe.bind(w, '', '', paramFormats, params, [1]);
        fe.describe(w, 'P', '');
        fe.execute(w, '', 0);
      }
      fe.parse(w, '', sql, paramTypes);
      fe.bind(w, '', '', paramFormats, params, resultFormats);
      fe.describe(w, 'P', '');
      fe.execute(w, '', 0);
      for (const after of plan?.after ?? []) {
        fe.parse(w, '', after, []);
        fe.bind(w, '', '', [], [], [1]);
        fe.describe(w, 'P', '');
        fe.execute(w, '', 0);
      }
      fe.sync(w);
      backend.statements.set('', plan?.after?.at(-1) ?? sql);
    }
    consumers.push(collect(reply));
    return backend.request(w.take(), ...consumers).then(
      () => reply,
      (error: SqlError): Collected => ({ ...collected(), error }),
    );
  };
  // The first backend goes first: whoever gets a row lock there goes first everywhere, so
  // concurrent changes apply in the same order on every backend and cannot deadlock across them.
  const head = await run(backends[0] as BackendConnection, 0);
  const replies =
    head.error !== null
      ? [head]
      : [head, ...(await Promise.all(backends.slice(1).map((backend, i) => run(backend, i + 1))))];

  const failure = fanoutError(backends, replies);
  if (failure !== undefined) throw failure;
  const first = replies[0] as Collected;
  const beforeCount = plan?.before.length ?? 0;
  const main = first.results[beforeCount] ?? emptyResult();
  const afterCount = plan?.after?.length ?? 0;
  compareReplies(backends, replies, beforeCount, plan?.hiddenColumns ?? 0, afterCount);
  relayAsides(session, first);

  let capture: Pick<AuditEntryInput, 'rollback' | 'reversibility' | 'reason' | 'afterImage'>;
  if (plan !== null) {
    const outcome = plan.build({
      before: first.results.slice(0, beforeCount).map((result) => capturedRows(result, 0)),
      returned: capturedRows(main, (main.fields?.length ?? 0) - plan.hiddenColumns),
      after: first.results
        .slice(beforeCount + 1, beforeCount + 1 + afterCount)
        .map((result) => capturedRows(result, 0)),
      rowCount: main.tag === null ? null : tagRowCount(main.tag),
      notices: first.asides
        .filter((frame) => frame.code === BackendCode.NoticeResponse)
        .map((frame) => decodeFields(frame.body)['C'] ?? ''),
    });
    if (isConcurrentChange(outcome)) {
      // The rows changed between the capture's reads and the change: the undo would be wrong.
      throw new SqlError(
        SqlState.SERIALIZATION_FAILURE,
        'could not serialize access due to a concurrent change of the same rows',
        {
          ...(outcome.reason === null ? {} : { detail: outcome.reason }),
          hint: 'Retry the transaction.',
        },
      );
    }
    if (outcome.reversibility === 'irreversible' && strict) {
      throw refusedIrreversible(cluster.name, outcome.reason ?? 'no undo could be captured');
    }
    capture = outcome;
  } else {
    capture = {
      rollback: null,
      reversibility: skipped?.reversibility ?? 'none',
      reason: skipped?.reason ?? null,
      afterImage: null,
    };
  }

  answerClient(session, main, bound, clientColumns);
  txn.wrote = true;
  for (const target of targetTables(session, statement)) txn.tables.add(target);
  if (statement.classification.changesSchema) txn.changesSchema = true;
  txn.entries.push({
    cluster: cluster.name,
    user: session.user,
    session: session.id,
    transaction: txn.id,
    kind: statement.classification.class,
    sql: original.sql,
    params: paramsText(bound),
    outcome: 'committed',
    error: null,
    durationMs: performance.now() - started,
    rowCount: main.tag === null ? null : tagRowCount(main.tag),
    commandTag: main.tag,
    rollbackOf: null,
    ...capture,
  });
}

/**
 * Evaluates the clock, random values and sequences of a change once, on the first backend and
 * inside the transaction, and rewrites the statement with the values; other backends' sequences
 * are moved up to the values used. Refuses what cannot be made identical.
 */
async function makeDeterministic(
  session: Session,
  statement: ParsedStatement,
  backends: readonly BackendConnection[],
): Promise<{ statement: ParsedStatement; sequenceSync: string[] }> {
  const unchanged = { statement, sequenceSync: [] };
  if (!CAPTURED_TYPES.has(statement.type) && statement.type !== 'MergeStmt') return unchanged;
  const body = statement.node[statement.type] as {
    relation?: { schemaname?: string; relname?: string };
  };
  const relation = body.relation;
  const table =
    relation?.relname === undefined
      ? undefined
      : session.cluster.resolveTable(relation.schemaname, relation.relname, session.searchPath);
  const result = planDeterminism(statement.node, table);
  if (result === null) return unchanged;
  if ('refusal' in result) {
    throw new SqlError(
      SqlState.FEATURE_NOT_SUPPORTED,
      `the proxy cannot make this change identical on every backend: ${result.refusal}`,
      { hint: 'Compute the value in the application and pass it as a literal or parameter.' },
    );
  }
  const first = backends[0] as BackendConnection;
  const w = new MessageWriter(128 + result.plan.evaluate.length);
  const consumers: Consumer[] = [];
  session.joinTransaction(first, w, consumers);
  fe.query(w, result.plan.evaluate);
  const reply = collected();
  consumers.push(collect(reply));
  await first.request(w.take(), ...consumers);
  if (reply.error !== null) throw reply.error;
  const rows = (reply.results[0]?.rows ?? []).map((row): [number, string | null, string] => [
    Number(row[0]?.toString()),
    row[1] === null || row[1] === undefined ? null : row[1].toString(),
    row[2]?.toString() ?? 'text',
  ]);
  const applied = result.plan.apply(rows);
  return {
    statement: { ...statement, node: applied.node, sql: applied.sql },
    sequenceSync: applied.sequenceSync,
  };
}

/** `schema.table` of each known table an INSERT, UPDATE, DELETE or MERGE (or its WITH) writes. */
function targetTables(session: Session, statement: ParsedStatement): string[] {
  const keys: string[] = [];
  for (const relation of writtenRelations(statement.node)) {
    if (relation.relname === undefined) continue;
    const table = session.cluster.resolveTable(
      relation.schemaname,
      relation.relname,
      session.searchPath,
    );
    if (table !== undefined) keys.push(tableKey(table.schema, table.name));
  }
  return keys;
}

function refusedIrreversible(cluster: string, reason: string): SqlError {
  return new SqlError(
    SqlState.FEATURE_NOT_SUPPORTED,
    `cluster "${cluster}" requires every change to be reversible, and this one is not: ${reason}`,
    {
      hint: 'Rewrite the statement so the proxy can capture its undo, or set require_rollback: false.',
    },
  );
}

/** Result format codes for `count` columns from Bind's list (none: text; one: for all). */
export function expandFormats(formats: readonly number[], count: number): number[] {
  if (count <= 0) return [];
  if (formats.length === 0) return new Array<number>(count).fill(0);
  if (formats.length === 1) return new Array<number>(count).fill(formats[0] as number);
  return formats.slice(0, count);
}

function capturedRows(result: StatementResult | undefined, from: number): CapturedRow[] {
  if (result === undefined) return [];
  const fields = result.fields ?? [];
  return result.rows.map((row) =>
    row.slice(from).map((value, i) => ({ oid: fields[from + i]?.typeOid ?? 0, value })),
  );
}

/**
 * Every backend must have done the same: same command tags, same captured keys. Otherwise the
 * change would leave them different, so it is refused (and rolled back by the caller).
 */
function compareReplies(
  backends: readonly BackendConnection[],
  replies: readonly Collected[],
  beforeCount: number,
  hidden: number,
  afterCount: number,
): void {
  const reference = replies[0] as Collected;
  for (let i = 1; i < replies.length; i++) {
    const other = replies[i] as Collected;
    // The reads of a capture (`before`) may see a concurrent change at a different moment on
    // each backend; what must agree is what the change itself did.
    const a = reference.results
      .slice(beforeCount)
      .map((r) => r.tag)
      .join(', ');
    const b = other.results
      .slice(beforeCount)
      .map((r) => r.tag)
      .join(', ');
    let difference: string | undefined;
    if (a !== b) difference = `answered "${b}" where ${backends[0]?.name} answered "${a}"`;
    const mainA = reference.results[beforeCount];
    const mainB = other.results[beforeCount];
    // Captured keys must agree; a change without capture that returns rows (SELECT nextval(...))
    // must return the same rows.
    const compared = hidden > 0 ? hidden : (mainA?.fields?.length ?? 0);
    if (difference === undefined && compared > 0 && mainA !== undefined && mainB !== undefined) {
      const keys = (r: StatementResult) =>
        r.rows.map((row) =>
          row
            .slice(row.length - compared)
            .map((v) => v?.toString('hex') ?? 'null')
            .join('|'),
        );
      // Backends may return the rows of a multi-row change in different physical orders.
      const ka = keys(mainA).sort();
      const kb = keys(mainB).sort();
      const at = ka.findIndex((key, index) => key !== kb[index]);
      if (at >= 0 || ka.length !== kb.length) {
        difference = `returned different keys or values for row ${at + 1} than ${backends[0]?.name}`;
      }
    }
    // Rows read back after the statement are captured values too.
    for (let j = beforeCount + 1; difference === undefined && j <= beforeCount + afterCount; j++) {
      const rows = (r: Collected) =>
        (r.results[j]?.rows ?? [])
          .map((row) => row.map((v) => v?.toString('hex') ?? 'null').join('|'))
          .sort()
          .join('\n');
      if (rows(reference) !== rows(other)) {
        difference = `read back different rows after the change than ${backends[0]?.name}`;
      }
    }
    if (difference !== undefined) {
      throw new SqlError(
        SqlState.DATA_CORRUPTED,
        `backends diverged: ${backends[i]?.name} ${difference}; the change was not applied on any backend`,
        {
          hint: 'A function or default may have given each backend a different value, or the backends already held different data: compare them with GET /clusters/<name>/consistency.',
        },
      );
    }
  }
}

/**
 * Notices and reported parameter changes from the first backend reach the client: notices
 * before the statement's answer, ParameterStatus after it, where PostgreSQL sends them.
 */
function relayAsides(
  session: Session,
  reply: Collected,
  which: 'notices' | 'status' | 'all' = 'all',
): void {
  for (const frame of reply.asides) {
    const status = frame.code === BackendCode.ParameterStatus;
    if (status && isHiddenParameter(frame.body)) continue;
    if ((which === 'notices' && status) || (which === 'status' && !status)) continue;
    session.flushOut();
    session.channel.write(frame.raw);
  }
}

/** The client sees one database: the first backend's answer, without the hidden columns. */
function answerClient(
  session: Session,
  main: StatementResult,
  bound: Bound | null,
  clientColumns: number,
): void {
  const w = session.out;
  const columns = clientColumns < 0 ? (main.fields?.length ?? 0) : clientColumns;
  const returnsRows = main.fields !== null && columns > 0;
  if (returnsRows && (bound === null || bound.describeRows)) {
    be.rowDescription(w, (main.fields ?? []).slice(0, columns));
  }
  if (returnsRows) {
    for (const row of main.rows)
      be.dataRow(w, row.length === columns ? row : row.slice(0, columns));
  }
  if (main.tag !== null) be.commandComplete(w, main.tag);
  else w.bytes(be.emptyQueryResponse);
}

export function paramsText(bound: Bound | null): (string | null)[] | null {
  if (bound === null) return null;
  return bound.params.map((value, i) => {
    if (value === null) return null;
    const format = bound.paramFormats.length === 1 ? bound.paramFormats[0] : bound.paramFormats[i];
    return format === 1 ? `\\x${value.toString('hex')}` : value.toString('utf8');
  });
}

/** Describes a statement on a backend (parameter types, result columns), cached per cluster. */
export async function describe(
  session: Session,
  sql: string,
  types: readonly number[],
): Promise<{ paramTypes: number[]; fields: FieldDescription[] | null }> {
  const cached = session.cluster.shape(sql, types);
  if (cached !== undefined) return cached;
  const backend = session.readBackend();
  const w = new MessageWriter(64 + sql.length);
  const consumers: Consumer[] = [];
  backend.endExchange(w, consumers);
  fe.parse(w, '', sql, types);
  fe.describe(w, 'S', '');
  fe.sync(w);
  backend.statements.set('', sql);
  const reply = collected();
  consumers.push(collect(reply));
  await backend.request(w.take(), ...consumers);
  if (reply.error !== null) throw reply.error;
  const result = reply.results[0];
  const shape = { paramTypes: result?.paramTypes ?? [...types], fields: result?.fields ?? null };
  session.cluster.rememberShape(sql, types, shape);
  return shape;
}

/** Runs a session statement (SET, RESET, LISTEN...) on every reachable backend, alike. */
export async function runEverywhere(
  session: Session,
  statement: ParsedStatement,
  bound: Bound | null,
): Promise<void> {
  const backends = session.backends.filter((b) => b.failure === undefined);
  const replies = await Promise.all(
    backends.map((backend) => {
      const w = new MessageWriter(64 + statement.sql.length);
      const consumers: Consumer[] = [];
      if (session.txn?.explicit) session.joinTransaction(backend, w, consumers);
      if (bound === null) fe.query(w, statement.sql);
      else {
        fe.parse(w, '', statement.sql, bound.paramTypes);
        fe.bind(w, '', '', bound.paramFormats, bound.params, bound.resultFormats);
        fe.describe(w, 'P', '');
        fe.execute(w, '', 0);
        fe.sync(w);
        backend.statements.set('', statement.sql);
      }
      const reply = collected();
      consumers.push(collect(reply));
      return backend.request(w.take(), ...consumers).then(
        () => reply,
        (error: SqlError): Collected => ({ ...collected(), error }),
      );
    }),
  );
  const failed = replies.find((reply) => reply.error !== null);
  if (failed?.error) throw failed.error;
  const first = replies[0];
  if (first === undefined)
    throw new SqlError(
      SqlState.CONNECTION_FAILURE,
      `no backend of cluster "${session.cluster.name}" is available`,
    );
  relayAsides(session, first, 'notices');
  answerClient(session, first.results.at(-1) ?? emptyResult(), bound, -1);
  relayAsides(session, first, 'status');
}

/** SAVEPOINT, RELEASE and ROLLBACK TO run on every backend, which all join the transaction first. */
export async function savepoint(
  session: Session,
  txn: Transaction,
  statement: ParsedStatement,
): Promise<void> {
  const backends = session.requireAllBackends();
  const replies = await Promise.all(
    backends.map((backend) => {
      const w = new MessageWriter(64 + statement.sql.length);
      const consumers: Consumer[] = [];
      session.joinTransaction(backend, w, consumers);
      fe.query(w, statement.sql);
      const reply = collected();
      consumers.push(collect(reply));
      return backend.request(w.take(), ...consumers).then(() => reply);
    }),
  );
  const failed = replies.find((reply) => reply.error !== null);
  if (failed?.error) throw failed.error;
  const body = (statement.node['TransactionStmt'] ?? {}) as { savepoint_name?: string };
  const name = body.savepoint_name ?? '';
  const action = statement.classification.transaction;
  const at = txn.savepoints.map((s) => s.name).lastIndexOf(name);
  if (action === 'savepoint')
    txn.savepoints.push({ name, entries: txn.entries.length, notifies: txn.notifies.length });
  else if (at >= 0) {
    const mark = txn.savepoints[at] as { name: string; entries: number; notifies: number };
    if (action === 'rollback_to') {
      txn.entries.splice(mark.entries);
      txn.notifies.splice(mark.notifies);
      txn.savepoints.splice(at + 1);
      txn.failed = false;
    } else {
      txn.savepoints.splice(at);
    }
  }
  const tag = replies[0]?.results.at(-1)?.tag;
  be.commandComplete(session.out, tag ?? 'SAVEPOINT');
}
