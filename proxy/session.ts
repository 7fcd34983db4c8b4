import type { Catalog } from '../catalog/types.ts';
import { can, type Identity } from '../src/auth/identity.ts';
import type { AuditEntryInput, Outcome } from '../src/cluster/audit.ts';
import { SqlError, SqlState } from '../src/errors.ts';
import type { Logger } from '../src/log.ts';
import type { StatementClass } from '../src/sql/classify.ts';
import { deparseNode } from '../src/sql/deparse.ts';
import { type ParsedStatement, parseSql } from '../src/sql/parse.ts';
import type { BackendConnection, Consumer } from './backend-connection.ts';
import { tagRowCount } from './backend-decode.ts';
import * as be from './backend-encode.ts';
import type { ClusterRuntime } from './cluster.ts';
import { BackendCode, FrontendCode, type TransactionStatus } from './codes.ts';
import { commitTransaction, rollbackTransaction } from './commit.ts';
import { type CopySink, copyIn } from './copy.ts';
import { extendedBatch } from './extended.ts';
import type { Frame } from './framing.ts';
import type { FrontendMessage } from './frontend.ts';
import * as fe from './frontend-encode.ts';
import { collect, collected } from './results.ts';
import {
  type Bound,
  type ClientChannel,
  isHiddenParameter,
  type Portal,
  type PreparedStatement,
  parseTextArray,
  Reported,
} from './session-types.ts';
import { Transaction } from './transaction.ts';
import { paramsText, runEverywhere, savepoint, write } from './write.ts';
import { MessageWriter } from './writer.ts';

export interface SessionOptions {
  id: string;
  identity: Identity;
  cluster: ClusterRuntime;
  catalog: Catalog;
  logger: Logger;
  backends: BackendConnection[];
  channel: ClientChannel;
  searchPath: string[];
}

/**
 * One client session: its backend connections (one per backend of the cluster, pinned), its
 * transaction, its prepared statements and portals. Statements are classified, authorized,
 * then read from one backend or written to all.
 */
export class Session {
  readonly id: string;
  readonly identity: Identity;
  readonly cluster: ClusterRuntime;
  readonly catalog: Catalog;
  readonly logger: Logger;
  readonly backends: BackendConnection[];
  readonly channel: ClientChannel;
  searchPath: string[];
  txn: Transaction | null = null;
  readonly statements = new Map<string, PreparedStatement>();
  readonly portals = new Map<string, Portal>();
  /** Audit options for internal sessions that run a rollback. */
  auditAs: { kind: 'rollback'; rollbackOf: number; sql: string } | undefined;
  /** Copy messages a client pipelined behind its COPY statement, before that COPY started. */
  copyBacklog: Frame[] = [];
  private sink: CopySink | undefined;
  /** NotificationResponse messages for the client, sent before the next ReadyForQuery. */
  private notifications: Buffer[] = [];
  /** A rollback given by the caller (admin API), recorded instead of the captured one. */
  rollbackOverride: string | undefined;
  /** When set (internal sessions), the audit ids of statements that changed nothing land here. */
  readIds: Promise<number>[] | undefined;
  /** Audit ids of the changes committed by the last commit, in order. */
  lastCommitIds: number[] = [];
  readonly out = new MessageWriter(256);

  constructor(options: SessionOptions) {
    this.id = options.id;
    this.identity = options.identity;
    this.cluster = options.cluster;
    this.catalog = options.catalog;
    this.logger = options.logger;
    this.backends = options.backends;
    this.channel = options.channel;
    this.searchPath = options.searchPath;
  }

  get user(): string {
    return this.identity.subject;
  }

  get status(): TransactionStatus {
    if (this.txn === null || !this.txn.explicit) return 'I';
    return this.txn.failed ? 'E' : 'T';
  }

  /** Writes what `out` holds to the client. */
  flushOut(): void {
    if (this.out.length > 0) this.channel.write(this.out.take());
  }

  sendError(error: unknown): void {
    const sqlError =
      error instanceof SqlError
        ? error
        : new SqlError(SqlState.INTERNAL_ERROR, `internal error: ${(error as Error).message}`, {
            cause: error,
          });
    if (!(error instanceof SqlError)) {
      this.logger.error('session.internal_error', {
        session: this.id,
        error: (error as Error).stack ?? String(error),
      });
    }
    be.errorResponse(this.out, sqlError);
    this.flushOut();
  }

