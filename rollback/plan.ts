import type {
  DeleteStmt,
  InsertStmt,
  Node,
  RangeVar,
  SelectStmt,
  UpdateStmt,
  WithClause,
} from 'libpg-query';
import { hasModifyingCte, nodeKind } from './ast.ts';
import { planWithWrites } from './cte.ts';
import { planDelete } from './delete.ts';
import { planInsert } from './insert.ts';
import { irreversible, type ResolveTable } from './table.ts';
import type { CapturePlan, NoCapture } from './types.ts';
import { planUpdate } from './update.ts';

export { CONCURRENT_CHANGE, isConcurrentChange } from './outcome.ts';
export type { ResolveTable } from './table.ts';
export { type AfterImage, type EncodedUndo, encodeUndo } from './values.ts';

export interface PlanOptions {
  /** Most rows one change may capture; beyond it the change is recorded as irreversible. */
  maxRows: number;
  /**
   * Tables (`schema.table`, as `tableKey` writes them) the transaction changed before this
   * statement. MERGE and data-modifying WITH read their rows back by transaction id, which
   * cannot tell them from rows written earlier in the transaction.
   */
  changedTables?: ReadonlySet<string>;
  /** The statement runs inside a savepoint (a subtransaction, with a transaction id of its own). */
  inSavepoint?: boolean;
}

/** True for what `planCapture` captures: INSERT, UPDATE, DELETE, MERGE, SELECT writing in WITH. */
export function isCaptured(node: unknown): boolean {
  const kind = nodeKind(node);
  if (kind === 'SelectStmt') {
    return hasModifyingCte(((node as Record<string, SelectStmt>)[kind] as SelectStmt).withClause);
  }
  return (
    kind === 'InsertStmt' || kind === 'UpdateStmt' || kind === 'DeleteStmt' || kind === 'MergeStmt'
  );
}

/** Relations an INSERT, UPDATE, DELETE or MERGE writes: its target and its WITH queries'. */
export function writtenRelations(node: unknown): RangeVar[] {
  const kind = nodeKind(node);
  if (kind === undefined) return [];
  const body = (node as Record<string, { relation?: RangeVar; withClause?: WithClause }>)[kind];
  const relations = body?.relation === undefined ? [] : [body.relation];
  for (const cte of body?.withClause?.ctes ?? []) {
    const query = (cte as { CommonTableExpr?: { ctequery?: Node } }).CommonTableExpr?.ctequery;
    if (query !== undefined && hasModifyingCte({ ctes: [cte] })) {
      relations.push(...writtenRelations(query));
    }
  }
  return relations;
}

/**
 * Plans the capture of one INSERT, UPDATE, DELETE or MERGE (or a statement with data-modifying
 * WITH queries) so that its exact undo can be built from what the statement and the reads
 * around it return at execution time.
 *
 * `node` is one parsed statement (`{ InsertStmt: ... }`), which is never modified; the SQL that
 * runs is deparsed from it (`sql` is not read). Statements in `before` may not reference every
 * parameter of the client's statement: the proxy prepares them with the client statement's
 * parameter types (as its ParameterDescription reports them).
 */
export function planCapture(
  stmt: { node: unknown; sql: string },
  resolveTable: ResolveTable,
  options: PlanOptions,
): CapturePlan | NoCapture {
  const node = stmt.node as Record<string, unknown>;
  const kind = nodeKind(node);
  try {
    const withClause = (node[kind ?? ''] as { withClause?: WithClause } | undefined)?.withClause;
    if (kind === 'MergeStmt' || hasModifyingCte(withClause)) {
      return planWithWrites(node, resolveTable, options);
    }
    switch (kind) {
      case 'InsertStmt':
        return planInsert(node[kind] as InsertStmt, resolveTable, options);
      case 'UpdateStmt':
        return planUpdate(node[kind] as UpdateStmt, resolveTable, options);
      case 'DeleteStmt':
        return planDelete(node[kind] as DeleteStmt, resolveTable, options);
      default:
        return none(kind);
    }
  } catch (error) {
    // The statement can still run unchanged; only its undo is lost.
    return irreversible(`the capture could not be planned: ${(error as Error).message}`);
  }
}

function none(kind: string | undefined): NoCapture {
  return { reversibility: 'none', reason: `${kind ?? 'this statement'} changes no table rows` };
}
