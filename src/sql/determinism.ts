import { parseSync } from 'libpg-query';
import { deparseSync } from 'pgsql-deparser';
import type { TableMeta } from '../cluster/metadata.ts';

/**
 * Writes that each backend would evaluate differently (the clock, random values, sequences)
 * are made identical before they run: every such expression is evaluated once, on one backend,
 * and the statement sent to all backends carries the values as typed literals.
 */

/** Same value for the whole statement (the transaction's or the statement's time). */
const TIME_FUNCTIONS = new Set(['now', 'transaction_timestamp', 'statement_timestamp']);
const TIME_VALUE_FUNCTIONS = new Set([
  'SVFOP_CURRENT_DATE',
  'SVFOP_CURRENT_TIME',
  'SVFOP_CURRENT_TIME_N',
  'SVFOP_CURRENT_TIMESTAMP',
  'SVFOP_CURRENT_TIMESTAMP_N',
  'SVFOP_LOCALTIME',
  'SVFOP_LOCALTIME_N',
  'SVFOP_LOCALTIMESTAMP',
  'SVFOP_LOCALTIMESTAMP_N',
]);
/** A new value at every call. */
const PER_CALL_FUNCTIONS = new Set([
  'random',
  'random_normal',
  'gen_random_uuid',
  'uuid_generate_v1',
  'uuid_generate_v1mc',
  'uuid_generate_v4',
  'clock_timestamp',
  'timeofday',
  'nextval',
]);

type Kind = 'time' | 'per-call';

interface Site {
  parent: Record<string, unknown> | unknown[];
  key: string | number;
  kind: Kind;
  /** The expression as SQL, evaluated on one backend. */
  sql: string;
  /** The sequence argument when the expression is nextval(...). */
  sequence?: string;
}

export interface EvaluatedValue {
  text: string | null;
  type: string;
}

export interface DeterminismPlan {
  /** One query for one backend; its rows are (group, text, type), group by group, in order. */
  evaluate: string;
  /** The statement with the values in place, and statements that keep other backends' sequences level. */
  apply(rows: [number, string | null, string][]): {
    node: Record<string, unknown>;
    sql: string;
    sequenceSync: string[];
  };
}

export type DeterminismResult = { plan: DeterminismPlan } | { refusal: string } | null;

function funcName(node: Record<string, unknown>): string | undefined {
  const names = (node['funcname'] ?? []) as { String?: { sval?: string } }[];
  return names.at(-1)?.String?.sval?.toLowerCase();
}

/** Whether a parse tree contains anything volatile, without copying it (the common case: no). */
function hasVolatile(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(hasVolatile);
  if (typeof node !== 'object' || node === null) return false;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'FuncCall') {
      const name = funcName(value as Record<string, unknown>);
      if (name !== undefined && (TIME_FUNCTIONS.has(name) || PER_CALL_FUNCTIONS.has(name)))
        return true;
    } else if (key === 'SQLValueFunction') {
      if (TIME_VALUE_FUNCTIONS.has(String((value as { op?: string }).op))) return true;
    }
    if (hasVolatile(value)) return true;
  }
  return false;
}

function deparseExpression(node: unknown): string {
  return deparseSync(node as never, { pretty: false } as never);
}

