import type { Node } from 'yaml';
import { isHost } from './address.ts';
import { type ConfigReader, type Fields, formatPath, type KeyPath } from './reader.ts';
import type { BackendConfig, ClusterConfig } from './types.ts';

export const DEFAULT_MAX_CAPTURE_ROWS = 100_000;
export const MAX_EMBEDDED_BACKENDS = 16;

/** A cluster read from the file, with the nodes to point at when checks across clusters fail. */
export interface LocatedCluster {
  cluster: ClusterConfig;
  node: Node;
  path: KeyPath;
  backendNodes: { node: Node; path: KeyPath }[];
}

/**
 * Clients name the cluster as the startup `database`, and tokens use `*` for "every cluster",
 * so a name must be something PostgreSQL accepts as a database name and must not be `*`.
 */
export function clusterNameProblem(name: string): string | undefined {
  if (name === '') return 'a cluster name cannot be empty';
  if (name === '*') return '`*` cannot name a cluster: tokens use it for "every cluster"';
  if (Buffer.byteLength(name) > 63)
    return 'a cluster name is at most 63 bytes (a PostgreSQL database name)';
  if (/[\p{Cc}]/u.test(name)) return 'a cluster name cannot contain control characters';
  return undefined;
}

export interface BackendShape {
  /** The key of the database name: `database` in the current shape, `dbname` in the original. */
  databaseKey: 'database' | 'dbname';
  /** In the original shape `name` is the cluster's name, not the backend's. */
  known: readonly string[];
  hints: Readonly<Record<string, string>>;
}

export const CURRENT_BACKEND: BackendShape = {
  databaseKey: 'database',
  known: ['name', 'host', 'port', 'user', 'password', 'database', 'schema'],
  hints: { dbname: 'database', db: 'database', username: 'user', pass: 'password' },
};

/** Reads one backend; `name` is taken by the caller in the original shape. */
export function readBackend(
  reader: ConfigReader,
  fields: Fields,
  shape: BackendShape,
  defaultName: string,
  ownName: boolean,
): BackendConfig | undefined {
  const before = reader.issues.length;
  const host = reader.string(fields, 'host', { required: true });
  if (host !== undefined && !host.startsWith('/') && !isHost(host)) {
    const at = fields.entries.get('host')?.value;
    reader.report(
      at,
      [...fields.path, 'host'],
      `expected a host name, an IP address or a socket directory, got ${JSON.stringify(host)}`,
    );
  }
  const port = reader.integer(fields, 'port', { min: 1, max: 65535 }) ?? 5432;
  const user = reader.string(fields, 'user', { required: true });
  const password = reader.string(fields, 'password', { sensitive: true });
  const database = reader.string(fields, shape.databaseKey) ?? 'postgres';
  const schema = reader.string(fields, 'schema');
  const name = (ownName ? reader.string(fields, 'name') : undefined) ?? defaultName;
  if (reader.issues.length > before || host === undefined || user === undefined) return undefined;
  const backend: BackendConfig = { name, host, port, user, database };
  if (password !== undefined) backend.password = password;
  if (schema !== undefined) backend.schema = schema;
  return backend;
}

/** `clusters:` of the current shape: a mapping from cluster name to its settings. */
export function readClusters(
  reader: ConfigReader,
  node: Node | null,
  path: KeyPath,
): LocatedCluster[] {
  const fields = reader.mapping(node, path, {
    duplicate: (key, first) => `duplicate cluster name \`${key}\` (first defined at line ${first})`,
  });
  if (fields === undefined) return [];
  if (fields.entries.size === 0) {
    reader.report(
      fields.node,
      path,
      'no cluster defined; a cluster needs `backends:` or `embedded: N`',
    );
  }
  const clusters: LocatedCluster[] = [];
  for (const entry of fields.entries.values()) {
    const problem = clusterNameProblem(entry.key);
    if (problem !== undefined) reader.report(entry.keyNode, entry.path, problem);
    const located = readCluster(reader, entry.key, entry.value, entry.keyNode, entry.path);
    if (located !== undefined && problem === undefined) clusters.push(located);
  }
  return clusters;
}