  /** A session statement (SET, PREPARE, LISTEN...) ran: its connections carry state. */
  stateful = false;
  /** An extended-protocol COPY ran: the Sync sent with its Execute is ignored, as PostgreSQL does. */
  syncDuringCopy = false;
  /** After an error in the extended protocol, messages are skipped until Sync (across Flushes). */
  skipping = false;
  /** ParameterStatus messages to send after the current command's completion. */
  readonly pendingStatus: Buffer[] = [];
  /** True while the commit protocol runs: CancelRequest is not forwarded then. */
  committing = false;
  /** False for internal sessions (admin API), which have no client to send COPY data. */
  interactive = true;

  /** Set while a COPY FROM STDIN waits for the client's data; unset by CopyDone or CopyFail. */
  get copySink(): CopySink | undefined {
    return this.sink;
  }

  set copySink(sink: CopySink | undefined) {
    if (sink === undefined) {
      this.sink = undefined;
      return;
    }
    // After CopyDone or CopyFail, what the client sends is ordinary protocol again.
    const end = () => {
      if (this.sink === wrapped) this.sink = undefined;
    };
    const wrapped: CopySink = {
      data: (frame) => sink.data(frame),
      done: (frame) => {
        end();
        sink.done(frame);
      },
      fail: (frame?: Frame) => {
        end();
        sink.fail(frame);
      },
    };
    this.sink = wrapped;
    while (this.sink === wrapped && this.copyBacklog.length > 0) {
      const frame = this.copyBacklog.shift() as Frame;
      if (frame.code === FrontendCode.CopyData) wrapped.data(frame);
      else if (frame.code === FrontendCode.CopyDone) wrapped.done(frame);
      else wrapped.fail(frame);
    }
  }

  /** A WARNING NoticeResponse, as PostgreSQL sends for a BEGIN inside a transaction. */
  notice(message: string, code = '25001'): void {
    be.noticeResponse(this.out, 'WARNING', code, message);
  }

  readyForQuery(): void {
    this.flushOut();
    // PostgreSQL delivers a session its own notifications at commit, just before ReadyForQuery.
    for (const notification of this.notifications.splice(0)) this.channel.write(notification);
    // Reported settings go out just before ReadyForQuery, as PostgreSQL 14 and later send them.
    for (const status of this.pendingStatus.splice(0)) this.channel.write(status);
    this.channel.write(be.readyForQuery[this.status]);
  }

  /** Handles one batch: a Query message, or extended-protocol messages up to Sync or Flush. */
  async handle(messages: FrontendMessage[], frames?: Frame[]): Promise<void> {
    const first = messages[0];
    if (first === undefined) return;
    // A statement boundary outside a transaction: reopen connections to backends that are back.
    // NOTE: a session that changed settings with SET is not revived: a reopened connection would not have them.
    if (this.txn === null && !this.stateful) await this.cluster.reviveBackends(this.backends);
    this.channel.cork();
    try {
      if (first.type === 'query') await this.simpleQuery(first.sql);
      else {
        await extendedBatch(this, messages, frames);
      }
    } finally {
      this.flushOut();
      this.channel.uncork();
    }
  }

  /** The simple query protocol, with PostgreSQL's implicit transaction for several statements. */
  async simpleQuery(sql: string): Promise<void> {
    let statements: readonly ParsedStatement[];
    try {
      statements = parseSql(sql);
      if (statements.length === 0) {
        this.channel.write(be.emptyQueryResponse);
        this.readyForQuery();
        return;
      }
      for (const statement of statements) this.authorize(statement);
    } catch (error) {
      this.audit(
        sql,
        null,
        error instanceof SqlError && error.code === SqlState.SYNTAX_ERROR ? 'failed' : 'refused',
        error,
        {
          kind: refusedKind(sql),
        },
      );
      this.sendError(error);
      await this.afterError();
      this.readyForQuery();
      return;
    }
    const implicit = statements.length > 1;
    try {
      for (const statement of statements) {
        if (this.txn === null && implicit) this.txn = new Transaction(false);
        await this.execute(statement, null);
      }
      if (this.txn !== null && !this.txn.explicit) await this.finishImplicit();
    } catch (error) {
      if (!(error instanceof Reported)) this.sendError(error);
      await this.afterError();
    }
    this.readyForQuery();
  }