/** Finds volatile expressions under `container[key]`; `inValues` marks a VALUES list item. */
function collect(
  container: Record<string, unknown> | unknown[],
  key: string | number,
  inValues: boolean,
  sites: Site[],
  refusals: string[],
): void {
  const node = (container as Record<string | number, unknown>)[key];
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) collect(node, i, inValues, sites, refusals);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const record = node as Record<string, unknown>;
  const call = record['FuncCall'] as Record<string, unknown> | undefined;
  const svf = record['SQLValueFunction'] as { op?: string } | undefined;
  let kind: Kind | undefined;
  const name = call === undefined ? undefined : funcName(call);
  if (name !== undefined && TIME_FUNCTIONS.has(name)) kind = 'time';
  else if (name !== undefined && PER_CALL_FUNCTIONS.has(name)) kind = 'per-call';
  else if (svf !== undefined && TIME_VALUE_FUNCTIONS.has(String(svf.op))) kind = 'time';
  if (kind !== undefined) {
    const sql = deparseExpression(record);
    if (JSON.stringify(call?.['args'] ?? []).includes('ColumnRef')) {
      refusals.push(`${sql} depends on row values, so each backend would compute it differently`);
      return;
    }
    if (kind === 'per-call' && !inValues) {
      refusals.push(
        `${sql} would give each backend a different value; the proxy can fix it only in INSERT ... VALUES`,
      );
      return;
    }
    const site: Site = { parent: container, key, kind, sql };
    if (name === 'nextval')
      site.sequence = deparseExpression((call?.['args'] as unknown[] | undefined)?.[0]);
    sites.push(site);
    return;
  }
  for (const child of Object.keys(record)) collect(record, child, inValues, sites, refusals);
}

const typeNames = new Map<string, unknown>();

/** The parse tree of a type name, as PostgreSQL's own grammar reads it (`timestamp with time zone`). */
function typeNameNode(type: string): unknown {
  let node = typeNames.get(type);
  if (node === undefined) {
    const parsed = parseSync(`SELECT NULL::${type}`) as {
      stmts: {
        stmt: {
          SelectStmt: { targetList: { ResTarget: { val: { TypeCast: { typeName: unknown } } } }[] };
        };
      }[];
    };
    node = parsed.stmts[0]?.stmt.SelectStmt.targetList[0]?.ResTarget.val.TypeCast.typeName;
    typeNames.set(type, node);
  }
  return node;
}

function literal(value: EvaluatedValue): unknown {
  if (value.text === null) return { A_Const: { isnull: true } };
  return {
    TypeCast: {
      arg: { A_Const: { sval: { sval: value.text } } },
      typeName: typeNameNode(value.type),
    },
  };
}

/**
 * Plans how to make an INSERT, UPDATE, DELETE or MERGE deterministic. Returns null when it
 * already is, a refusal when the proxy cannot make it so, or the plan.
 */