function readCluster(
  reader: ConfigReader,
  name: string,
  node: Node | null,
  keyNode: Node,
  path: KeyPath,
): LocatedCluster | undefined {
  // `demo:` with nothing after it reads as an empty cluster, which then lacks backends.
  const fields: Fields | undefined = reader.isEmpty(node)
    ? { node: keyNode, path, entries: new Map() }
    : reader.mapping(node, path, {
        known: [
          'backends',
          'embedded',
          'require_rollback',
          'max_capture_rows',
          'capture',
          'require_two_phase',
        ],
        hints: { databases: 'backends', servers: 'backends', nodes: 'backends' },
      });
  if (fields === undefined) return undefined;
  const before = reader.issues.length;
  const requireRollback = reader.boolean(fields, 'require_rollback') ?? false;
  const maxCaptureRows =
    reader.integer(fields, 'max_capture_rows', { min: 1, max: Number.MAX_SAFE_INTEGER }) ??
    DEFAULT_MAX_CAPTURE_ROWS;
  const capture = reader.boolean(fields, 'capture');
  const requireTwoPhase = reader.boolean(fields, 'require_two_phase');
  if (capture === false && requireRollback) {
    // Without capture no change has an undo, so every change would be refused.
    reader.report(
      fields.entries.get('capture')?.value,
      [...path, 'capture'],
      '`capture: false` leaves every change without an undo, which contradicts `require_rollback: true`',
    );
  }
  const embedded = reader.integer(fields, 'embedded', { min: 1, max: MAX_EMBEDDED_BACKENDS });
  const backendsEntry = fields.entries.get('backends');
  const cluster: ClusterConfig = { name, backends: [], requireRollback, maxCaptureRows };
  if (capture !== undefined) cluster.capture = capture;
  if (requireTwoPhase !== undefined) cluster.requireTwoPhase = requireTwoPhase;
  const backendNodes: LocatedCluster['backendNodes'] = [];
  if (backendsEntry !== undefined && fields.entries.has('embedded')) {
    const embeddedKey = fields.entries.get('embedded')?.keyNode;
    reader.report(
      embeddedKey,
      [...path, 'embedded'],
      'a cluster has either `backends` or `embedded: N`, not both',
    );
  } else if (backendsEntry !== undefined) {
    const list = reader.list(backendsEntry.value, backendsEntry.path);
    if (list !== undefined && list.items.length === 0) {
      reader.report(list, backendsEntry.path, 'empty list; a cluster needs at least one backend');
    }
    list?.items.forEach((item, index) => {
      const itemPath = [...backendsEntry.path, index];
      const itemFields = reader.mapping(reader.resolve(item), itemPath, CURRENT_BACKEND);
      if (itemFields === undefined) return;
      const backend = readBackend(reader, itemFields, CURRENT_BACKEND, `${name}/${index}`, true);
      if (backend === undefined) return;
      cluster.backends.push(backend);
      backendNodes.push({ node: itemFields.node, path: itemPath });
    });
  } else if (embedded !== undefined) {
    cluster.embedded = embedded;
  } else if (!fields.entries.has('embedded')) {
    reader.report(
      keyNode,
      path,
      'no backend: give `backends:` (a list of databases) or `embedded: N`',
    );
  }
  if (reader.issues.length > before) return undefined;
  return { cluster, node: fields.node, path, backendNodes };
}

/**
 * Checks across clusters: backend names are unique (logs and errors use them), and no cluster
 * lists the same database twice (every write would then be applied to it twice).
 */
export function checkBackends(reader: ConfigReader, clusters: readonly LocatedCluster[]): void {
  const names = new Map<string, KeyPath>();
  for (const { cluster, backendNodes } of clusters) {
    const targets = new Map<string, KeyPath>();
    cluster.backends.forEach((backend, index) => {
      const at = backendNodes[index];
      if (at === undefined) return;
      const firstNamed = names.get(backend.name);
      if (firstNamed !== undefined) {
        reader.report(
          at.node,
          [...at.path, 'name'],
          `backend name \`${backend.name}\` is already used by ${formatPath(firstNamed)}`,
        );
      } else names.set(backend.name, at.path);
      const target = `${backend.host}:${backend.port}/${backend.database}/${backend.schema ?? ''}`;
      const firstTarget = targets.get(target);
      if (firstTarget !== undefined) {
        reader.report(
          at.node,
          at.path,
          `the same database and schema as ${formatPath(firstTarget)}; ` +
            "a cluster's backends must be distinct",
        );
      } else targets.set(target, at.path);
    });
  }
}
