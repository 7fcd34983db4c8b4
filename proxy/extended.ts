import { SqlError, SqlState } from '../src/errors.ts';
import { type ParsedStatement, parseSql } from '../src/sql/parse.ts';
import type { BackendConnection, Consumer } from './backend-connection.ts';
import { backendError } from './backend-decode.ts';
import * as be from './backend-encode.ts';
import { BackendCode } from './codes.ts';
import type { Frame } from './framing.ts';
import type { FrontendMessage } from './frontend.ts';
import * as fe from './frontend-encode.ts';
import { collect, collected } from './results.ts';
import type { Session } from './session.ts';
import { type Bound, type Portal, type PreparedStatement, Reported } from './session-types.ts';
import { describe, expandFormats, paramsText } from './write.ts';
import { MessageWriter } from './writer.ts';

/**
 * The extended query protocol: messages up to Sync (or Flush) handled in order, with
 * PostgreSQL's error recovery (after an error, everything up to Sync is skipped).
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
 */
export async function extendedBatch(
  session: Session,
  messages: FrontendMessage[],
  frames?: Frame[],
): Promise<void> {
  if (frames !== undefined && !session.skipping && (await fastPath(session, messages, frames)))
    return;
  for (const message of messages) {
    if (session.skipping && message.type !== 'sync') continue;
    try {
      switch (message.type) {
        case 'parse':
          onParse(session, message.name, message.sql, message.paramTypes);
          break;
        case 'bind':
          onBind(session, message);
          break;
        case 'describe':
          await onDescribe(session, message.target, message.name);
          break;
        case 'execute':
          await onExecute(session, message.portal, message.maxRows);
          break;
        case 'close':
          onClose(session, message.target, message.name);
          break;
        case 'flush':
          session.flushOut();
          break;
        case 'sync':
          if (session.syncDuringCopy) {
            // PostgreSQL ignores a Sync sent during copy-in mode; the client sends another after it.
            session.syncDuringCopy = false;
            break;
          }
          await onSync(session, session.skipping);
          session.skipping = false;
          break;
        default:
          throw new SqlError(
            SqlState.PROTOCOL_VIOLATION,
            `unexpected ${message.type} message during the extended query protocol`,
          );
      }
    } catch (error) {
      if (!(error instanceof Reported)) session.sendError(error);
      session.skipping = true;
      await session.afterError();
    }
  }
}

function parseOne(session: Session, sql: string): ParsedStatement | null {
  const parsed = parseSql(sql);
  if (parsed.length > 1) {
    throw new SqlError(
      SqlState.SYNTAX_ERROR,
      'cannot insert multiple commands into a prepared statement',
    );
  }
  const statement = parsed[0] ?? null;
  if (statement !== null) session.authorize(statement);
  return statement;
}

function onParse(session: Session, name: string, sql: string, paramTypes: number[]): void {
  if (name !== '' && session.statements.has(name)) {
    throw new SqlError('42P05', `prepared statement "${name}" already exists`);
  }
  let parsed: ParsedStatement | null;
  try {
    parsed = parseOne(session, sql);
  } catch (error) {
    session.audit(sql, null, 'refused', error);
    throw error;
  }
  session.statements.set(name, { name, sql, paramTypes, parsed });
  session.out.bytes(be.parseComplete);
}

function statementNamed(session: Session, name: string): PreparedStatement {
  const statement = session.statements.get(name);
  if (statement === undefined) {
    throw new SqlError(
      '26000',
      name === ''
        ? 'unnamed prepared statement does not exist'
        : `prepared statement "${name}" does not exist`,
    );
  }
  return statement;
}

function portalNamed(session: Session, name: string): Portal {
  const portal = session.portals.get(name);
  if (portal === undefined) throw new SqlError('34000', `portal "${name}" does not exist`);
  return portal;
}