export function planDeterminism(
  node: Record<string, unknown>,
  table: TableMeta | undefined,
): DeterminismResult {
  const type = Object.keys(node)[0] ?? '';
  const insert = type === 'InsertStmt' ? (node[type] as Record<string, unknown>) : undefined;
  const defaults =
    insert !== undefined && table !== undefined ? volatileDefaults(insert, table) : [];
  if (!hasVolatile(node) && defaults.length === 0) return null;
  const copy = structuredClone(node);
  const body = copy[type] as Record<string, unknown>;
  const sites: Site[] = [];
  const refusals: string[] = [];
  if (insert !== undefined && body['selectStmt'] === undefined && defaults.length > 0) {
    // INSERT ... DEFAULT VALUES is one row of defaults: written out as VALUES, its volatile
    // defaults get values like any other row's.
    body['selectStmt'] = {
      SelectStmt: {
        valuesLists: [{ List: { items: [] } }],
        limitOption: 'LIMIT_OPTION_DEFAULT',
        op: 'SETOP_NONE',
      },
    };
  }
  const select = (body['selectStmt'] as { SelectStmt?: Record<string, unknown> } | undefined)
    ?.SelectStmt;
  const rows = select?.['valuesLists'] as { List: { items: unknown[] } }[] | undefined;
  if (insert !== undefined && rows !== undefined && table !== undefined) {
    addDefaultColumns(body, rows, table, defaults);
  } else if (select !== undefined && defaults.length > 0) {
    addClockDefaults(body, select, defaults);
  }
  for (const item of Object.keys(body)) {
    if (item === 'selectStmt' && rows !== undefined) {
      const { valuesLists: _, ...rest } = select as Record<string, unknown>;
      for (const key of Object.keys(rest))
        collect(select as Record<string, unknown>, key, false, sites, refusals);
      for (const row of rows) collect(row.List, 'items', true, sites, refusals);
    } else {
      collect(body, item, false, sites, refusals);
    }
  }
  if (refusals.length > 0) return { refusal: refusals[0] as string };
  if (sites.length === 0) return null;

  // One branch per distinct expression: a time function is evaluated once, a per-call one once per site.
  const groups: { sql: string; count: number; sequence?: string }[] = [];
  const siteGroup: number[] = [];
  for (const site of sites) {
    let index = groups.findIndex((g) => g.sql === site.sql);
    if (index < 0) {
      index =
        groups.push({
          sql: site.sql,
          count: 0,
          ...(site.sequence === undefined ? {} : { sequence: site.sequence }),
        }) - 1;
    }
    const group = groups[index] as { count: number };
    if (site.kind === 'per-call' || group.count === 0) group.count++;
    siteGroup.push(index);
  }
  const evaluate = groups
    .map(
      (g, i) =>
        `SELECT ${i} AS g, x::text, pg_catalog.pg_typeof(x)::text FROM (SELECT ${g.sql} AS x FROM pg_catalog.generate_series(1, ${g.count}) OFFSET 0) s`,
    )
    .join(' UNION ALL ');
  return {
    plan: {
      evaluate,
      apply(result) {
        const byGroup = groups.map(() => [] as EvaluatedValue[]);
        for (const [g, text, valueType] of result) byGroup[g]?.push({ text, type: valueType });
        const next = groups.map(() => 0);
        sites.forEach((site, i) => {
          const g = siteGroup[i] as number;
          const values = byGroup[g] as EvaluatedValue[];
          const at = site.kind === 'time' ? 0 : (next[g] ?? 0);
          next[g] = at + 1;
          const value = values[at];
          (site.parent as Record<string | number, unknown>)[site.key] = literal(
            value ?? { text: null, type: 'text' },
          );
        });
        const sequenceSync = groups.flatMap((g, i) => {
          if (g.sequence === undefined) return [];
          const max = (byGroup[i] ?? []).reduce(
            (m, v) => (v.text !== null && BigInt(v.text) > m ? BigInt(v.text) : m),
            0n,
          );
          return [
            `SELECT pg_catalog.setval(${g.sequence}, ${max}) FROM (SELECT coalesce(pg_catalog.pg_sequence_last_value((${g.sequence})::regclass), 0) AS v) s WHERE s.v < ${max}`,
          ];
        });
        return { node: copy, sql: deparseExpression(copy), sequenceSync };
      },
    },
  };
}

/** Columns an INSERT leaves to a default that calls the clock, a random source or a sequence. */
function volatileDefaults(
  insert: Record<string, unknown>,
  table: TableMeta,
): { column: string; sql: string }[] {
  const listed = new Set(
    ((insert['cols'] ?? []) as { ResTarget: { name: string } }[]).map((c) => c.ResTarget.name),
  );
  const implicit = listed.size === 0;
  const out: { column: string; sql: string }[] = [];
  for (const column of table.columns) {
    if (column.generated || (!implicit && listed.has(column.name))) continue;
    let sql = column.default;
    if (column.identity !== '') {
      const qualified = `${quote(table.schema)}.${quote(table.name)}`;
      sql = `nextval(pg_catalog.pg_get_serial_sequence('${qualified.replaceAll("'", "''")}', '${column.name.replaceAll("'", "''")}')::regclass)`;
    }
    if (sql === null) continue;
    if (defaultIsVolatile(sql)) out.push({ column: column.name, sql });
  }
  return out;
}

const volatileDefault = new Map<string, boolean>();

function defaultIsVolatile(sql: string): boolean {
  let volatile = volatileDefault.get(sql);
  if (volatile === undefined) {
    const parsed = parseSync(`SELECT ${sql}`) as { stmts: { stmt: unknown }[] };
    volatile = hasVolatile(parsed.stmts[0]?.stmt);
    if (volatileDefault.size > 10_000) volatileDefault.clear();
    volatileDefault.set(sql, volatile);
  }
  return volatile;
}

