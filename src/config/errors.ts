import { QoError } from '../errors.ts';

/** One problem found in a configuration file, located at a line and column (both 1-based). */
export interface ConfigIssue {
  line: number;
  column: number;
  /** Key path such as `clusters.prod.backends[0].port`; empty for problems of the YAML text. */
  path: string;
  message: string;
}

/** `orchestrator.yml:12:3: clusters.prod.backends[0].port: expected ...` */
export function formatIssue(source: string, issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${source}:${issue.line}:${issue.column}` : source;
  return issue.path === ''
    ? `${where}: ${issue.message}`
    : `${where}: ${issue.path}: ${issue.message}`;
}

/**
 * Every problem of a configuration file at once, one per line of the message, in file order,
 * so that one edit can fix them all.
 */
export class ConfigError extends QoError {
  readonly source: string;
  readonly issues: readonly ConfigIssue[];

  constructor(source: string, issues: readonly ConfigIssue[], options: { cause?: unknown } = {}) {
    const sorted = [...issues].sort((a, b) => a.line - b.line || a.column - b.column);
    super('CONFIG_INVALID', sorted.map((issue) => formatIssue(source, issue)).join('\n'), options);
    this.name = 'ConfigError';
    this.source = source;
    this.issues = sorted;
  }
}