  /** Refuses a statement the token may not run, or that the proxy never runs. */
  authorize(statement: ParsedStatement): void {
    if (statement.type === 'PrepareStmt') {
      // PREPARE needs what the prepared statement needs.
      const inner = preparedQuery(statement);
      if (inner !== undefined) this.authorize(inner);
    }
    if (statement.type === 'ExecuteStmt') {
      const name = (statement.node['ExecuteStmt'] as { name?: string }).name ?? '';
      const inner = this.sqlPrepared.get(name);
      if (inner !== undefined) {
        this.authorize(inner);
        if (inner.classification.class !== 'read' && executeArguments(statement) === undefined) {
          // NOTE: SQL-level EXECUTE of a change runs as the prepared statement with bound values, which needs constant arguments; others are refused.
          throw new SqlError(
            SqlState.FEATURE_NOT_SUPPORTED,
            'EXECUTE of a prepared change needs constant arguments through the proxy',
            { hint: 'Pass literal values, or run the statement itself.' },
          );
        }
        return;
      }
    }
    const { classification } = statement;
    if (classification.refusal !== undefined) {
      throw new SqlError(SqlState.INSUFFICIENT_PRIVILEGE, classification.refusal);
    }
    const permission = classification.permission;
    if (permission !== null && !can(this.identity, this.cluster.name, permission)) {
      const verb = statement.sql.split(/\s+/, 1)[0]?.toUpperCase() ?? statement.type;
      throw new SqlError(
        SqlState.INSUFFICIENT_PRIVILEGE,
        `permission denied: ${verb} (a ${classification.class} statement) needs the "${permission}" permission on cluster "${this.cluster.name}"`,
        { hint: 'Ask an administrator for a token that grants it (POST /tokens).' },
      );
    }
  }

  /** Runs one statement inside the session's current transaction (if any). */
  async execute(statement: ParsedStatement, bound: Bound | null): Promise<void> {
    const { classification } = statement;
    if (this.txn?.failed && classification.class !== 'transaction') {
      throw new SqlError(
        SqlState.IN_FAILED_TRANSACTION,
        'current transaction is aborted, commands ignored until end of transaction block',
      );
    }
    const started = performance.now();
    // What EXECUTE runs is known only now (an earlier statement of the string may have prepared it).
    if (statement.type === 'ExecuteStmt') this.authorize(statement);
    const cls = this.effectiveClass(statement);
    switch (cls) {
      case 'transaction':
        await this.transactionStatement(statement);
        return;
      case 'read':
        await this.read(statement, bound, started);
        return;
      case 'session':
        this.stateful = true;
        await this.everywhere(statement, bound, started);
        if (statement.type === 'PrepareStmt') this.rememberSqlPrepare(statement);
        this.forgetBackendStatements(statement);
        return;
      default:
        if (cannotRunInTransaction(statement) && !this.txn?.explicit) {
          // VACUUM, CREATE DATABASE, ... refuse transaction blocks: they run on every backend alone.
          this.requireAllBackends();
          try {
            await runEverywhere(this, statement, bound);
          } catch (error) {
            this.audit(statement.sql, null, 'failed', error, {
              kind: cls,
              durationMs: performance.now() - started,
              reason: 'ran outside a transaction: backends where it succeeded keep it',
            });
            throw error;
          }
          this.audit(statement.sql, null, 'executed', null, {
            kind: cls,
            durationMs: performance.now() - started,
            reversibility: 'irreversible',
            reason:
              'runs outside a transaction, so it is neither atomic across backends nor undone',
          });
          return;
        }
        if (this.txn === null) this.txn = new Transaction(false);
        try {
          if (statement.type === 'CopyStmt') await copyIn(this, statement, started);
          else if (statement.type === 'NotifyStmt') this.deferNotify(statement);
          else if (isPgNotifyCall(statement)) this.deferNotify(statement, bound);
          else if (statement.type === 'ExecuteStmt') await this.executePrepared(statement, started);
          else await write(this, statement, bound, started);
        } catch (error) {
          this.audit(statement.sql, paramsText(bound), 'failed', error, {
            kind: cls,
            durationMs: performance.now() - started,
          });
          throw error;
        }
    }
  }

