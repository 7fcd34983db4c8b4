import { QuoteUtils } from 'pgsql-deparser';
import type { Rollback, UndoStatement, UndoValue } from '../src/cluster/audit.ts';
import type { TableMeta } from '../src/cluster/metadata.ts';
import type { CapturedValue } from './types.ts';
import { isPortableOid, toUndoValue } from './values.ts';

/** PostgreSQL's limit on the parameters of one statement (Bind carries an int16 count). */
const MAX_PARAMS = 65535;
/** Rows per undo statement, so that one statement stays a reasonable size to parse and log. */
const MAX_ROWS_PER_STATEMENT = 1000;

/** An identifier, quoted only when PostgreSQL's quote_ident would quote it. */
export function quoteIdent(name: string): string {
  return QuoteUtils.quoteIdentifier(name);
}

export function tableName(table: Pick<TableMeta, 'schema' | 'name'>): string {
  return `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
}

export function columnList(columns: readonly string[]): string {
  return columns.map(quoteIdent).join(', ');
}

/** Rows per statement when each row binds `paramsPerRow` parameters. */
export function rowsPerStatement(paramsPerRow: number): number {
  return Math.max(1, Math.min(MAX_ROWS_PER_STATEMENT, Math.floor(MAX_PARAMS / paramsPerRow)));
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/**
 * Builds one undo statement twice at once: the SQL that runs, with `$n` bound to binary values,
 * and the same statement with literals for people. Values of non-portable types (user types,
 * whose OIDs differ per backend) get a cast by type name so each backend infers its own OID.
 */
export class UndoBuilder {
  private sql = '';
  private shown = '';
  private readonly params: UndoValue[] = [];

  text(sql: string): this {
    this.sql += sql;
    this.shown += sql;
    return this;
  }

  value(captured: CapturedValue, type: string): this {
    const param = toUndoValue(captured, type);
    this.params.push(param);
    const placeholder = `$${this.params.length}`;
    this.sql += isPortableOid(captured.oid) ? placeholder : `${placeholder}::${type}`;
    this.shown += param.text ?? `${placeholder} /* ${type} */`;
    return this;
  }

  /** Values separated by `, `, each with its column type. */
  values(captured: readonly CapturedValue[], types: readonly string[]): this {
    captured.forEach((v, i) => {
      if (i > 0) this.text(', ');
      this.value(v, types[i] ?? 'unknown');
    });
    return this;
  }

  finish(): { statement: UndoStatement; display: string } {
    return { statement: { sql: this.sql, params: this.params }, display: `${this.shown};` };
  }
}

/** A rollback from built statements, in order. */
export function rollbackOf(built: { statement: UndoStatement; display: string }[]): Rollback {
  if (built.length === 0) return { statements: [], display: '-- no rows changed: nothing to undo' };
  return {
    statements: built.map((b) => b.statement),
    display: built.map((b) => b.display).join('\n'),
  };
}

/** `k1 = $1 AND k2 = $2`: addresses one row by its key. */
export function matchKey(
  b: UndoBuilder,
  key: readonly string[],
  values: readonly CapturedValue[],
  types: readonly string[],
): void {
  key.forEach((column, i) => {
    b.text(`${i === 0 ? '' : ' AND '}${quoteIdent(column)} = `).value(values[i]!, types[i]!);
  });
}
