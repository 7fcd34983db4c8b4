import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A file of the shared sample data (Chinook, Pagila), which lives beside the repository in
 * `../shared/data` (or where QO_SHARED_DIR points). Undefined when it is not there, so the test
 * can say why it skips.
 */
export function sharedData(relative: string): string | undefined {
  const root =
    process.env['QO_SHARED_DIR'] ??
    resolve(fileURLToPath(new URL('../../..', import.meta.url)), 'shared');
  const path = join(root, 'data', relative);
  return existsSync(path) ? path : undefined;
}

export const NO_SHARED_DATA =
  'the sample data is not beside the repository (../shared/data); set QO_SHARED_DIR to run this test';