  /**
   * PREPARE, DEALLOCATE and DISCARD share the backends' namespace of prepared statements with the
   * protocol's Parse: what the proxy believed a backend holds under those names is no longer so.
   */
  private forgetBackendStatements(statement: ParsedStatement): void {
    const body = (statement.node[statement.type] ?? {}) as {
      name?: string;
      isall?: boolean;
      target?: string;
    };
    const discardsAll = statement.type === 'DiscardStmt' && body.target === 'DISCARD_ALL';
    for (const backend of this.backends) {
      if (statement.type === 'PrepareStmt' && body.name !== undefined)
        backend.statements.delete(body.name);
      else if (statement.type === 'DeallocateStmt' && body.name !== undefined && !body.isall) {
        backend.statements.delete(body.name);
      } else if (statement.type === 'DeallocateStmt' || discardsAll) {
        backend.statements.clear();
        backend.portals.clear();
      }
    }
    if (statement.type === 'DeallocateStmt' && body.name !== undefined && !body.isall)
      this.sqlPrepared.delete(body.name);
    else if (statement.type === 'DeallocateStmt' || discardsAll) this.sqlPrepared.clear();
  }

  /** SQL-level PREPARE: what each name runs, so that EXECUTE is routed and authorized as that. */
  private readonly sqlPrepared = new Map<string, ParsedStatement>();

  private rememberSqlPrepare(statement: ParsedStatement): void {
    const name = (statement.node['PrepareStmt'] as { name?: string }).name;
    const inner = preparedQuery(statement);
    if (name !== undefined && inner !== undefined) this.sqlPrepared.set(name, inner);
  }

  /**
   * SQL-level EXECUTE of a change runs as the prepared statement itself with its arguments bound,
   * so that it is captured and made deterministic like any change.
   */
  private async executePrepared(statement: ParsedStatement, started: number): Promise<void> {
    const name = (statement.node['ExecuteStmt'] as { name?: string }).name ?? '';
    const inner = this.sqlPrepared.get(name);
    const args = executeArguments(statement);
    if (inner === undefined || args === undefined) {
      await write(this, statement, null, started);
      return;
    }
    const bound: Bound = {
      paramTypes: [],
      paramFormats: [0],
      params: args.map((value) => (value === null ? null : Buffer.from(value))),
      resultFormats: [],
      maxRows: 0,
      describeRows: true,
    };
    await write(this, inner, bound, started);
  }

  /** The class a statement runs as here: EXECUTE takes the class of what it executes. */
  effectiveClass(statement: ParsedStatement): StatementClass {
    if (statement.type !== 'ExecuteStmt') return statement.classification.class;
    const name = (statement.node['ExecuteStmt'] as { name?: string }).name ?? '';
    const inner = this.sqlPrepared.get(name);
    // An unknown name is left to the backends, which answer that it does not exist.
    return inner?.classification.class === 'read' ? 'read' : 'write';
  }

  /**
   * NOTIFY is held until the transaction commits, then sent to the first backend alone: a
   * prepared transaction may not notify, and one backend notifying is what listeners need.
   */
  private deferNotify(statement: ParsedStatement, bound: Bound | null = null): void {
    const txn = this.txn as Transaction;
    txn.notifies.push(statement.sql);
    if (statement.type === 'NotifyStmt') {
      be.commandComplete(this.out, 'NOTIFY');
      return;
    }
    // SELECT pg_notify(...) answers one row holding a void value, as PostgreSQL does.
    if (bound === null) {
      be.rowDescription(this.out, [
        {
          name: 'pg_notify',
          tableOid: 0,
          columnId: 0,
          typeOid: 2278,
          typeSize: 4,
          typeModifier: -1,
          format: 0,
        },
      ]);
    }
    be.dataRow(this.out, [Buffer.alloc(0)]);
    be.commandComplete(this.out, 'SELECT 1');
  }

  /** Healthy backends, or an error naming the first that is not (writes need every backend). */
  requireAllBackends(): BackendConnection[] {
    const down = this.backends.find((b) => b.failure !== undefined);
    if (down !== undefined) {
      throw new SqlError(
        SqlState.CONNECTION_FAILURE,
        `cluster "${this.cluster.name}" cannot accept changes: ${down.failure?.message}`,
        {
          hint: 'Reads still work; changes are accepted again once a health check finds the backend back.',
        },
      );
    }
    return this.backends;
  }

