/** The classes a statement falls into; each needs a permission (see src/sql/classify.ts). */
export type StatementClass = 'read' | 'write' | 'ddl' | 'transaction' | 'session' | 'other';
