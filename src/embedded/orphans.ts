import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/** File in each server directory naming the process that started the server. */
export const OWNER_FILE = 'owner.pid';

/** Directories younger than this without an owner file may be in the middle of being created. */
const CREATION_GRACE_MS = 60_000;

/**
 * Cleans up after processes that died without stopping their servers (killed by a signal, so
 * their exit handler never ran). A server directory whose owner process is gone is removed; if
 * its postmaster still runs (checked against its command line, so a reused pid is left alone) it
 * gets SIGQUIT, PostgreSQL's immediate shutdown, and the directory is removed by a later sweep.
 */
export async function sweepOrphans(dataRoot: string): Promise<void> {
  let names: string[];
  try {
    names = (await readdir(dataRoot)).filter((name) => name.startsWith('pg-'));
  } catch {
    return;
  }
  await Promise.all(names.map((name) => sweepOne(path.join(dataRoot, name)).catch(() => {})));
}

async function sweepOne(serverDir: string): Promise<void> {
  const owner = await readPid(path.join(serverDir, OWNER_FILE));
  if (owner === undefined) {
    const { mtimeMs } = await stat(serverDir);
    if (Date.now() - mtimeMs < CREATION_GRACE_MS) return;
  } else if (isAlive(owner)) {
    return;
  }
  const dataDir = path.join(serverDir, 'data');
  const postmaster = await readPid(path.join(dataDir, 'postmaster.pid'));
  if (postmaster !== undefined && isAlive(postmaster) && (await runsIn(postmaster, dataDir))) {
    process.kill(postmaster, 'SIGQUIT');
    return;
  }
  await rm(serverDir, { recursive: true, force: true, maxRetries: 3 });
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const first = (await readFile(file, 'utf8')).split('\n')[0] ?? '';
    const pid = Number.parseInt(first, 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `pid` is a postgres started on `dataDir` (Linux /proc; elsewhere assume not). */
async function runsIn(pid: number, dataDir: string): Promise<boolean> {
  try {
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return cmdline.includes(dataDir);
  } catch {
    return false;
  }
}
