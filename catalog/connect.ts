/**
 * Opens the catalog database on one of its two drivers and applies the committed migrations.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import type { CatalogConfig } from '../src/config/types.ts';
import { QoError } from '../src/errors.ts';
import type { Logger } from '../src/log.ts';
import { MIGRATIONS } from './schema.ts';

/** The Drizzle database both drivers share; queries written against it run on either. */
export type CatalogDb = PgDatabase<PgQueryResultHKT>;

export interface CatalogConnection {
  db: CatalogDb;
  driver: CatalogConfig['kind'];
  close(): Promise<void>;
}

const migrationConfig = {
  migrationsFolder: fileURLToPath(new URL('./migrations', import.meta.url)),
  migrationsSchema: MIGRATIONS.schema,
  migrationsTable: MIGRATIONS.table,
};

/**
 * Session-level advisory lock key held while migrating, so that proxy instances starting
 * together on one PostgreSQL catalog apply each migration once (drizzle's migrator does not
 * lock). Any fixed 64-bit number works; this one spells "qocatalg" in ASCII.
 */
const MIGRATION_LOCK = '8173861118916258919';

const CONNECT_TIMEOUT_MS = 10_000;

export async function connectCatalog(
  config: CatalogConfig,
  logger: Logger,
): Promise<CatalogConnection> {
  try {
    return config.kind === 'embedded'
      ? await connectEmbedded(config.dataDir, logger)
      : await connectPostgres(config.url, logger);
  } catch (error) {
    if (error instanceof QoError) throw error;
    // The URL is left out: it may hold a password.
    const what =
      config.kind === 'embedded'
        ? `the embedded catalog in ${config.dataDir}`
        : 'the PostgreSQL catalog';
    throw new QoError('CATALOG_FAILURE', `cannot open ${what}: ${rootMessage(error)}`, {
      cause: error,
    });
  }
}

async function connectEmbedded(dataDir: string, logger: Logger): Promise<CatalogConnection> {
  const dir = resolve(dataDir);
  // PGlite creates the data directory itself but fails when its parent is missing.
  await mkdir(dirname(dir), { recursive: true });
  const started = performance.now();
  const client = await PGlite.create(dir);
  try {
    const pgliteDb = drizzlePglite({ client });
    await migratePglite(pgliteDb, migrationConfig);
    const db: CatalogDb = pgliteDb;
    logger.info('catalog.opened', {
      driver: 'embedded',
      dataDir: dir,
      ms: Math.round(performance.now() - started),
    });
    return { db, driver: 'embedded', close: () => client.close() };
  } catch (error) {
    await client.close().catch(() => {});
    throw error;
  }
}

async function connectPostgres(url: string, logger: Logger): Promise<CatalogConnection> {
  const pool = new pg.Pool({
    connectionString: url,
    application_name: 'qo-catalog',
    // Commits wait on the catalog: an unreachable one must fail them, not hang them.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  // An idle pooled connection that dies emits 'error' on the pool; unhandled, it would end
  // the process. The pool replaces the connection on the next query.
  pool.on('error', (error) => logger.warn('catalog.connection_lost', { error: message(error) }));
  const started = performance.now();
  try {
    const client = await pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      await migratePg(drizzlePg({ client }), migrationConfig);
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      client.release();
    } catch (error) {
      // Closing the connection releases the lock too, and drops a half-done session.
      client.release(true);
      throw error;
    }
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  logger.info('catalog.opened', {
    driver: 'postgres',
    ms: Math.round(performance.now() - started),
  });
  const db: CatalogDb = drizzlePg({ client: pool });
  return { db, driver: 'postgres', close: () => pool.end() };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The message of the innermost cause: Drizzle wraps driver errors in "Failed query: <sql>". */
export function rootMessage(error: unknown): string {
  let inner = error;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  return message(inner);
}
