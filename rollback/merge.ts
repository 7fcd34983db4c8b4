import type { MergeStmt, Node, ResTarget } from 'libpg-query';
import { irreversible } from './table.ts';
import type { NoCapture } from './types.ts';
import type { Writer } from './writers.ts';

interface WhenClause {
  matchKind?: string;
  commandType?: string;
  targetList?: Node[];
}

/**
 * MERGE as a writer: WHEN MATCHED actions update or delete target rows that join the source on
 * the ON condition, and WHEN NOT MATCHED actions insert. The rows it may update or delete are the
 * target joined to the source; PostgreSQL 15 has no other action.
 * https://www.postgresql.org/docs/15/sql-merge.html
 */
export function mergeWriter(stmt: MergeStmt, main: boolean): Writer | NoCapture {
  if ((stmt.returningClause?.exprs?.length ?? 0) > 0) {
    return irreversible('MERGE ... RETURNING is not captured');
  }
  const writer: Writer = {
    relation: stmt.relation!,
    label: 'MERGE',
    inserts: false,
    updates: false,
    deletes: false,
    setColumns: [],
    main,
  };
  for (const node of stmt.mergeWhenClauses ?? []) {
    const clause = (node as { MergeWhenClause?: WhenClause }).MergeWhenClause ?? {};
    if (clause.matchKind === 'MERGE_WHEN_NOT_MATCHED_BY_SOURCE') {
      // The rows it acts on do not join the source, so the read before it would miss them.
      return irreversible('MERGE ... WHEN NOT MATCHED BY SOURCE is not captured');
    }
    switch (clause.commandType) {
      case 'CMD_INSERT':
        writer.inserts = true;
        break;
      case 'CMD_UPDATE':
        writer.updates = true;
        for (const target of clause.targetList ?? []) {
          const name = (target as { ResTarget?: ResTarget }).ResTarget?.name;
          if (name !== undefined && !writer.setColumns.includes(name)) writer.setColumns.push(name);
        }
        break;
      case 'CMD_DELETE':
        writer.deletes = true;
        break;
      case 'CMD_NOTHING':
        break;
      default:
        return irreversible(
          `MERGE with a ${clause.commandType ?? 'missing'} action is not captured`,
        );
    }
  }
  if (writer.updates || writer.deletes) {
    writer.reach = {
      from: [
        {
          JoinExpr: {
            jointype: 'JOIN_INNER',
            larg: { RangeVar: stmt.relation! },
            rarg: stmt.sourceRelation,
            quals: stmt.joinCondition,
          },
        } as Node,
      ],
      where: undefined,
    };
  }
  return writer;
}
