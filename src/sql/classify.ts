import type { Permission } from '../auth/identity.ts';
import type { StatementClass } from './classify-types.ts';

export type { StatementClass } from './classify-types.ts';

export type TransactionAction =
  | 'begin'
  | 'commit'
  | 'rollback'
  | 'savepoint'
  | 'release'
  | 'rollback_to'
  | 'two_phase';

export interface Classification {
  class: StatementClass;
  /** The permission a token needs on the cluster; null when connecting is enough. */
  permission: Permission | null;
  transaction?: TransactionAction;
  /** Set when the proxy refuses the statement whatever the token: why, for the client. */
  refusal?: string;
  /** DDL and anything else after which the cluster's table metadata must be scanned again. */
  changesSchema?: boolean;
  /** The statement may change search_path, so the session must read it again. */
  changesSearchPath?: boolean;
}

const PERMISSION: Record<StatementClass, Permission | null> = {
  read: 'read',
  write: 'write',
  ddl: 'ddl',
  transaction: null,
  session: null,
  other: 'admin',
};

const SESSION_STATEMENTS = new Set([
  'VariableSetStmt',
  'DiscardStmt',
  'ListenStmt',
  'UnlistenStmt',
  'DeallocateStmt',
  'PrepareStmt',
  'DeclareCursorStmt',
  'FetchStmt',
  'ClosePortalStmt',
  'ConstraintsSetStmt',
]);

const READ_STATEMENTS = new Set(['VariableShowStmt']);

const WRITE_STATEMENTS = new Set([
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
  'NotifyStmt',
  'LockStmt',
  'ExecuteStmt',
]);

const OTHER_STATEMENTS = new Set([
  'DoStmt',
  'CallStmt',
  'VacuumStmt',
  'ClusterStmt',
  'CheckPointStmt',
  'LoadStmt',
  'ReindexStmt',
  'CreatedbStmt',
  'DropdbStmt',
  'AlterDatabaseStmt',
  'AlterDatabaseSetStmt',
  'AlterSystemStmt',
  'CreateRoleStmt',
  'AlterRoleStmt',
  'AlterRoleSetStmt',
  'DropRoleStmt',
  'CreateTableSpaceStmt',
  'DropTableSpaceStmt',
  'CreateSubscriptionStmt',
  'AlterSubscriptionStmt',
  'DropSubscriptionStmt',
  'CreatePublicationStmt',
  'AlterPublicationStmt',
]);

/** Functions that change data or sequences when a SELECT calls them: the SELECT fans out. */
const WRITING_FUNCTIONS = new Set(['setval', 'nextval', 'pg_notify', 'lo_unlink', 'lo_create']);
/** Functions that change session settings when a SELECT calls them: the SELECT runs everywhere. */
const SESSION_FUNCTIONS = new Set(['set_config']);

/** Settings that keep backends safe, or the proxy's reading of SQL right; a client may not change them. */
export const PROTECTED_SETTINGS = new Set([
  'default_transaction_read_only',
  'transaction_read_only',
  'standard_conforming_strings',
  'session_replication_role',
]);

function of(cls: StatementClass, extra: Partial<Classification> = {}): Classification {
  return { class: cls, permission: PERMISSION[cls], ...extra };
}

/**
 * Decides what a statement is, from its parse tree node (`{ SelectStmt: {...} }`). Reads go to
 * one backend; writes and DDL to all; session statements to all; transaction statements drive
 * the session's transaction state. See DESIGN.md, Statements.
 */