/** True when a default's only volatile calls are to the clock (one value per statement). */
function clockOnly(sql: string): boolean {
  const parsed = parseSync(`SELECT ${sql}`) as { stmts: { stmt: unknown }[] };
  let perCall = false;
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (typeof node === 'object' && node !== null) {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'FuncCall') {
          const name = funcName(value as Record<string, unknown>);
          if (name !== undefined && PER_CALL_FUNCTIONS.has(name)) perCall = true;
        }
        visit(value);
      }
    }
  };
  visit(parsed.stmts[0]?.stmt);
  return !perCall;
}

/**
 * INSERT ... SELECT: a default that calls only the clock has one value for every row, so it is
 * written into the SELECT list and gets its value like any other clock call.
 * NOTE: defaults that call a sequence or a random source in INSERT ... SELECT are left to each backend; a serial key that differs aborts the change.
 */
function addClockDefaults(
  body: Record<string, unknown>,
  select: Record<string, unknown>,
  defaults: { column: string; sql: string }[],
): void {
  const cols = (body['cols'] ?? []) as { ResTarget: { name: string } }[];
  const targets = select['targetList'] as unknown[] | undefined;
  // Only a plain SELECT with named columns: a set operation or `*` hides how many there are.
  if (cols.length === 0 || targets === undefined || select['op'] !== 'SETOP_NONE') return;
  if (JSON.stringify(targets).includes('A_Star')) return;
  for (const { column, sql } of defaults) {
    if (!clockOnly(sql)) continue;
    const parsed = parseSync(`SELECT ${sql}`) as {
      stmts: { stmt: { SelectStmt: { targetList: { ResTarget: { val: unknown } }[] } } }[];
    };
    cols.push({ ResTarget: { name: column } });
    targets.push({
      ResTarget: { val: parsed.stmts[0]?.stmt.SelectStmt.targetList[0]?.ResTarget.val },
    });
  }
  body['cols'] = cols;
}

function quote(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

/**
 * Makes the INSERT name every column it fills, and fills the volatile-default ones itself:
 * their default expression is then one more site per row, replaced by a value.
 */
function addDefaultColumns(
  body: Record<string, unknown>,
  rows: { List: { items: unknown[] } }[],
  table: TableMeta,
  defaults: { column: string; sql: string }[],
): void {
  if (defaults.length === 0) return;
  let cols = (body['cols'] ?? []) as { ResTarget: { name: string } }[];
  if (cols.length === 0) {
    const width = Math.max(...rows.map((row) => row.List.items.length));
    cols = table.columns
      .filter((c) => !c.generated)
      .slice(0, width)
      .map((c) => ({ ResTarget: { name: c.name } }));
  }
  const expression = (sql: string) =>
    (
      parseSync(`SELECT ${sql}`) as {
        stmts: { stmt: { SelectStmt: { targetList: { ResTarget: { val: unknown } }[] } } }[];
      }
    ).stmts[0]?.stmt.SelectStmt.targetList[0]?.ResTarget.val;
  const byName = new Map(defaults.map((d) => [d.column, d.sql]));
  // DEFAULT written in VALUES for such a column becomes its expression too.
  cols.forEach((col, i) => {
    const sql = byName.get(col.ResTarget.name);
    if (sql === undefined) return;
    for (const row of rows)
      if (row.List.items[i] !== undefined && 'SetToDefault' in (row.List.items[i] as object))
        row.List.items[i] = expression(sql);
    byName.delete(col.ResTarget.name);
  });
  for (const [column, sql] of byName) {
    if (cols.some((c) => c.ResTarget.name === column)) continue;
    cols.push({ ResTarget: { name: column } });
    for (const row of rows) {
      while (row.List.items.length < cols.length - 1) row.List.items.push({ SetToDefault: {} });
      row.List.items.push(expression(sql));
    }
  }
  body['cols'] = cols;
  if (
    table.columns.some(
      (c) => c.identity === 'a' && cols.some((col) => col.ResTarget.name === c.name),
    )
  ) {
    body['override'] = 'OVERRIDING_SYSTEM_VALUE';
  }
}