  /** The backend for a read: the transaction's own, or the next healthy one. */
  readBackend(): BackendConnection {
    const txn = this.txn;
    if (txn?.readBackend !== undefined && txn.readBackend.failure === undefined)
      return txn.readBackend;
    if (txn !== null && txn.begun.size > 0) {
      // Read your writes: a backend already in the transaction.
      const joined = [...txn.begun].find((b) => b.failure === undefined);
      if (joined !== undefined) {
        txn.readBackend = joined;
        return joined;
      }
    }
    const index = this.cluster.pickRead(
      this.backends.length,
      (i) => this.backends[i]?.failure === undefined,
    );
    const backend = this.backends[index];
    if (backend === undefined) {
      throw new SqlError(
        SqlState.CONNECTION_FAILURE,
        `no backend of cluster "${this.cluster.name}" is available`,
      );
    }
    if (txn !== null) txn.readBackend = backend;
    return backend;
  }

  /** Adds a BEGIN for `backend` to `w` if the explicit transaction has not reached it yet. */
  joinTransaction(backend: BackendConnection, w: MessageWriter, consumers: Consumer[]): void {
    const txn = this.txn;
    if (txn === null || txn.begun.has(backend)) return;
    backend.endExchange(w, consumers);
    fe.query(w, txn.beginSql);
    // A simple Query destroys the unnamed statement and portal: whatever follows must not count on them.
    backend.statements.delete('');
    backend.portals.delete('');
    const result = collected();
    consumers.push((frame) => {
      const done = collect(result)(frame);
      if (frame.code === BackendCode.ErrorResponse) txn.failed = true;
      return done;
    });
    txn.begun.add(backend);
  }

  /** Simple-protocol read on one backend; rows are relayed as the backend sent them. */
  private async read(
    statement: ParsedStatement,
    bound: Bound | null,
    started: number,
  ): Promise<void> {
    if (bound !== null) throw new Error('extended reads are handled by extended.ts');
    const backend = this.readBackend();
    const w = new MessageWriter(64 + statement.sql.length);
    const consumers: Consumer[] = [];
    if (this.txn?.explicit) this.joinTransaction(backend, w, consumers);
    fe.query(w, statement.sql);
    const relay = this.relay();
    consumers.push(relay.consumer);
    // Answers of earlier statements of the same query string go first.
    this.flushOut();
    await backend.request(w.take(), ...consumers);
    this.audit(statement.sql, null, relay.error === null ? 'executed' : 'failed', relay.error, {
      kind: 'read',
      durationMs: performance.now() - started,
      commandTag: relay.tag,
    });
    if (relay.error !== null) throw relay.error;
  }

  /**
   * A consumer that relays a reply to the client untouched, up to ReadyForQuery (which the
   * session sends itself), keeping the error aside so the session can stop on it.
   */
  relay(
    until: 'ready' | 'complete' = 'ready',
    passCompletions = false,
  ): {
    consumer: Consumer;
    error: SqlError | null;
    tag: string | null;
    /** ParseComplete messages seen: how many of the batch's Parses the backend accepted. */
    parsed: number;
  } {
    const state = {
      error: null as SqlError | null,
      tag: null as string | null,
      parsed: 0,
      consumer: null as unknown as Consumer,
    };
    state.consumer = (frame) => {
      switch (frame.code) {
        case BackendCode.ReadyForQuery:
          return true;
        case BackendCode.ErrorResponse: {
          const result = collected();
          collect(result)(frame);
          state.error = result.error;
          return until === 'complete';
        }
        case BackendCode.CommandComplete:
          state.tag = frame.body.toString('utf8', 0, frame.body.length - 1);
          this.channel.write(frame.raw);
          return until === 'complete';
        case BackendCode.PortalSuspended:
        case BackendCode.EmptyQueryResponse:
          this.channel.write(frame.raw);
          return until === 'complete';
        case BackendCode.ParameterStatus:
          if (!isHiddenParameter(frame.body)) this.channel.write(frame.raw);
          return false;
        case BackendCode.ParseComplete:
          state.parsed++;
          if (passCompletions) this.channel.write(frame.raw);
          return false;
        case BackendCode.BindComplete:
        case BackendCode.CloseComplete:
          // Unless these answer the client's own messages, the session already answered them.
          if (passCompletions) this.channel.write(frame.raw);
          return false;
        default:
          this.channel.write(frame.raw);
          return false;
      }
    };
    return state;
  }