function onBind(session: Session, message: Extract<FrontendMessage, { type: 'bind' }>): void {
  const statement = statementNamed(session, message.statement);
  session.portals.set(message.portal, {
    name: message.portal,
    statement,
    paramFormats: message.paramFormats,
    params: message.params,
    resultFormats: message.resultFormats,
  });
  session.out.bytes(be.bindComplete);
}

async function onDescribe(session: Session, target: 'S' | 'P', name: string): Promise<void> {
  if (target === 'S') {
    const statement = statementNamed(session, name);
    if (statement.parsed === null) {
      be.parameterDescription(session.out, statement.paramTypes);
      session.out.bytes(be.noData);
      return;
    }
    const shape = await describe(session, statement.sql, statement.paramTypes);
    be.parameterDescription(session.out, shape.paramTypes);
    if (shape.fields === null) session.out.bytes(be.noData);
    else be.rowDescription(session.out, shape.fields);
    return;
  }
  if (!session.portals.has(name) && session.txn !== null && name !== '') {
    await describeBackendPortal(session, name);
    return;
  }
  const portal = portalNamed(session, name);
  const { statement } = portal;
  if (statement.parsed === null) {
    session.out.bytes(be.noData);
    return;
  }
  const shape = await describe(session, statement.sql, statement.paramTypes);
  if (shape.fields === null) {
    session.out.bytes(be.noData);
    return;
  }
  const formats = expandFormats(portal.resultFormats, shape.fields.length);
  be.rowDescription(
    session.out,
    shape.fields.map((field, i) => ({ ...field, format: formats[i] ?? 0 })),
  );
}

async function onExecute(session: Session, portalName: string, maxRows: number): Promise<void> {
  const portal = portalNamed(session, portalName);
  const statement = portal.statement.parsed;
  if (statement === null) {
    session.out.bytes(be.emptyQueryResponse);
    return;
  }
  const started = performance.now();
  if (session.effectiveClass(statement) === 'read') {
    if (session.txn?.failed) {
      throw new SqlError(
        SqlState.IN_FAILED_TRANSACTION,
        'current transaction is aborted, commands ignored until end of transaction block',
      );
    }
    await executeRead(session, portal, maxRows, started);
    return;
  }
  const bound: Bound = {
    paramTypes: portal.statement.paramTypes,
    paramFormats: portal.paramFormats,
    params: portal.params,
    resultFormats: portal.resultFormats,
    maxRows,
  };
  await session.execute(statement, statement.classification.class === 'transaction' ? null : bound);
  if (statement.type === 'CopyStmt' && statement.classification.class === 'write') {
    // The Sync that came with this Execute arrived while the COPY was waiting for data.
    session.syncDuringCopy = true;
  }
}

/** A cursor opened with DECLARE is a portal the backend knows and the session does not: ask it. */
async function describeBackendPortal(session: Session, name: string): Promise<void> {
  const backend = session.readBackend();
  const w = new MessageWriter(32);
  fe.describe(w, 'P', name);
  fe.flush(w);
  backend.unsynced = true;
  session.flushOut();
  let error: SqlError | null = null;
  await backend.request(w.take(), (frame) => {
    if (frame.code === BackendCode.ErrorResponse) {
      error = backendError(frame.body);
      return true;
    }
    if (frame.code === BackendCode.RowDescription || frame.code === BackendCode.NoData) {
      session.channel.write(frame.raw);
      return true;
    }
    return false;
  });
  if (error !== null) {
    const sw = new MessageWriter(8);
    backend.unsynced = false;
    await backend.request(fe.sync(sw).take(), collect(collected()));
    throw error;
  }
}

/** Makes sure the backend has the client's prepared statement, under the same name. */
function ensureStatement(
  backend: BackendConnection,
  statement: PreparedStatement,
  w: MessageWriter,
): void {
  const existing = backend.statements.get(statement.name);
  if (existing === statement.sql) return;
  if (existing !== undefined && statement.name !== '') fe.close(w, 'S', statement.name);
  fe.parse(w, statement.name, statement.sql, statement.paramTypes);
  backend.statements.set(statement.name, statement.sql);
}

