import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { PERMISSIONS, type Permission } from './auth/identity.ts';
import { mintToken, parseDuration } from './auth/tokens.ts';
import { runRollbackCommand } from './cli-rollback.ts';
import type { ConsistencyOptions, ConsistencyReport } from './cluster/consistency.ts';
import type { Env } from './config/env.ts';
import { loadConfig } from './config/load.ts';
import type { Config } from './config/types.ts';
import { QoError } from './errors.ts';

export const PROGRAM = 'query-orchestrator';
export const DEFAULT_CONFIG = 'orchestrator.yml';
export const DEFAULT_TOKEN_EXPIRY = '24h';

export const USAGE = `Usage:
  ${PROGRAM} start [--config FILE]
  ${PROGRAM} token [--config FILE] --sub NAME [--cluster NAME=PERM,PERM]... [--admin] [--expires 1h]
  ${PROGRAM} check [--config FILE] [--cluster NAME] [--chunk-rows N] [--json]
  ${PROGRAM} rollback [--config FILE] (--query ID | --transaction ID | --cluster NAME --to ID)
                      [--dry-run] [--force]
  ${PROGRAM} --help

Commands:
  start   run the proxy and the admin API
  token   print a token signed with the configured secret (the first admin token, say)
  check   compare the backends of each cluster table by table; exits 1 when they differ
  rollback  undo an audited change, a whole transaction, or every change of a cluster after
          a query, through the admin API of the running proxy; exits 1 when refused

Options:
  -c, --config FILE         configuration file (default: ./${DEFAULT_CONFIG})
      --sub NAME            token: who holds the token
      --cluster NAME=PERMS  token: permissions on one cluster, comma-separated from
                            ${PERMISSIONS.join(', ')}; repeat per cluster; * is every cluster
      --admin               token: every permission on every cluster, and the admin API
      --expires DURATION    token: lifetime such as 3600, 15m, 1h, 7d, or never
                            (default: ${DEFAULT_TOKEN_EXPIRY})
      --cluster NAME        check: only this cluster (default: every cluster)
      --chunk-rows N        check: rows per hashed chunk of a table (default: 10000)
      --json                check: print the reports as JSON
      --query ID            rollback: the audited change to undo
      --transaction ID      rollback: every change of this client transaction, newest first
      --to ID               rollback: with --cluster, every change after query ID, newest first
      --dry-run             rollback: show the undo SQL and the conflicts, change nothing
      --force               rollback: undo even rows changed since (conflicts)
  -h, --help                show this help
`;

export interface StartCommand {
  kind: 'start';
  config: string;
  /** False when `config` is the default, so a missing file gets a hint instead of a bare error. */
  configGiven: boolean;
}

export interface TokenCommand {
  kind: 'token';
  config: string;
  configGiven: boolean;
  subject: string;
  clusters: Record<string, Permission[]>;
  admin: boolean;
  /** Seconds, `1h`-style text, or undefined for a token that never expires. */
  expiresIn: string | undefined;
}

export interface CheckCommand {
  kind: 'check';
  config: string;
  configGiven: boolean;
  cluster: string | undefined;
  chunkRows: number | undefined;
  json: boolean;
}

export interface RollbackCommand {
  kind: 'rollback';
  config: string;
  configGiven: boolean;
  target: { query: number } | { transaction: string } | { cluster: string; to: number };
  dryRun: boolean;
  force: boolean;
}

export type Command =
  | { kind: 'help' }
  | StartCommand
  | TokenCommand
  | CheckCommand
  | RollbackCommand;

