import { defineConfig } from 'drizzle-kit';

// Migrations are generated from catalog/schema.ts, committed, and applied by the catalog at
// open (catalog/connect.ts); drizzle-kit is only used to generate them.
export default defineConfig({
  dialect: 'postgresql',
  schema: './catalog/schema.ts',
  out: './catalog/migrations',
  schemaFilter: ['qo'],
  migrations: { schema: 'drizzle', table: 'qo_catalog_migrations' },
});