/**
 * A read portal runs on one backend; its rows are relayed as sent. A portal suspended by a row
 * limit stays on its backend, where the next Execute resumes it.
 */
async function executeRead(
  session: Session,
  portal: Portal,
  maxRows: number,
  started: number,
): Promise<void> {
  const resumable = portal.backend !== undefined && portal.backend.failure === undefined;
  const backend = resumable ? (portal.backend as BackendConnection) : session.readBackend();
  const w = new MessageWriter(128);
  const consumers: Consumer[] = [];
  if (session.txn?.explicit) session.joinTransaction(backend, w, consumers);
  if (!(resumable && backend.portals.has(portal.name))) {
    if (portal.name !== '' && backend.portals.has(portal.name)) fe.close(w, 'P', portal.name);
    ensureStatement(backend, portal.statement, w);
    fe.bind(
      w,
      portal.name,
      portal.statement.name,
      portal.paramFormats,
      portal.params,
      portal.resultFormats,
    );
  }
  fe.execute(w, portal.name, maxRows);
  fe.flush(w);
  backend.unsynced = true;
  session.flushOut();
  const relay = session.relay('complete');
  consumers.push(relay.consumer);
  const request = backend.request(w.take(), ...consumers);
  backend.portals.add(portal.name);
  portal.backend = backend;
  await request;
  const bound = { paramFormats: portal.paramFormats, params: portal.params } as Bound;
  session.audit(
    portal.statement.sql,
    paramsText(bound),
    relay.error === null ? 'executed' : 'failed',
    relay.error,
    {
      kind: 'read',
      durationMs: performance.now() - started,
      commandTag: relay.tag,
    },
  );
  if (relay.error !== null) {
    // A Parse sent with this Execute may be what failed: do not count on the statement being there.
    backend.statements.delete(portal.statement.name);
    // After an error the backend skips to Sync; give it one now.
    const sw = new MessageWriter(8);
    backend.unsynced = false;
    await backend.request(fe.sync(sw).take(), collect(collected()));
    throw relay.error;
  }
}

function onClose(session: Session, target: 'S' | 'P', name: string): void {
  if (target === 'S') session.statements.delete(name);
  else {
    const backend = session.portals.get(name)?.backend;
    session.portals.delete(name);
    if (backend !== undefined && name !== '' && backend.portals.has(name)) {
      // Closed on the backend too, so that the name can be bound again there.
      const w = new MessageWriter(32);
      fe.close(w, 'P', name);
      fe.flush(w);
      backend.portals.delete(name);
      backend.unsynced = true;
      backend
        .request(
          w.take(),
          (frame) =>
            frame.code === BackendCode.CloseComplete || frame.code === BackendCode.ErrorResponse,
        )
        .catch(() => {});
    }
  }
  session.out.bytes(be.closeComplete);
}

async function onSync(session: Session, failed: boolean): Promise<void> {
  if (!failed) {
    try {
      await session.finishImplicit();
    } catch (error) {
      session.sendError(error);
      await session.afterError();
    }
  }
  await syncBackends(session);
  if (session.txn === null) session.portals.clear();
  session.readyForQuery();
}

/** Ends the extended-protocol exchange on every backend that has one open. */
async function syncBackends(session: Session): Promise<void> {
  await Promise.all(
    session.backends
      .filter((backend) => backend.unsynced && backend.failure === undefined)
      .map((backend) => {
        backend.unsynced = false;
        const w = new MessageWriter(8);
        return backend.request(fe.sync(w).take(), collect(collected())).catch(() => {});
      }),
  );
}

/**
 * The common case of drivers: outside a transaction, messages up to Sync that only read go
 * to one backend as they came, and the reply is relayed as it comes back.
 */