  /** Session statements (SET, RESET, DISCARD, LISTEN...) run on every backend, alike. */
  private async everywhere(
    statement: ParsedStatement,
    bound: Bound | null,
    started: number,
  ): Promise<void> {
    await runEverywhere(this, statement, bound);
    if (statement.classification.changesSearchPath) await this.readSearchPath();
    this.audit(statement.sql, null, 'executed', null, {
      kind: 'session',
      durationMs: performance.now() - started,
    });
  }

  /** Reads the effective search path (for resolving unqualified table names). */
  async readSearchPath(): Promise<void> {
    const backend = this.backends.find((b) => b.failure === undefined);
    if (backend === undefined) return;
    const w = new MessageWriter(64);
    fe.query(w, 'SELECT pg_catalog.current_schemas(false)::text');
    const result = collected();
    await backend.request(w.take(), collect(result));
    const text = result.results[0]?.rows[0]?.[0]?.toString() ?? '{}';
    this.searchPath = parseTextArray(text);
  }

  private async transactionStatement(statement: ParsedStatement): Promise<void> {
    const action = statement.classification.transaction;
    const txn = this.txn;
    const tag = (text: string) => be.commandComplete(this.out, text);
    switch (action) {
      case 'begin':
        if (txn?.explicit) {
          this.notice('there is already a transaction in progress');
        } else if (txn !== null) {
          txn.explicit = true;
          txn.beginSql = beginSql(statement, this.identity, this.cluster.name);
        } else {
          this.txn = new Transaction(true, beginSql(statement, this.identity, this.cluster.name));
        }
        tag('BEGIN');
        return;
      case 'commit':
        if (
          txn === null ||
          (!txn.explicit && txn.begun.size === 0 && !txn.wrote && txn.notifies.length === 0)
        ) {
          if (txn === null || !txn.explicit) {
            this.notice('there is no transaction in progress', NO_ACTIVE_SQL_TRANSACTION);
          }
          this.txn = null;
          tag('COMMIT');
          return;
        }
        if (txn.failed) {
          await this.abort(txn);
          this.txn = null;
          tag('ROLLBACK');
          return;
        }
        this.txn = null;
        await this.commit(txn);
        if (chained(statement)) this.txn = new Transaction(true, txn.beginSql);
        tag('COMMIT');
        return;
      case 'rollback':
        if (txn === null || !txn.explicit) {
          this.notice('there is no transaction in progress', NO_ACTIVE_SQL_TRANSACTION);
        }
        if (txn !== null) await this.abort(txn);
        // COMMIT AND CHAIN and ROLLBACK AND CHAIN start a new transaction with the same options.
        this.txn = txn?.explicit && chained(statement) ? new Transaction(true, txn.beginSql) : null;
        tag('ROLLBACK');
        return;
      case 'savepoint':
      case 'release':
      case 'rollback_to': {
        if (txn === null || !txn.explicit) {
          throw new SqlError(
            '25P01',
            `${statement.sql.split(/\s/)[0]?.toUpperCase()} can only be used in transaction blocks`,
          );
        }
        await savepoint(this, txn, statement);
        return;
      }
      default:
        // SET TRANSACTION: applies to every backend in the transaction.
        await this.everywhere(statement, null, performance.now());
    }
  }

  /** Rolls back on every backend; the changes it made are still audited, as rolled back. */
  private async abort(txn: Transaction): Promise<void> {
    this.portals.clear();
    const reply = await rollbackTransaction(this, txn);
    // ROLLBACK reports the settings it restored (a SET inside the transaction) as ParameterStatus.
    for (const frame of reply?.asides ?? []) {
      if (frame.code === BackendCode.ParameterStatus && !isHiddenParameter(frame.body))
        this.pendingStatus.push(frame.raw);
    }
    for (const entry of txn.entries) {
      const id = this.catalog.recordLater({
        ...entry,
        outcome: 'rolled_back',
        rollback: null,
        reversibility: 'none',
        reason: 'the transaction was rolled back',
      });
      id.catch((e: Error) =>
        this.logger.warn('audit.write_failed', { session: this.id, error: e.message }),
      );
    }
  }