/** A command line that cannot be run; the message says why, and USAGE says how. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const TAKES_VALUE: Readonly<Record<string, readonly string[]>> = {
  start: ['--config'],
  token: ['--config', '--sub', '--cluster', '--expires'],
  check: ['--config', '--cluster', '--chunk-rows'],
  rollback: ['--config', '--query', '--transaction', '--cluster', '--to'],
};
const SHORT: Readonly<Record<string, string>> = { '-c': '--config', '-h': '--help' };
const SWITCHES: Readonly<Record<string, readonly string[]>> = {
  start: ['--help'],
  token: ['--help', '--admin'],
  check: ['--help', '--json'],
  rollback: ['--help', '--dry-run', '--force'],
};

/** Parses the arguments after the program name, e.g. `process.argv.slice(2)`. */
export function parseArgs(argv: readonly string[]): Command {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('no command given');
  if (command === '--help' || command === '-h' || command === 'help') return { kind: 'help' };
  if (command !== 'start' && command !== 'token' && command !== 'check' && command !== 'rollback') {
    throw new UsageError(
      `unknown command ${JSON.stringify(command)}; expected start, token, check or rollback`,
    );
  }
  const values = new Map<string, string[]>();
  const switches = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? '';
    const equals = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const written = equals > 0 ? arg.slice(0, equals) : arg;
    const inline = equals > 0 ? arg.slice(equals + 1) : undefined;
    const flag = SHORT[written] ?? written;
    if (!flag.startsWith('-')) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    if (SWITCHES[command]?.includes(flag)) {
      if (inline !== undefined) throw new UsageError(`${flag} takes no value`);
      switches.add(flag);
      continue;
    }
    if (!TAKES_VALUE[command]?.includes(flag)) {
      throw new UsageError(`unknown option ${written} for \`${command}\``);
    }
    let value = inline;
    if (value === undefined) {
      value = rest[i + 1];
      i++;
      // `--config --help` is a forgotten value, not a file named `--help`.
      if (value?.startsWith('-') && value !== '-') value = undefined;
    }
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    values.set(flag, [...(values.get(flag) ?? []), value]);
  }
  if (switches.has('--help')) return { kind: 'help' };
  const config = single(values, '--config');
  const base = { config: config ?? DEFAULT_CONFIG, configGiven: config !== undefined };
  if (command === 'start') return { kind: 'start', ...base };
  if (command === 'check') {
    const chunks = single(values, '--chunk-rows');
    if (chunks !== undefined && !/^[1-9]\d{0,8}$/.test(chunks)) {
      throw new UsageError(`--chunk-rows ${JSON.stringify(chunks)} is not a positive integer`);
    }
    return {
      kind: 'check',
      ...base,
      cluster: single(values, '--cluster'),
      chunkRows: chunks === undefined ? undefined : Number(chunks),
      json: switches.has('--json'),
    };
  }

  if (command === 'rollback') return parseRollback(values, switches, base);

  const subject = single(values, '--sub');
  if (subject === undefined || subject === '') throw new UsageError('token needs --sub NAME');
  const granted = new Map<string, Permission[]>();
  for (const spec of values.get('--cluster') ?? []) {
    const [name, permissions] = parseClusterSpec(spec);
    granted.set(name, [...new Set([...(granted.get(name) ?? []), ...permissions])]);
  }
  const clusters = Object.fromEntries(granted);
  const admin = switches.has('--admin');
  if (!admin && granted.size === 0) {
    throw new UsageError('a token with no --cluster and no --admin would grant nothing');
  }
  const expires = single(values, '--expires') ?? DEFAULT_TOKEN_EXPIRY;
  if (expires !== 'never' && parseDuration(expires) === undefined) {
    throw new UsageError(
      `--expires ${JSON.stringify(expires)} is not a duration such as 3600, 15m, 1h, 7d or never`,
    );
  }
  const expiresIn = expires === 'never' ? undefined : expires;
  return { kind: 'token', ...base, subject, clusters, admin, expiresIn };
}

