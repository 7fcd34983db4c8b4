import pg from 'pg';
import type { TestPostgres } from '../harness/postgres.ts';

/** Creates an empty database on the test server and returns a URL for it. */
export async function createDatabase(server: TestPostgres, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } finally {
    await client.end();
  }
  const url = new URL(server.url);
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}