  /** Commits on every backend, then sends the transaction's NOTIFYs (PostgreSQL delivers them at commit too). */
  private async commit(txn: Transaction): Promise<void> {
    this.portals.clear();
    // A cancel must not reach a backend in the middle of the commit protocol.
    this.committing = true;
    try {
      await commitTransaction(this, txn);
    } finally {
      this.committing = false;
    }
    if (txn.notifies.length === 0) return;
    const backend = this.backends.find((b) => b.failure === undefined);
    if (backend === undefined) return;
    const sql = txn.notifies.join(';\n');
    const reply = await backend.simple(sql);
    // The backend heard its own NOTIFY if this session listens there: the client hears it once.
    for (const frame of reply.asides) {
      if (frame.code === BackendCode.NotificationResponse) this.notifications.push(frame.raw);
    }
    this.audit(sql, null, reply.error === null ? 'executed' : 'failed', reply.error, {
      kind: 'write',
    });
    // The transaction is committed: a failed NOTIFY must not make the client think it was not.
    if (reply.error !== null)
      this.logger.warn('notify.failed', { session: this.id, error: reply.error.message });
  }

  /** Commits the implicit transaction of a Query string or of a Sync. */
  async finishImplicit(): Promise<void> {
    const txn = this.txn;
    if (txn === null || txn.explicit) return;
    this.txn = null;
    if (txn.begun.size > 0 || txn.notifies.length > 0) await this.commit(txn);
  }

  /** After an error: an implicit transaction ends (rolled back); an explicit one is failed. */
  async afterError(): Promise<void> {
    const txn = this.txn;
    if (txn === null) return;
    if (txn.explicit) {
      txn.failed = true;
      return;
    }
    this.txn = null;
    await this.abort(txn).catch(() => {});
  }

  /** Records a statement that changed nothing (read, session, failure, refusal) off the hot path. */
  audit(
    sql: string,
    params: (string | null)[] | null,
    outcome: Outcome,
    error: unknown,
    extra: Partial<AuditEntryInput> = {},
  ): void {
    const entry: AuditEntryInput = {
      cluster: this.cluster.name,
      user: this.user,
      session: this.id,
      transaction: this.txn?.explicit ? this.txn.id : null,
      kind: 'other',
      sql,
      params,
      outcome,
      error: error === null || error === undefined ? null : (error as Error).message,
      durationMs: 0,
      rowCount: extra.commandTag ? tagRowCount(extra.commandTag) : null,
      commandTag: null,
      rollback: null,
      reversibility: 'none',
      reason: null,
      rollbackOf: null,
      afterImage: null,
      ...extra,
    };
    const id = this.catalog.recordLater(entry);
    id.catch((e: Error) => {
      this.logger.warn('audit.write_failed', { session: this.id, error: e.message });
    });
    this.readIds?.push(id);
  }

  /** Ends the session: backends roll back whatever was open and close. */
  close(): void {
    for (const backend of this.backends) backend.close();
  }
}

/** The SQLSTATE of PostgreSQL's warning for COMMIT or ROLLBACK outside a transaction. */
const NO_ACTIVE_SQL_TRANSACTION = '25P01';

/**
 * The BEGIN each backend gets, built from the client's options (not its text, which may end in
 * a comment): read-write unless the client asked for read only, or its token cannot write.
 */
function beginSql(statement: ParsedStatement, identity: Identity, cluster: string): string {
  const body = (statement.node['TransactionStmt'] ?? {}) as { options?: unknown[] };
  const parts = ['BEGIN'];
  let readOnly = !(can(identity, cluster, 'write') || can(identity, cluster, 'ddl'));
  for (const option of body.options ?? []) {
    const def = (option as { DefElem?: { defname?: string; arg?: unknown } }).DefElem;
    const value = JSON.stringify(def?.arg ?? '');
    const on = value.includes('"ival":{"ival":1}');
    if (def?.defname === 'transaction_isolation') {
      const level = /"(serializable|repeatable read|read committed|read uncommitted)"/i.exec(
        value,
      )?.[1];
      if (level !== undefined) parts.push(`ISOLATION LEVEL ${level.toUpperCase()}`);
    } else if (def?.defname === 'transaction_read_only') {
      if (on) readOnly = true;
    } else if (def?.defname === 'transaction_deferrable') {
      parts.push(on ? 'DEFERRABLE' : 'NOT DEFERRABLE');
    }
  }
  parts.push(readOnly ? 'READ ONLY' : 'READ WRITE');
  return parts.join(' ');
}

