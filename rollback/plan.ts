import type { DeleteStmt, InsertStmt, SelectStmt, UpdateStmt } from 'libpg-query';
import { hasModifyingCte, nodeKind } from './ast.ts';
import { planDelete } from './delete.ts';
import { planInsert } from './insert.ts';
import { irreversible, modifyingCte, type ResolveTable } from './table.ts';
import type { CapturePlan, NoCapture } from './types.ts';
import { planUpdate } from './update.ts';

export { CONCURRENT_CHANGE, isConcurrentChange } from './outcome.ts';
export type { ResolveTable } from './table.ts';
export { type AfterImage, type EncodedUndo, encodeUndo } from './values.ts';

export interface PlanOptions {
  /** Most rows one change may capture; beyond it the change is recorded as irreversible. */
  maxRows: number;
}

/**
 * Plans the capture of one INSERT, UPDATE or DELETE so that its exact undo can be built from
 * what the statement and its `before` reads return at execution time.
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
    switch (kind) {
      case 'InsertStmt':
        return planInsert(node[kind] as InsertStmt, resolveTable, options);
      case 'UpdateStmt':
        return planUpdate(node[kind] as UpdateStmt, resolveTable, options);
      case 'DeleteStmt':
        return planDelete(node[kind] as DeleteStmt, resolveTable, options);
      case 'MergeStmt':
        // NOTE: MERGE is not captured; it needs the INSERT, UPDATE and DELETE captures combined,
        // one per WHEN action.
        return irreversible('MERGE is not captured yet');
      case 'SelectStmt':
        if (hasModifyingCte((node[kind] as SelectStmt).withClause)) {
          return modifyingCte();
        }
        return none(kind);
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
