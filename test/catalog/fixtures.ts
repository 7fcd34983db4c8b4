import type { AuditEntryInput } from '../../src/cluster/audit.ts';
import { type ClusterMetadata, type TableMeta, tableKey } from '../../src/cluster/metadata.ts';

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

/** The sample schema's `employees`, as the scanner reports it (two of its columns). */
export const employees: TableMeta = {
  schema: 'test1',
  name: 'employees',
  kind: 'r',
  columns: [
    {
      name: 'id',
      type: 'integer',
      typeOid: 23,
      notNull: true,
      default: "nextval('test1.employees_id_seq'::regclass)",
      identity: '',
      generated: false,
    },
    {
      name: 'name',
      type: 'character varying(100)',
      typeOid: 1043,
      notNull: false,
      default: null,
      identity: '',
      generated: false,
    },
  ],
  primaryKey: ['id'],
  uniqueKeys: [],
  serialKey: true,
  foreignKeys: [],
  referencedBy: [],
  triggers: [],
  hasRules: false,
};

export const employeesProjects: TableMeta = {
  ...employees,
  name: 'employees_projects',
  columns: [
    { ...employees.columns[0]!, name: 'employee_id', default: null },
    { ...employees.columns[0]!, name: 'project_id', default: null },
  ],
  primaryKey: ['employee_id', 'project_id'],
  serialKey: false,
  foreignKeys: [
    {
      name: 'employees_projects_employee_id_fkey',
      schema: 'test1',
      table: 'employees_projects',
      columns: ['employee_id'],
      referencedSchema: 'test1',
      referencedTable: 'employees',
      referencedColumns: ['id'],
      onDelete: 'c',
      onUpdate: 'a',
    },
  ],
};

export function metadata(cluster: string, list: TableMeta[]): ClusterMetadata {
  return {
    cluster,
    tables: new Map(list.map((t) => [tableKey(t.schema, t.name), t])),
    scannedAt: new Date(),
  };
}