/** The class of the first statement of a refused query string, for its audit entry. */
function refusedKind(sql: string): StatementClass {
  try {
    return parseSql(sql)[0]?.classification.class ?? 'other';
  } catch {
    return 'other';
  }
}

/** Statements PostgreSQL refuses to run inside a transaction block. */
function cannotRunInTransaction(statement: ParsedStatement): boolean {
  const body = statement.node[statement.type] as Record<string, unknown> | undefined;
  switch (statement.type) {
    case 'VacuumStmt':
    case 'CreatedbStmt':
    case 'DropdbStmt':
    case 'AlterSystemStmt':
    case 'CreateTableSpaceStmt':
    case 'DropTableSpaceStmt':
    case 'CreateSubscriptionStmt':
    case 'DropSubscriptionStmt':
      return true;
    case 'IndexStmt':
    case 'DropStmt':
      return body?.['concurrent'] === true;
    case 'ReindexStmt':
      return JSON.stringify(body?.['params'] ?? []).includes('concurrently');
    case 'ClusterStmt':
      return body?.['relation'] === undefined;
    default:
      return false;
  }
}

/** `SELECT pg_notify('channel', 'payload')` with constant arguments: deferred like NOTIFY. */
function isPgNotifyCall(statement: ParsedStatement): boolean {
  if (statement.type !== 'SelectStmt') return false;
  const select = statement.node['SelectStmt'] as { targetList?: unknown[] };
  // Nothing but the one call: no FROM, WHERE, WITH or other clause that could hide a change.
  const clauses = Object.keys(select).filter(
    (k) => !['targetList', 'limitOption', 'op'].includes(k),
  );
  if (clauses.length > 0 || select.targetList?.length !== 1) return false;
  const call = (
    select.targetList[0] as {
      ResTarget?: {
        val?: { FuncCall?: { funcname?: { String?: { sval?: string } }[]; args?: unknown[] } };
      };
    }
  ).ResTarget?.val?.FuncCall;
  if (call?.funcname?.at(-1)?.String?.sval?.toLowerCase() !== 'pg_notify') return false;
  return (call.args ?? []).every(
    (arg) => typeof arg === 'object' && arg !== null && 'A_Const' in arg,
  );
}

/** The statement a SQL-level PREPARE prepares. */
function preparedQuery(statement: ParsedStatement): ParsedStatement | undefined {
  const query = (statement.node['PrepareStmt'] as { query?: Record<string, unknown> }).query;
  return query === undefined ? undefined : parseSql(deparseNode(query))[0];
}

/** The arguments of EXECUTE as text, when every one is a constant; undefined otherwise. */
function executeArguments(statement: ParsedStatement): (string | null)[] | undefined {
  const params = ((statement.node['ExecuteStmt'] as { params?: unknown[] }).params ?? []) as Record<
    string,
    unknown
  >[];
  const values: (string | null)[] = [];
  for (const param of params) {
    const constant = (param['A_Const'] ??
      (param['TypeCast'] as { arg?: { A_Const?: unknown } } | undefined)?.arg?.A_Const) as
      | {
          isnull?: boolean;
          ival?: { ival?: number };
          fval?: { fval?: string };
          sval?: { sval?: string };
          boolval?: { boolval?: boolean };
        }
      | undefined;
    if (constant === undefined) return undefined;
    if (constant.isnull) values.push(null);
    else if (constant.ival !== undefined) values.push(String(constant.ival.ival ?? 0));
    else if (constant.fval !== undefined) values.push(constant.fval.fval ?? '0');
    else if (constant.sval !== undefined) values.push(constant.sval.sval ?? '');
    else if (constant.boolval !== undefined)
      values.push(constant.boolval.boolval ? 'true' : 'false');
    else return undefined;
  }
  return values;
}

function chained(statement: ParsedStatement): boolean {
  return (statement.node['TransactionStmt'] as { chain?: boolean } | undefined)?.chain === true;
}
