import type { Node } from 'yaml';
import {
  type BackendShape,
  clusterNameProblem,
  DEFAULT_MAX_CAPTURE_ROWS,
  type LocatedCluster,
  readBackend,
} from './clusters.ts';
import type { ConfigReader, KeyPath } from './reader.ts';
import type { CatalogConfig } from './types.ts';

/**
 * The original configuration's shape (see the project's seed notes): `native_database` is the
 * internal database, `groups` a list of clusters, each a list of databases that all repeat the
 * cluster's `name`.
 */
const ORIGINAL_DATABASE: BackendShape = {
  databaseKey: 'dbname',
  known: ['schema', 'dbname', 'user', 'password', 'host', 'port', 'name'],
  hints: { database: 'dbname', db: 'dbname', username: 'user', pass: 'password' },
};

/** `native_database:` becomes a PostgreSQL catalog URL. */
export function readNativeDatabase(
  reader: ConfigReader,
  node: Node | null,
  path: KeyPath,
): CatalogConfig | undefined {
  const fields = reader.mapping(node, path, {
    known: ['dbname', 'user', 'password', 'host', 'port'],
    hints: { database: 'dbname', db: 'dbname', username: 'user', pass: 'password' },
  });
  if (fields === undefined) return undefined;
  const backend = readBackend(reader, fields, ORIGINAL_DATABASE, 'catalog', false);
  if (backend === undefined) return undefined;
  return { kind: 'postgres', url: postgresUrl(backend) };
}

export function postgresUrl(target: {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}): string {
  const credentials =
    encodeURIComponent(target.user) +
    (target.password === undefined ? '' : `:${encodeURIComponent(target.password)}`);
  const database = encodeURIComponent(target.database);
  // A host that is a directory is a Unix socket. A URL needs a host name, so the directory goes
  // in `?host=`, which node-postgres (like libpq) lets override the one before the path.
  if (target.host.startsWith('/')) {
    const socket = encodeURIComponent(target.host);
    return `postgres://${credentials}@localhost:${target.port}/${database}?host=${socket}`;
  }
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return `postgres://${credentials}@${host}:${target.port}/${database}`;
}

/** `groups:` of the original shape: `[[db, db], [db]]`, the cluster named by each database. */
export function readGroups(
  reader: ConfigReader,
  node: Node | null,
  path: KeyPath,
): LocatedCluster[] {
  const groups = reader.list(node, path);
  if (groups === undefined) return [];
  if (groups.items.length === 0) {
    reader.report(groups, path, 'empty list; define at least one group');
  }
  const clusters: LocatedCluster[] = [];
  const firstByName = new Map<string, { line: number; index: number }>();
  groups.items.forEach((item, groupIndex) => {
    const groupPath = [...path, groupIndex];
    const databases = reader.list(reader.resolve(item), groupPath);
    if (databases === undefined) return;
    if (databases.items.length === 0) {
      reader.report(databases, groupPath, 'empty group; a cluster needs at least one database');
      return;
    }
    const before = reader.issues.length;
    let name: string | undefined;
    let nameLine = 0;
    let nameAt: { node: Node; path: KeyPath } = { node: databases, path: groupPath };
    const located: LocatedCluster = {
      cluster: {
        name: '',
        backends: [],
        requireRollback: false,
        maxCaptureRows: DEFAULT_MAX_CAPTURE_ROWS,
      },
      node: databases,
      path: groupPath,
      backendNodes: [],
    };
    databases.items.forEach((database, index) => {
      const itemPath = [...groupPath, index];
      const fields = reader.mapping(reader.resolve(database), itemPath, ORIGINAL_DATABASE);
      if (fields === undefined) return;
      const own = reader.string(fields, 'name', { required: true });
      const nameNode = fields.entries.get('name')?.value ?? fields.node;
      if (own !== undefined && name === undefined) {
        name = own;
        nameLine = reader.line(nameNode);
        nameAt = { node: nameNode, path: [...itemPath, 'name'] };
        const problem = clusterNameProblem(own);
        if (problem !== undefined) reader.report(nameNode, [...itemPath, 'name'], problem);
      } else if (own !== undefined && own !== name) {
        reader.report(
          nameNode,
          [...itemPath, 'name'],
          `\`${own}\` differs from \`${name}\` (line ${nameLine}); ` +
            "every database of a group repeats its cluster's name",
        );
      }
      const backend = readBackend(reader, fields, ORIGINAL_DATABASE, `?/${index}`, false);
      if (backend === undefined) return;
      located.cluster.backends.push(backend);
      located.backendNodes.push({ node: fields.node, path: itemPath });
    });
    if (name === undefined) return;
    const first = firstByName.get(name);
    if (first !== undefined) {
      reader.report(
        nameAt.node,
        nameAt.path,
        `duplicate cluster name \`${name}\` ` +
          `(first defined by groups[${first.index}] at line ${first.line})`,
      );
      return;
    }
    firstByName.set(name, { line: nameLine, index: groupIndex });
    if (reader.issues.length > before) return;
    const clusterName = name;
    located.cluster.name = clusterName;
    located.cluster.backends.forEach((backend, index) => {
      backend.name = `${clusterName}/${index}`;
    });
    clusters.push(located);
  });
  return clusters;
}