export function classify(node: Record<string, unknown>): Classification {
  const [type, body] = Object.entries(node)[0] ?? ['Unknown', {}];
  const stmt = (body ?? {}) as Record<string, unknown>;
  switch (type) {
    case 'SelectStmt':
      return classifySelect(stmt);
    case 'TransactionStmt':
      return classifyTransaction(stmt);
    case 'VariableSetStmt':
      return classifySet(stmt);
    case 'ExplainStmt':
      return classifyExplain(stmt);
    case 'CopyStmt':
      if (stmt['filename'] !== undefined || stmt['is_program'] === true) {
        return of('other', { refusal: 'COPY to or from a server file or program is not allowed' });
      }
      if (stmt['is_from'] === true) return of('write');
      if (stmt['query'] !== undefined) {
        const inner = classify(stmt['query'] as Record<string, unknown>);
        if (inner.class !== 'read') {
          return of(inner.class, {
            refusal: 'COPY (query) TO STDOUT of a statement that changes data is not allowed',
          });
        }
      }
      return of('read');
    case 'DeclareCursorStmt': {
      // A cursor runs its query as FETCH asks: it is a read, or it is refused.
      const inner = classify((stmt['query'] ?? {}) as Record<string, unknown>);
      if (inner.class !== 'read') {
        return of('session', {
          permission: 'read',
          refusal: 'a cursor over a statement that changes data is not allowed',
        });
      }
      return of('session', { permission: 'read' });
    }
    case 'FetchStmt':
    case 'ClosePortalStmt':
      return of('session', { permission: 'read' });
    case 'CreateTableAsStmt':
    case 'RefreshMatViewStmt':
      return of('ddl', { changesSchema: true });
  }
  if (READ_STATEMENTS.has(type)) return of('read');
  if (WRITE_STATEMENTS.has(type)) return of('write');
  if (SESSION_STATEMENTS.has(type)) return of('session');
  if (OTHER_STATEMENTS.has(type)) return of('other', { changesSchema: true });
  // Everything else (CREATE, ALTER, DROP, TRUNCATE, COMMENT, GRANT, ...) is DDL.
  return of('ddl', { changesSchema: true });
}

function classifySelect(stmt: Record<string, unknown>): Classification {
  if (stmt['intoClause'] !== undefined) return of('ddl', { changesSchema: true });
  if (stmt['lockingClause'] !== undefined) return of('write');
  const functions = new Set<string>();
  let modifyingCte = false;
  walk(stmt, (key, value) => {
    if (key === 'FuncCall') {
      const name = (value as { funcname?: { String?: { sval?: string } }[] }).funcname?.at(-1);
      if (name?.String?.sval !== undefined) functions.add(name.String.sval.toLowerCase());
    } else if (
      key === 'ctequery' &&
      typeof value === 'object' &&
      value !== null &&
      !('SelectStmt' in value)
    ) {
      modifyingCte = true;
    }
  });
  for (const name of functions) if (WRITING_FUNCTIONS.has(name)) return of('write');
  if (modifyingCte) return of('write');
  for (const name of functions) {
    if (!SESSION_FUNCTIONS.has(name)) continue;
    const refusal = setConfigRefusal(stmt);
    return of('session', {
      permission: 'read',
      changesSearchPath: true,
      ...(refusal === undefined ? {} : { refusal }),
    });
  }
  return of('read');
}

/**
 * set_config() may change any setting, so its first argument must be a constant naming a
 * setting a client may change.
 */
function setConfigRefusal(stmt: Record<string, unknown>): string | undefined {
  let refusal: string | undefined;
  walk(stmt, (key, value) => {
    if (key !== 'FuncCall' || refusal !== undefined) return;
    const call = value as { funcname?: { String?: { sval?: string } }[]; args?: unknown[] };
    if (call.funcname?.at(-1)?.String?.sval?.toLowerCase() !== 'set_config') return;
    const first = call.args?.[0] as { A_Const?: { sval?: { sval?: string } } } | undefined;
    const setting = first?.A_Const?.sval?.sval?.toLowerCase();
    if (setting === undefined) refusal = 'set_config() needs a constant setting name here';
    else if (PROTECTED_SETTINGS.has(setting)) {
      const value = (call.args?.[1] as { A_Const?: { sval?: { sval?: string } } } | undefined)
        ?.A_Const?.sval?.sval;
      if (!(setting === 'standard_conforming_strings' && value?.toLowerCase() === 'on')) {
        refusal = protectedRefusal(setting);
      }
    }
  });
  return refusal;
}

