import type { AuditEntryInput } from '../../src/cluster/audit.ts';

/** An audit entry for tests: a committed single-row INSERT unless `overrides` say otherwise. */
export function entry(overrides: Partial<AuditEntryInput> = {}): AuditEntryInput {
  return {
    cluster: 'prod',
    user: 'alice',
    session: 'session-1',
    transaction: null,
    kind: 'write',
    sql: "INSERT INTO test1.employees (name) VALUES ('PEPE')",
    params: null,
    outcome: 'committed',
    error: null,
    durationMs: 1.25,
    rowCount: 1,
    commandTag: 'INSERT 0 1',
    rollback: null,
    reversibility: 'exact',
    reason: null,
    rollbackOf: null,
    afterImage: null,
    ...overrides,
  };
}

/** A read, as recordLater receives it. */
export function readEntry(overrides: Partial<AuditEntryInput> = {}): AuditEntryInput {
  return entry({
    kind: 'read',
    sql: 'SELECT * FROM test1.employees',
    outcome: 'executed',
    rowCount: 3,
    commandTag: 'SELECT 3',
    reversibility: 'none',
    reason: 'a read changes nothing',
    ...overrides,
  });
}
