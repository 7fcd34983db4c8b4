import { createServer } from 'node:net';
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

/** A port nothing listens on: bound, then released. */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
