import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import { readListen } from './address.ts';
import { readCatalog } from './catalog.ts';
import { checkBackends, type LocatedCluster, readClusters } from './clusters.ts';
import type { Env } from './env.ts';
import { ConfigError, type ConfigIssue } from './errors.ts';
import { readGroups, readNativeDatabase } from './original.ts';
import { ConfigReader, type Fields } from './reader.ts';
import { readSessions } from './sessions.ts';
import { readTls } from './tls.ts';
import type { CatalogConfig, Config, ListenConfig } from './types.ts';

export const DEFAULT_LISTEN: ListenConfig = { host: '127.0.0.1', port: 6432 };
export const DEFAULT_ADMIN_LISTEN: ListenConfig = { host: '127.0.0.1', port: 6480 };
export const DEFAULT_DATA_DIR = '.qo';

const COMMON_KEYS = ['secret', 'listen', 'admin', 'data_dir', 'log', 'tls', 'sessions'] as const;
const CURRENT_KEYS = ['clusters', 'catalog'] as const;
const ORIGINAL_KEYS = ['groups', 'native_database'] as const;
const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** Reads and checks a configuration file; throws ConfigError listing every problem. */
export function loadConfig(path: string, env: Env = process.env): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT'
        ? `no such file (looked for ${resolve(path)})`
        : code === 'EISDIR'
          ? 'is a directory, not a configuration file'
          : `cannot be read: ${(error as Error).message}`;
    throw new ConfigError(path, [{ line: 0, column: 0, path: '', message }], { cause: error });
  }
  return parseConfig(text, path, env);
}

/**
 * Parses configuration text. `source` names the file in messages; relative directories in it
 * are relative to the file's directory. Both the current shape and the original one (`secret`,
 * `native_database`, `groups`) load; one file may not mix them.
 */
export function parseConfig(text: string, source: string, env: Env = process.env): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(source, syntaxIssues(doc.errors, text, lineCounter));
  }
  const reader = new ConfigReader(doc, lineCounter, env);
  const config = readTop(reader, doc.contents, source, dirname(resolve(source)));
  if (reader.issues.length > 0 || config === undefined)
    throw new ConfigError(source, reader.issues);
  return config;
}

function readTop(
  reader: ConfigReader,
  contents: unknown,
  source: string,
  baseDir: string,
): Config | undefined {
  const root = reader.resolve(contents);
  if (reader.isEmpty(root)) {
    reader.report(null, [], 'the file is empty; expected a mapping with `secret` and `clusters`');
    return undefined;
  }
  const fields = reader.mapping(root, [], {
    known: [...COMMON_KEYS, ...CURRENT_KEYS, ...ORIGINAL_KEYS],
    // `x-` keys are free for YAML anchors shared by several backends (`<<: *defaults`).
    ignore: (key) => key.startsWith('x-'),
  });
  if (fields === undefined) return undefined;

  const secret = readSecret(reader, fields);
  const listen = readListen(
    reader,
    fields.entries.get('listen')?.value ?? null,
    ['listen'],
    DEFAULT_LISTEN,
  );
  const admin = readAdmin(reader, fields, listen);
  const dataDirText = reader.string(fields, 'data_dir') ?? DEFAULT_DATA_DIR;
  const dataDir = resolve(baseDir, dataDirText);
  const level = readLogLevel(reader, fields);
  const tls = readTls(reader, fields.entries.get('tls')?.value ?? null, ['tls'], baseDir);
  const sessions = readSessions(reader, fields.entries.get('sessions')?.value ?? null, [
    'sessions',
  ]);

  const original = ORIGINAL_KEYS.map((key) => fields.entries.get(key)).find((e) => e !== undefined);
  const current = CURRENT_KEYS.map((key) => fields.entries.get(key)).find((e) => e !== undefined);
  let clusters: LocatedCluster[] = [];
  let catalog: CatalogConfig | undefined;
  if (original !== undefined && current !== undefined) {
    reader.report(
      original.keyNode,
      original.path,
      `cannot be used with \`${current.key}\` (line ${reader.line(current.keyNode)}): ` +
        'the original shape (`groups`, `native_database`) and the current one (`clusters`, ' +
        '`catalog`) do not mix in one file',
    );
  } else if (original !== undefined) {
    const groups = fields.entries.get('groups');
    if (groups === undefined) reader.missing(fields, 'groups', 'a list of groups of databases');
    else clusters = readGroups(reader, groups.value, groups.path);
    const native = fields.entries.get('native_database');
    catalog =
      native === undefined
        ? { kind: 'embedded', dataDir: resolve(dataDir, 'catalog') }
        : readNativeDatabase(reader, native.value, native.path);
  } else {
    const entry = fields.entries.get('clusters');
    if (entry === undefined) reader.missing(fields, 'clusters', 'define at least one cluster');
    else clusters = readClusters(reader, entry.value, entry.path);
    const catalogEntry = fields.entries.get('catalog');
    catalog = readCatalog(reader, catalogEntry?.value ?? null, ['catalog'], baseDir, dataDir);
  }
  checkBackends(reader, clusters);

  if (secret === undefined || listen === undefined || admin === undefined) return undefined;
  if (catalog === undefined || level === undefined) return undefined;
  if (tls === undefined || sessions === undefined) return undefined;
  return {
    source,
    listen,
    admin,
    secret: secret.value,
    secretIsDefault: secret.usedDefault,
    catalog,
    clusters: clusters.map((located) => located.cluster),
    dataDir,
    log: { level },
    tls,
    sessions,
  };
}