function protectedRefusal(setting: string): string {
  if (setting === 'standard_conforming_strings') {
    return 'standard_conforming_strings must stay on: the proxy reads SQL as PostgreSQL does with it on';
  }
  return `${setting} is managed by the proxy and cannot be changed by a client`;
}

function classifyTransaction(stmt: Record<string, unknown>): Classification {
  switch (stmt['kind']) {
    case 'TRANS_STMT_BEGIN':
    case 'TRANS_STMT_START':
      return of('transaction', { transaction: 'begin' });
    case 'TRANS_STMT_COMMIT':
      return of('transaction', { transaction: 'commit' });
    case 'TRANS_STMT_ROLLBACK':
      return of('transaction', { transaction: 'rollback' });
    case 'TRANS_STMT_SAVEPOINT':
      return of('transaction', { transaction: 'savepoint' });
    case 'TRANS_STMT_RELEASE':
      return of('transaction', { transaction: 'release' });
    case 'TRANS_STMT_ROLLBACK_TO':
      return of('transaction', { transaction: 'rollback_to' });
    default:
      return of('transaction', {
        transaction: 'two_phase',
        refusal:
          'two-phase commit statements are reserved for the proxy, which commits every backend itself',
      });
  }
}

function classifySet(stmt: Record<string, unknown>): Classification {
  const name = String(stmt['name'] ?? '').toLowerCase();
  if (name === 'standard_conforming_strings' && keepsOn(stmt)) return of('session');
  if (PROTECTED_SETTINGS.has(name)) return of('session', { refusal: protectedRefusal(name) });
  if (name === 'session characteristics' || (name === 'transaction' && setsReadMode(stmt))) {
    return of('session', {
      refusal:
        'the read-write mode of transactions is managed by the proxy: writes are sent to every backend in read-write transactions',
    });
  }
  if (name === 'transaction') return of('transaction', {});
  return of('session', {
    changesSearchPath: name === 'search_path' || stmt['kind'] !== 'VAR_SET_VALUE',
  });
}

/** `SET standard_conforming_strings = on` (as pg_dump writes): allowed, it changes nothing. */
function keepsOn(stmt: Record<string, unknown>): boolean {
  if (stmt['kind'] === 'VAR_SET_DEFAULT' || stmt['kind'] === 'VAR_RESET') return true;
  return /"(on|true|1)"/i.test(JSON.stringify(stmt['args'] ?? []));
}

function setsReadMode(stmt: Record<string, unknown>): boolean {
  return JSON.stringify(stmt['args'] ?? []).includes('transaction_read_only');
}

function classifyExplain(stmt: Record<string, unknown>): Classification {
  const options = (stmt['options'] ?? []) as { DefElem?: { defname?: string; arg?: unknown } }[];
  const analyze = options.some((o) => o.DefElem?.defname === 'analyze' && !isFalse(o.DefElem.arg));
  const inner = stmt['query'] as Record<string, unknown> | undefined;
  if (!analyze || inner === undefined) return of('read');
  const innerClass = classify(inner);
  // EXPLAIN ANALYZE runs the statement, so it is whatever the statement is.
  return innerClass.class === 'read'
    ? of('read')
    : of(innerClass.class, {
        refusal:
          'EXPLAIN ANALYZE of a change is not supported: it would run the change without its rollback',
      });
}

function isFalse(arg: unknown): boolean {
  const text = JSON.stringify(arg ?? '');
  return /"(false|off|0)"/i.test(text) || /"boolval":\{\}/.test(text);
}

/** Visits every keyed value of a parse tree, depth first. */
export function walk(node: unknown, visit: (key: string, value: unknown) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, visit);
  } else if (typeof node === 'object' && node !== null) {
    for (const [key, value] of Object.entries(node)) {
      visit(key, value);
      walk(value, visit);
    }
  }
}
