import type {
  DeleteStmt,
  InsertStmt,
  MergeStmt,
  Node,
  ResTarget,
  UpdateStmt,
  WithClause,
} from 'libpg-query';
import { deparse, nodeKind } from './ast.ts';
import { mergeWriter } from './merge.ts';
import { irreversible, isNoCapture, type ResolveTable } from './table.ts';
import type { CapturePlan, NoCapture } from './types.ts';
import { planWrites, type Writer, type WritesOptions } from './writers.ts';

const MODIFYING = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

interface Cte {
  name: string;
  query: unknown;
  kind: string | undefined;
}

/**
 * MERGE, and any statement with data-modifying WITH queries: every part that changes a table
 * becomes a writer, captured by locked reads before and a read-back after (see writers.ts).
 * Parts run on one snapshot and cannot see each other's changes, so the reads before the
 * statement can match the same rows they will, as long as a part's FROM and WHERE do not read
 * the output of another data-modifying part.
 * https://www.postgresql.org/docs/15/queries-with.html#QUERIES-WITH-MODIFYING
 */
export function planWithWrites(
  node: Record<string, unknown>,
  resolve: ResolveTable,
  options: WritesOptions,
): CapturePlan | NoCapture {
  const kind = nodeKind(node)!;
  const body = node[kind] as { withClause?: WithClause; returningClause?: { exprs?: Node[] } };
  const withClause = body.withClause;
  const ctes: Cte[] = (withClause?.ctes ?? []).map((entry) => {
    const cte = (entry as { CommonTableExpr: { ctename?: string; ctequery?: Node } })
      .CommonTableExpr;
    const query = cte.ctequery ?? {};
    return { name: cte.ctename ?? '', query, kind: nodeKind(query) };
  });
  const unsafe = dependsOnWrites(ctes);
  const readable = (withClause?.ctes ?? []).filter((_, i) => !unsafe.has(ctes[i]!.name));
  const readWith: WithClause | undefined =
    readable.length > 0 ? { ...withClause, ctes: readable } : undefined;

  const writers: Writer[] = [];
  for (const cte of ctes) {
    if (cte.kind === undefined || !MODIFYING.has(cte.kind)) continue;
    const label = `${cte.kind.replace(/Stmt$/, '').toUpperCase()} in WITH ${cte.name}`;
    const writer = writerOf(cte.kind, cte.query as Node, label, false);
    if (isNoCapture(writer)) return writer;
    writers.push(writer);
  }
  if (kind !== 'SelectStmt') {
    const label = kind.replace(/Stmt$/, '').toUpperCase();
    const writer = writerOf(kind, node as Node, label, true);
    if (isNoCapture(writer)) return writer;
    writers.push(writer);
  }
  for (const writer of writers) {
    const read = writer.reach === undefined ? undefined : referenced(writer.reach, unsafe);
    if (read !== undefined) {
      // NOTE: a part whose rows depend on another data-modifying part's output is not captured;
      // the rows it matches cannot be read before the statement runs.
      return irreversible(
        `${writer.label} matches rows through ${read}, the output of a data-modifying WITH ` +
          'query, which cannot be read before the statement runs',
      );
    }
  }
  return planWrites(
    writers,
    { readWith, statement: deparse(node as Node), clientReturns: clientReturns(kind, body) },
    resolve,
    options,
  );
}

function clientReturns(kind: string, body: { returningClause?: { exprs?: Node[] } }): boolean {
  return kind === 'SelectStmt' || (body.returningClause?.exprs?.length ?? 0) > 0;
}

/** Names of WITH queries that change data, or read (directly or not) one that does. */
function dependsOnWrites(ctes: readonly Cte[]): Set<string> {
  const unsafe = new Set(ctes.filter((c) => MODIFYING.has(c.kind ?? '')).map((c) => c.name));
  let grew = true;
  while (grew) {
    grew = false;
    for (const cte of ctes) {
      if (!unsafe.has(cte.name) && referenced(cte.query, unsafe) !== undefined) {
        unsafe.add(cte.name);
        grew = true;
      }
    }
  }
  return unsafe;
}

/** The first unqualified relation name under `node` that is one of `names`. */
function referenced(node: unknown, names: ReadonlySet<string>): string | undefined {
  if (names.size === 0 || node === null || typeof node !== 'object') return undefined;
  if (Array.isArray(node)) {
    for (const item of node) {
      const found = referenced(item, names);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  const range = (node as { RangeVar?: { schemaname?: string; relname?: string } }).RangeVar;
  if (range?.relname !== undefined && range.schemaname === undefined && names.has(range.relname)) {
    return range.relname;
  }
  for (const value of Object.values(node)) {
    const found = referenced(value, names);
    if (found !== undefined) return found;
  }
  return undefined;
}

function writerOf(kind: string, query: Node, label: string, main: boolean): Writer | NoCapture {
  const body = (query as Record<string, unknown>)[kind] as {
    withClause?: WithClause;
    whereClause?: Node;
  };
  if (!main && body.withClause !== undefined) {
    return irreversible(`${label} has a WITH clause of its own, which is not captured`);
  }
  if (body.whereClause !== undefined && 'CurrentOfExpr' in body.whereClause) {
    return irreversible(`${label} ... WHERE CURRENT OF is not captured`);
  }
  switch (kind) {
    case 'MergeStmt':
      if (!main) return irreversible(`${label} is not captured`);
      return mergeWriter(body as MergeStmt, main);
    case 'InsertStmt': {
      const stmt = body as InsertStmt;
      if (stmt.onConflictClause?.action === 'ONCONFLICT_UPDATE') {
        // NOTE: INSERT ... ON CONFLICT DO UPDATE alongside data-modifying WITH queries is not
        // captured; the rows it updates are only known from its proposed rows.
        return irreversible(`${label} ... ON CONFLICT DO UPDATE is not captured`);
      }
      return { ...base(stmt, label, main), inserts: true };
    }
    case 'UpdateStmt': {
      const stmt = body as UpdateStmt;
      const setColumns = [
        ...new Set(
          (stmt.targetList ?? []).map((t) => (t as { ResTarget: ResTarget }).ResTarget.name!),
        ),
      ];
      return {
        ...base(stmt, label, main),
        updates: true,
        setColumns,
        reach: {
          from: [{ RangeVar: stmt.relation! }, ...(stmt.fromClause ?? [])],
          where: stmt.whereClause,
        },
      };
    }
    case 'DeleteStmt': {
      const stmt = body as DeleteStmt;
      return {
        ...base(stmt, label, main),
        deletes: true,
        reach: {
          from: [{ RangeVar: stmt.relation! }, ...(stmt.usingClause ?? [])],
          where: stmt.whereClause,
        },
      };
    }
    default:
      return irreversible(`${label} is not captured`);
  }
}

function base(stmt: InsertStmt | UpdateStmt | DeleteStmt, label: string, main: boolean): Writer {
  return {
    relation: stmt.relation!,
    label,
    inserts: false,
    updates: false,
    deletes: false,
    setColumns: [],
    main,
  };
}
