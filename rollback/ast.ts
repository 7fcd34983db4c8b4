import type { Node, RangeVar, ReturningClause, WithClause } from 'libpg-query';
import { deparseSync } from 'pgsql-deparser';

/*
 * The parser's results are cached and shared between sessions, so nothing here mutates a node
 * it was given: rewritten statements are new objects that share the untouched children (a
 * 1000-row VALUES list is not copied). The deparser does not mutate its input either.
 */

/** The name a statement's target is visible as: its alias, else its unqualified name. */
export function visibleName(relation: RangeVar): string {
  return relation.alias?.aliasname ?? relation.relname ?? '';
}

export function columnRef(qualifier: string, column: string): Node {
  return {
    ColumnRef: { fields: [{ String: { sval: qualifier } }, { String: { sval: column } }] },
  };
}

export function targetOf(val: Node): Node {
  return { ResTarget: { val } };
}

/** Target-list entries reading `columns` of the relation visible as `qualifier`. */
export function columnTargets(qualifier: string, columns: readonly string[]): Node[] {
  return columns.map((c) => targetOf(columnRef(qualifier, c)));
}

/**
 * A RETURNING clause with `hidden` appended after the client's own entries (RETURNING is the
 * last clause of INSERT, UPDATE and DELETE, so the client's columns keep their positions).
 */
export function withHiddenReturning(
  clause: ReturningClause | undefined,
  hidden: Node[],
): ReturningClause {
  return { ...clause, exprs: [...(clause?.exprs ?? []), ...hidden] };
}

export function clientReturns(clause: ReturningClause | undefined): boolean {
  return (clause?.exprs?.length ?? 0) > 0;
}

const MODIFYING = ['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'];

/** True when a WITH clause holds an INSERT, UPDATE, DELETE or MERGE. */
export function hasModifyingCte(withClause: WithClause | undefined): boolean {
  return (withClause?.ctes ?? []).some((cte) => {
    const query = (cte as { CommonTableExpr?: { ctequery?: Node } }).CommonTableExpr?.ctequery;
    return query !== undefined && MODIFYING.some((kind) => kind in query);
  });
}

export function deparse(node: Node): string {
  return deparseSync(node, { pretty: false });
}

/** The name of the single key of a node such as `{ InsertStmt: {...} }`. */
export function nodeKind(node: unknown): string | undefined {
  if (node === null || typeof node !== 'object') return undefined;
  const keys = Object.keys(node);
  return keys.length === 1 ? keys[0] : undefined;
}