function parseRollback(
  values: Map<string, string[]>,
  switches: Set<string>,
  base: { config: string; configGiven: boolean },
): RollbackCommand {
  const id = (flag: string): number | undefined => {
    const text = single(values, flag);
    if (text === undefined) return undefined;
    if (!/^[1-9]\d{0,15}$/.test(text))
      throw new UsageError(`${flag} ${JSON.stringify(text)} is not a query id`);
    return Number(text);
  };
  const query = id('--query');
  const to = id('--to');
  const transaction = single(values, '--transaction');
  const cluster = single(values, '--cluster');
  const targets = [
    query !== undefined,
    transaction !== undefined,
    to !== undefined || cluster !== undefined,
  ];
  if (targets.filter(Boolean).length !== 1) {
    throw new UsageError(
      'rollback needs exactly one of --query ID, --transaction ID, or --cluster NAME --to ID',
    );
  }
  let target: RollbackCommand['target'];
  if (query !== undefined) target = { query };
  else if (transaction !== undefined) target = { transaction };
  else {
    if (cluster === undefined || to === undefined)
      throw new UsageError('--cluster and --to go together');
    target = { cluster, to };
  }
  return {
    kind: 'rollback',
    ...base,
    target,
    dryRun: switches.has('--dry-run'),
    force: switches.has('--force'),
  };
}

function single(values: Map<string, string[]>, flag: string): string | undefined {
  const given = values.get(flag) ?? [];
  if (given.length > 1) throw new UsageError(`${flag} given ${given.length} times`);
  return given[0];
}

/** `prod=read,write` -> [`prod`, [`read`, `write`]]. */
function parseClusterSpec(spec: string): [string, Permission[]] {
  const equals = spec.lastIndexOf('=');
  const name = spec.slice(0, Math.max(equals, 0));
  if (equals <= 0)
    throw new UsageError(`--cluster ${JSON.stringify(spec)}: expected NAME=PERM,PERM`);
  const permissions = spec
    .slice(equals + 1)
    .split(',')
    .map((word) => word.trim())
    .filter((word) => word !== '');
  if (permissions.length === 0) throw new UsageError(`--cluster ${name}: no permission after =`);
  for (const permission of permissions) {
    if (!PERMISSIONS.includes(permission as Permission)) {
      throw new UsageError(
        `--cluster ${name}: unknown permission ${JSON.stringify(permission)} ` +
          `(known: ${PERMISSIONS.join(', ')})`,
      );
    }
  }
  return [name, permissions as Permission[]];
}

/** Mints the token a `token` command asks for, with the secret of its configuration file. */
export async function runTokenCommand(
  command: TokenCommand,
  env: Env = process.env,
  cwd?: string,
): Promise<{ token: string; warnings: string[] }> {
  const config = loadCommandConfig(command, env, cwd);
  const warnings: string[] = [];
  if (config.secretIsDefault) {
    warnings.push(
      `the secret in ${config.source} is a \${VAR:-default} default; ` +
        'set the variable before real use',
    );
  }
  const known = new Set(config.clusters.map((cluster) => cluster.name));
  for (const name of Object.keys(command.clusters)) {
    if (name !== '*' && !known.has(name))
      warnings.push(`cluster ${JSON.stringify(name)} is not in ${config.source}`);
  }
  const token = await mintToken(config.secret, {
    subject: command.subject,
    clusters: command.clusters,
    admin: command.admin,
    ...(command.expiresIn === undefined ? {} : { expiresIn: command.expiresIn }),
  });
  return { token, warnings };
}

/** Loads the configuration a command names; a missing default file gets a hint. */
export function loadCommandConfig(
  command: StartCommand | TokenCommand | CheckCommand | RollbackCommand,
  env: Env = process.env,
  cwd?: string,
): Config {
  const path = cwd === undefined ? command.config : resolve(cwd, command.config);
  if (!command.configGiven && !existsSync(path)) {
    throw new QoError(
      'CONFIG_INVALID',
      `no ${DEFAULT_CONFIG} in ${resolve(cwd ?? process.cwd())}; pass --config FILE or create one`,
    );
  }
  return loadConfig(path, env);
}

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env?: Env;
  cwd?: string;
  /** Runs the proxy; resolves when it has stopped. */
  start: (config: Config) => Promise<void>;
  /** Compares the backends of the clusters (all, or the one named). */
  check?: (
    config: Config,
    cluster: string | undefined,
    options: ConsistencyOptions,
  ) => Promise<ConsistencyReport[]>;
}

