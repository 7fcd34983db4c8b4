import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PostgresBinaries, RunAs } from './binaries.ts';
import { runProgram } from './process.ts';

/**
 * Bump when the initdb arguments change, so that templates cached by older code are not reused.
 */
const TEMPLATE_FORMAT = 1;

const pending = new Map<string, Promise<string>>();

/**
 * A data directory initialized once per PostgreSQL version and OS user, cached under the temp
 * directory and shared by every process. Servers start on copies of it: a copy takes ~30 ms where
 * initdb takes ~0.4 s. Concurrent creators each build into a private directory and publish it
 * with an atomic rename; the first rename wins and the others discard their build, so there is no
 * lock to go stale when a process dies halfway.
 */
export function templateDataDir(bins: PostgresBinaries, runAs: RunAs | undefined): Promise<string> {
  const owner = runAs?.uid ?? process.getuid?.() ?? 0;
  const key = createHash('sha256')
    .update(`${TEMPLATE_FORMAT}\0${bins.bindir}\0${owner}`)
    .digest('hex')
    .slice(0, 12);
  const dir = path.join(os.tmpdir(), `qo-pg-template-${bins.version}-${key}`);
  let promise = pending.get(dir);
  if (promise === undefined) {
    promise = ensureTemplate(dir, bins, runAs);
    pending.set(dir, promise);
    promise.catch(() => pending.delete(dir));
  }
  return promise;
}

function isComplete(dir: string): boolean {
  return (
    existsSync(path.join(dir, 'PG_VERSION')) && existsSync(path.join(dir, 'global', 'pg_control'))
  );
}

async function ensureTemplate(
  dir: string,
  bins: PostgresBinaries,
  runAs: RunAs | undefined,
): Promise<string> {
  if (isComplete(dir)) return dir;
  // A directory without its control file is a build that a temp cleaner pruned; rebuild it.
  if (existsSync(dir)) await rm(dir, { recursive: true, force: true });

  const build = await mkdtemp(path.join(os.tmpdir(), 'qo-pg-template-build-'));
  try {
    if (runAs) await chown(build, runAs.uid, runAs.gid);
    const data = path.join(build, 'data');
    const args = [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '--encoding=UTF8',
      // NOTE: the C locale keeps sorting byte-wise and fast; upper() and lower() then leave
      // non-ASCII letters unchanged.
      '--locale=C',
      '--no-sync',
    ];
    if (bins.major >= 14) args.push('--no-instructions');
    await runProgram(path.join(bins.bindir, 'initdb'), args, {
      runAs,
      cwd: build,
      timeoutMs: 120_000,
    });
    try {
      await rename(data, dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Another process published its template first: use that one.
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !isComplete(dir)) throw error;
    }
  } finally {
    await rm(build, { recursive: true, force: true });
  }
  return dir;
}