async function fastPath(
  session: Session,
  messages: FrontendMessage[],
  frames: Frame[],
): Promise<boolean> {
  if (session.txn !== null || messages.at(-1)?.type !== 'sync') return false;
  const parsedHere = new Map<
    string,
    { sql: string; paramTypes: number[]; parsed: ParsedStatement | null }
  >();
  const executed: { sql: string; bound: Bound }[] = [];
  const boundHere = new Set<string>();
  for (const message of messages) {
    switch (message.type) {
      case 'parse': {
        if (
          message.name !== '' &&
          (session.statements.has(message.name) || parsedHere.has(message.name))
        )
          return false;
        let parsed: ParsedStatement | null;
        try {
          parsed = parseOne(session, message.sql);
        } catch {
          return false;
        }
        if (parsed !== null && parsed.classification.class !== 'read') return false;
        parsedHere.set(message.name, { sql: message.sql, paramTypes: message.paramTypes, parsed });
        break;
      }
      case 'bind': {
        const statement =
          parsedHere.get(message.statement) ?? session.statements.get(message.statement);
        if (
          statement === undefined ||
          (statement.parsed !== null && statement.parsed.classification.class !== 'read')
        ) {
          return false;
        }
        executed.push({
          sql: statement.sql,
          bound: { paramFormats: message.paramFormats, params: message.params } as Bound,
        });
        boundHere.add(message.portal);
        break;
      }
      case 'describe':
        // A portal bound by an earlier batch lives on the backend that bound it, and a
        // statement the session does not know must get PostgreSQL's answer, not a stale one.
        if (message.target === 'P' && !boundHere.has(message.name)) return false;
        if (
          message.target === 'S' &&
          !parsedHere.has(message.name) &&
          !session.statements.has(message.name)
        )
          return false;
        break;
      case 'execute':
        if (!boundHere.has(message.portal)) return false;
        break;
      case 'sync':
        break;
      default:
        return false;
    }
  }
  const backend = session.readBackend();
  for (const name of parsedHere.keys()) {
    // The backend still holds an old statement of that name; PostgreSQL would refuse the Parse.
    if (name !== '' && backend.statements.has(name)) return false;
  }
  const started = performance.now();
  const w = new MessageWriter(256);
  const consumers: Consumer[] = [];
  // Statements prepared in earlier batches, on another backend, are prepared here first.
  const setup = new MessageWriter(128);
  for (const message of messages) {
    const name =
      message.type === 'bind'
        ? message.statement
        : message.type === 'describe' && message.target === 'S'
          ? message.name
          : undefined;
    if (name === undefined || parsedHere.has(name)) continue;
    ensureStatement(backend, session.statements.get(name) as PreparedStatement, setup);
  }
  if (setup.length > 0 || backend.unsynced) {
    fe.sync(setup);
    backend.unsynced = false;
    w.bytes(setup.take());
    consumers.push(collect(collected()));
  }
  for (const frame of frames) w.bytes(frame.raw);
  for (const [name, statement] of parsedHere) {
    backend.statements.set(name, statement.sql);
    session.statements.set(name, { name, ...statement });
  }
  session.flushOut();
  // The backend answers the client's own Parse, Bind and Close here: relay those answers too.
  const relay = session.relay('ready', true);
  consumers.push(relay.consumer);
  await backend.request(w.take(), ...consumers);
  for (const { sql, bound } of executed) {
    session.audit(
      sql,
      paramsText(bound),
      relay.error === null ? 'executed' : 'failed',
      relay.error,
      {
        kind: 'read',
        durationMs: performance.now() - started,
        commandTag: relay.tag,
      },
    );
  }
  if (relay.error !== null) {
    session.sendError(relay.error);
    // The Parses the backend accepted (one ParseComplete each, in order) created their
    // statements; the one that failed, and those skipped after it, created nothing.
    [...parsedHere.keys()].slice(relay.parsed).forEach((name) => {
      session.statements.delete(name);
      backend.statements.delete(name);
    });
  }
  session.portals.clear();
  session.readyForQuery();
  return true;
}
