import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type LineCounter,
  type Node,
  type YAMLSeq,
} from 'yaml';
import { type Env, interpolate } from './env.ts';
import type { ConfigIssue } from './errors.ts';
import { suggestKey } from './suggest.ts';

export type KeyPath = readonly (string | number)[];

/** `clusters.prod.backends[0].port`; keys that are not identifiers are quoted: `x["a.b"]`. */
export function formatPath(path: KeyPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

/** One key of a mapping, with the nodes to point at when it is wrong. */
export interface Entry {
  key: string;
  keyNode: Node;
  /** Null for `key:` with nothing after it. */
  value: Node | null;
  path: KeyPath;
}

/** A mapping that has been checked for unknown and duplicate keys. */
export interface Fields {
  /** The mapping, or the key of an empty value read as an empty mapping. */
  node: Node;
  path: KeyPath;
  entries: Map<string, Entry>;
}

export interface MappingRules {
  /** The keys allowed; undefined allows any key (the names of clusters). */
  known?: readonly string[];
  /** Keys people write by habit, and the key meant: `{ dbname: 'database' }`. */
  hints?: Readonly<Record<string, string>>;
  /** Keys skipped without a word, e.g. `x-` extension keys that hold YAML anchors. */
  ignore?: (key: string) => boolean;
  /** The message for a key given twice; the default names the key and the first line. */
  duplicate?: (key: string, firstLine: number) => string;
}

export interface Text {
  value: string;
  /** True when a `${VAR:-default}` fell back to its default. */
  usedDefault: boolean;
}

/**
 * Walks the nodes of a parsed YAML document (not its plain JS value), so that every problem
 * can name its line, column and key path, and collects problems instead of stopping at one.
 */
export class ConfigReader {
  readonly issues: ConfigIssue[] = [];

  constructor(
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
    private readonly env: Env,
  ) {}

  line(node: Node | null | undefined): number {
    return this.lineCounter.linePos(node?.range?.[0] ?? 0).line;
  }

  report(at: Node | null | undefined, path: KeyPath, message: string): void {
    const position = this.lineCounter.linePos(at?.range?.[0] ?? 0);
    this.issues.push({
      line: position.line,
      column: position.col,
      path: formatPath(path),
      message,
    });
  }

  /** Follows aliases (`*name`) to the node they name. */
  resolve(node: unknown): Node | null {
    if (isAlias(node)) return (node.resolve(this.doc) as Node | undefined) ?? null;
    return (node as Node | null | undefined) ?? null;
  }

  isEmpty(node: Node | null): boolean {
    return node === null || (isScalar(node) && node.value === null);
  }

  /** What a wrong value was, for "expected X, got Y"; never the text of a sensitive value. */
  describe(node: Node | null, sensitive = false): string {
    if (this.isEmpty(node)) return 'nothing';
    if (isMap(node)) return 'a mapping';
    if (isSeq(node)) return 'a list';
    if (isScalar(node)) {
      const value = node.value;
      if (typeof value === 'string') return sensitive ? 'a string' : JSON.stringify(value);
      if (sensitive) return `a ${typeof value}`;
      return node.source ?? String(value);
    }
    return 'an unsupported YAML node';
  }

  mapping(node: Node | null, path: KeyPath, rules: MappingRules = {}): Fields | undefined {
    const resolved = this.resolve(node);
    if (!isMap(resolved)) {
      this.report(resolved, path, `expected a mapping, got ${this.describe(resolved)}`);
      return undefined;
    }
    const entries = new Map<string, Entry>();
    const merged = new Map<string, Entry>();
    for (const pair of resolved.items) {
      const keyNode = this.resolve(pair.key);
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
        this.report(
          keyNode ?? resolved,
          path,
          `expected a plain key, got ${this.describe(keyNode)}`,
        );
        continue;
      }
      const key = String(keyNode.value);
      const value = this.resolve(pair.value);
      if (key === '<<') {
        this.merge(value, path, merged);
        continue;
      }
      if (rules.ignore?.(key)) continue;
      const first = entries.get(key);
      if (first !== undefined) {
        const firstLine = this.line(first.keyNode);
        const message =
          rules.duplicate?.(key, firstLine) ??
          `duplicate key \`${key}\` (first at line ${firstLine})`;
        this.report(keyNode, [...path, key], message);
        continue;
      }
      entries.set(key, { key, keyNode, value, path: [...path, key] });
    }
    for (const [key, entry] of merged) if (!entries.has(key)) entries.set(key, entry);
    if (rules.known !== undefined) {
      for (const entry of entries.values()) {
        if (rules.known.includes(entry.key)) continue;
        this.report(entry.keyNode, entry.path, this.unknownKey(entry.key, rules));
        entries.delete(entry.key);
      }
    }
    return { node: resolved, path, entries };
  }

  /** `<<: *defaults` (YAML 1.1 merge keys): keys of the merged mappings, earlier ones winning. */
  private merge(value: Node | null, path: KeyPath, into: Map<string, Entry>): void {
    const sources = isSeq(value) ? value.items.map((item) => this.resolve(item)) : [value];
    for (const source of sources) {
      if (!isMap(source)) {
        this.report(
          source,
          [...path, '<<'],
          `expected a mapping to merge, got ${this.describe(source)}`,
        );
        continue;
      }
      for (const pair of source.items) {
        const keyNode = this.resolve(pair.key);
        if (!isScalar(keyNode) || keyNode.value === null) continue;
        const key = String(keyNode.value);
        if (into.has(key)) continue;
        into.set(key, { key, keyNode, value: this.resolve(pair.value), path: [...path, key] });
      }
    }
  }

  private unknownKey(key: string, rules: MappingRules): string {
    const known = rules.known ?? [];
    const meant = rules.hints?.[key] ?? suggestKey(key, known);
    if (meant !== undefined) return `unknown key; did you mean \`${meant}\`?`;
    return `unknown key; expected one of ${known.map((k) => `\`${k}\``).join(', ')}`;
  }

  list(node: Node | null, path: KeyPath): YAMLSeq | undefined {
    const resolved = this.resolve(node);
    if (isSeq(resolved)) return resolved;
    this.report(resolved, path, `expected a list, got ${this.describe(resolved)}`);
    return undefined;
  }

  /** Reports a required key that is absent (or empty), at the mapping that should hold it. */
  missing(fields: Fields, key: string, hint = ''): void {
    const at = fields.entries.get(key)?.value ?? fields.node;
    this.report(at, [...fields.path, key], `required${hint === '' ? '' : `; ${hint}`}`);
  }

  /**
   * A string value with `${VAR}` references replaced. Numbers and booleans are taken as written
   * (`password: 0123` is the string `0123`), since YAML types bare words people mean as text.
   */
  text(node: Node | null, path: KeyPath, sensitive = false): Text | undefined {
    if (!isScalar(node) || node.value === null) {
      this.report(node, path, `expected a string, got ${this.describe(node, sensitive)}`);
      return undefined;
    }
    if (typeof node.value !== 'string') {
      return { value: node.source ?? String(node.value), usedDefault: false };
    }
    const result = interpolate(node.value, this.env, sensitive);
    if (result.ok) return { value: result.value, usedDefault: result.usedDefault };
    for (const problem of result.problems) this.report(node, path, problem);
    return undefined;
  }

  /** An optional string field; undefined when absent, empty or wrong (then reported). */
  string(fields: Fields, key: string, options: { required?: boolean; sensitive?: boolean } = {}) {
    const entry = fields.entries.get(key);
    if (entry === undefined || this.isEmpty(entry.value)) {
      if (options.required) this.missing(fields, key);
      return undefined;
    }
    return this.text(entry.value, entry.path, options.sensitive)?.value;
  }

  /** An integer, written as a number or as digits (which `${VAR}` produces). */
  integer(fields: Fields, key: string, range: { min: number; max: number }): number | undefined {
    const entry = fields.entries.get(key);
    if (entry === undefined || this.isEmpty(entry.value)) return undefined;
    const expected = `expected an integer from ${range.min} to ${range.max}`;
    const node = entry.value;
    let value: number | undefined;
    if (isScalar(node) && typeof node.value === 'number') {
      value = node.value;
    } else if (isScalar(node) && typeof node.value === 'string') {
      const text = this.text(node, entry.path);
      if (text === undefined) return undefined;
      if (/^\s*\d+\s*$/.test(text.value)) value = Number(text.value);
      else {
        this.report(node, entry.path, `${expected}, got ${JSON.stringify(text.value)}`);
        return undefined;
      }
    }
    if (value === undefined || !Number.isInteger(value) || value < range.min || value > range.max) {
      this.report(node, entry.path, `${expected}, got ${this.describe(node)}`);
      return undefined;
    }
    return value;
  }

  /** `true` or `false`, also as the text `${VAR}` produces. */
  boolean(fields: Fields, key: string): boolean | undefined {
    const entry = fields.entries.get(key);
    if (entry === undefined || this.isEmpty(entry.value)) return undefined;
    const node = entry.value;
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    if (isScalar(node) && typeof node.value === 'string') {
      const text = this.text(node, entry.path);
      if (text === undefined) return undefined;
      if (text.value === 'true' || text.value === 'false') return text.value === 'true';
    }
    this.report(node, entry.path, `expected true or false, got ${this.describe(node)}`);
    return undefined;
  }

  /** One of a fixed set of words. */
  choice<T extends string>(fields: Fields, key: string, choices: readonly T[]): T | undefined {
    const entry = fields.entries.get(key);
    if (entry === undefined || this.isEmpty(entry.value)) return undefined;
    const text = this.text(entry.value, entry.path);
    if (text === undefined) return undefined;
    const found = choices.find((choice) => choice === text.value);
    if (found === undefined) {
      const expected = choices.map((c) => `\`${c}\``).join(', ');
      this.report(
        entry.value,
        entry.path,
        `expected one of ${expected}, got ${JSON.stringify(text.value)}`,
      );
    }
    return found;
  }
}