function readSecret(reader: ConfigReader, fields: Fields) {
  const entry = fields.entries.get('secret');
  if (entry === undefined || reader.isEmpty(entry.value)) {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the text shows the file's ${VAR} syntax
    reader.missing(fields, 'secret', 'it signs and verifies tokens; write `secret: ${QO_SECRET}`');
    return undefined;
  }
  const secret = reader.text(entry.value, entry.path, true);
  if (secret !== undefined && secret.value.trim() === '') {
    reader.report(entry.value, entry.path, 'empty; the secret signs and verifies tokens');
    return undefined;
  }
  return secret;
}

function readAdmin(reader: ConfigReader, fields: Fields, listen: ListenConfig | undefined) {
  const entry = fields.entries.get('admin');
  if (entry === undefined || reader.isEmpty(entry.value)) return { ...DEFAULT_ADMIN_LISTEN };
  const admin = reader.mapping(entry.value, entry.path, { known: ['listen'] });
  if (admin === undefined) return undefined;
  const node = admin.entries.get('listen')?.value ?? null;
  const address = readListen(reader, node, ['admin', 'listen'], DEFAULT_ADMIN_LISTEN);
  const same =
    address?.port !== 0 && address?.port === listen?.port && address?.host === listen?.host;
  if (same) {
    reader.report(
      node ?? admin.node,
      ['admin', 'listen'],
      'the same address as `listen`; give the admin API its own port',
    );
    return undefined;
  }
  return address;
}

function readLogLevel(reader: ConfigReader, fields: Fields) {
  const entry = fields.entries.get('log');
  if (entry === undefined || reader.isEmpty(entry.value)) return 'info';
  const log = reader.mapping(entry.value, entry.path, { known: ['level'] });
  if (log === undefined) return undefined;
  const before = reader.issues.length;
  const level = reader.choice(log, 'level', LOG_LEVELS);
  return reader.issues.length > before ? undefined : (level ?? 'info');
}

/**
 * YAML syntax errors, one per line (a single mistake often derails the parser for the rest of
 * its line). Adds the fix for the two mistakes this file invites.
 */
function syntaxIssues(
  errors: readonly YAMLError[],
  text: string,
  lines: LineCounter,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Set<number>();
  for (const error of errors) {
    const position = lines.linePos(error.pos[0]);
    if (seen.has(position.line)) continue;
    seen.add(position.line);
    const lineText = text.split(/\r?\n/)[position.line - 1] ?? '';
    let message = error.message.split('\n')[0] ?? error.message;
    if (/[{[][^#]*\$\{/.test(lineText)) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: it shows the file's ${VAR} syntax
      message += '; inside `{ }` or `[ ]`, quote values that use ${VAR}: `password: "${PROD_PW}"`';
    } else if (/:\s*\[[0-9a-fA-F:]*\]:\d+/.test(lineText)) {
      message += '; quote IPv6 addresses: `listen: "[::1]:6432"`';
    }
    issues.push({
      line: position.line,
      column: position.col,
      path: '',
      message: `YAML: ${message}`,
    });
  }
  return issues;
}
