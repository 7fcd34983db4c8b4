import { resolve } from 'node:path';
import { isScalar, type Node } from 'yaml';
import type { ConfigReader, KeyPath } from './reader.ts';
import type { CatalogConfig } from './types.ts';

const URL_SHAPE = 'a postgres://user:password@host:port/database URL';

/** Why a catalog URL cannot be used, or undefined. Never quotes the URL: it may hold a password. */
export function catalogUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `expected ${URL_SHAPE}, got text that is not a URL`;
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    return `expected ${URL_SHAPE}, got a ${JSON.stringify(parsed.protocol)} URL`;
  }
  if (parsed.hostname === '') return `expected ${URL_SHAPE}, got a URL without a host`;
  return undefined;
}

/**
 * `catalog:` of the current shape: `{ url }` for a PostgreSQL catalog, or `{ embedded:
 * { data_dir } }` (also `embedded: true` or empty) for PGlite. Absent means embedded in
 * `<data_dir>/catalog`. Relative directories are relative to the configuration file.
 */
export function readCatalog(
  reader: ConfigReader,
  node: Node | null,
  path: KeyPath,
  baseDir: string,
  dataDir: string,
): CatalogConfig | undefined {
  const fallback: CatalogConfig = { kind: 'embedded', dataDir: resolve(dataDir, 'catalog') };
  if (reader.isEmpty(reader.resolve(node))) return fallback;
  const fields = reader.mapping(node, path, { known: ['embedded', 'url'] });
  if (fields === undefined) return undefined;
  const embedded = fields.entries.get('embedded');
  const url = fields.entries.get('url');
  if (embedded !== undefined && url !== undefined) {
    reader.report(url.keyNode, url.path, 'a catalog is either `embedded` or `url`, not both');
    return undefined;
  }
  if (url !== undefined) {
    const text = reader.string(fields, 'url', { required: true, sensitive: true });
    if (text === undefined) return undefined;
    const problem = catalogUrlProblem(text);
    if (problem !== undefined) {
      reader.report(url.value, url.path, problem);
      return undefined;
    }
    return { kind: 'postgres', url: text };
  }
  if (embedded === undefined) {
    reader.report(fields.node, path, 'expected `embedded` or `url`');
    return undefined;
  }
  const value = reader.resolve(embedded.value);
  if (reader.isEmpty(value) || (isScalar(value) && value.value === true)) return fallback;
  const settings = reader.mapping(value, embedded.path, { known: ['data_dir'] });
  if (settings === undefined) return undefined;
  const dir = reader.string(settings, 'data_dir');
  return dir === undefined ? fallback : { kind: 'embedded', dataDir: resolve(baseDir, dir) };
}