/** The whole command line: returns the exit code (0 done, 1 failed, 2 wrong usage). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let command: Command;
  try {
    command = parseArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`${PROGRAM}: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  try {
    if (command.kind === 'help') {
      io.stdout(USAGE);
    } else if (command.kind === 'token') {
      const { token, warnings } = await runTokenCommand(command, io.env, io.cwd);
      for (const warning of warnings) io.stderr(`warning: ${warning}\n`);
      io.stdout(`${token}\n`);
    } else if (command.kind === 'rollback') {
      const config = loadCommandConfig(command, io.env, io.cwd);
      const outcome = await runRollbackCommand(command, config);
      io.stdout(`${JSON.stringify(outcome.body, null, 2)}\n`);
      return outcome.ok ? 0 : 1;
    } else if (command.kind === 'check') {
      if (io.check === undefined)
        throw new QoError('CONFIG_INVALID', 'check is not available here');
      const config = loadCommandConfig(command, io.env, io.cwd);
      const options = command.chunkRows === undefined ? {} : { chunkRows: command.chunkRows };
      const reports = await io.check(config, command.cluster, options);
      io.stdout(
        command.json
          ? `${JSON.stringify(reports, null, 2)}\n`
          : reports.map(describeReport).join(''),
      );
      return reports.every((report) => report.status === 'consistent') ? 0 : 1;
    } else {
      await io.start(loadCommandConfig(command, io.env, io.cwd));
    }
    return 0;
  } catch (error) {
    if (!(error instanceof QoError)) throw error;
    io.stderr(`${error.message}\n`);
    return 1;
  }
}

/** A consistency report for people: one line per cluster, then what differs. */
export function describeReport(report: ConsistencyReport): string {
  const verdict =
    report.status === 'consistent'
      ? 'consistent'
      : report.status === 'incomplete'
        ? 'incomplete: a backend could not be reached'
        : `${report.differences.length} of them differ`;
  const lines = [
    `cluster ${report.cluster}: ${report.tables} tables on ${report.backends.join(', ')}: ${verdict} (${report.durationMs} ms)`,
  ];
  for (const { backend, error } of report.unreachable)
    lines.push(`  unreachable ${backend}: ${error}`);
  for (const table of report.differences) {
    const what: string[] = [];
    if (table.missingOn) what.push(`missing on ${table.missingOn.join(', ')}`);
    if (table.columnsDifferOn) what.push(`columns differ on ${table.columnsDifferOn.join(', ')}`);
    if (table.rows) {
      const counts = Object.entries(table.rows).map(([name, rows]) => `${name}=${rows}`);
      what.push(`rows ${counts.join(' ')}`);
    }
    if (table.chunks) what.push(`${table.chunks.differing} of ${table.chunks.total} chunks differ`);
    lines.push(`  ${table.table}: ${what.join('; ')}`);
    for (const key of table.keys ?? []) {
      const name = Object.entries(key.key)
        .map(([column, value]) => `${column}=${value}`)
        .join(', ');
      const how = [
        ...(key.missingOn.length > 0 ? [`missing on ${key.missingOn.join(', ')}`] : []),
        ...(key.differsOn.length > 0 ? [`differs on ${key.differsOn.join(', ')}`] : []),
      ];
      lines.push(`    ${name}: ${how.join('; ')}`);
    }
    if (table.keysOmitted) lines.push('    (more rows differ than are listed)');
    if (table.note) lines.push(`    ${table.note}`);
  }
  return `${lines.join('\n')}\n`;
}
