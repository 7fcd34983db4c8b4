import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';

/** Where the PostgreSQL server programs are, and which version they are. */
export interface PostgresBinaries {
  /** Directory holding `initdb`, `postgres` and `pg_isready`. */
  readonly bindir: string;
  /** Full version as `postgres --version` prints it, e.g. `15.18`. */
  readonly version: string;
  readonly major: number;
}

/** The OS identity initdb and postgres run as when this process is root. */
export interface RunAs {
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
}

let cachedBinaries: PostgresBinaries | undefined;

/**
 * Finds the server binaries: `$QO_POSTGRES_BINDIR`, then `pg_config --bindir`, then the newest
 * `/usr/lib/postgresql/<major>/bin` (Debian's layout), then the directory of `initdb` on PATH.
 * A candidate counts only if it holds both `initdb` and `postgres`: Debian's `pg_config` may
 * belong to a newer libpq than the installed server.
 */
export function findPostgresBinaries(): PostgresBinaries {
  if (cachedBinaries !== undefined) return cachedBinaries;
  const tried: string[] = [];
  for (const candidate of candidateBindirs()) {
    tried.push(candidate);
    if (isServerBindir(candidate)) {
      const version = serverVersion(candidate);
      cachedBinaries = {
        bindir: candidate,
        version,
        major: Number.parseInt(version, 10),
      };
      return cachedBinaries;
    }
  }
  throw new Error(
    `PostgreSQL server binaries (initdb, postgres) not found; looked in: ${tried.join(', ')}. ` +
      'Install them (Debian: apt-get install postgresql) or set QO_POSTGRES_BINDIR.',
  );
}

function* candidateBindirs(): Generator<string> {
  const fromEnv = process.env['QO_POSTGRES_BINDIR'];
  if (fromEnv) yield fromEnv;
  const fromPgConfig = tryExec('pg_config', ['--bindir']);
  if (fromPgConfig) yield fromPgConfig;
  yield* debianBindirs();
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const initdb = path.join(dir, 'initdb');
    if (existsSync(initdb)) yield path.dirname(realpathSync(initdb));
  }
}

/** `/usr/lib/postgresql/<major>/bin`, newest major first. */
function debianBindirs(): string[] {
  const base = '/usr/lib/postgresql';
  let majors: string[];
  try {
    majors = readdirSync(base).filter((name) => /^\d+(\.\d+)?$/.test(name));
  } catch {
    return [];
  }
  majors.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return majors.map((major) => path.join(base, major, 'bin'));
}

function isServerBindir(dir: string): boolean {
  return existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres'));
}

function serverVersion(bindir: string): string {
  // `postgres --version` is answered before the server's refuse-to-run-as-root check.
  const out = tryExec(path.join(bindir, 'postgres'), ['--version']) ?? '';
  const match = /\(PostgreSQL\)\s+(\d+(?:\.\d+)*)/.exec(out);
  if (!match?.[1]) throw new Error(`cannot read the version of ${bindir}/postgres: '${out}'`);
  return match[1];
}

function tryExec(file: string, args: string[]): string | undefined {
  try {
    return execFileSync(file, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

let cachedRunAs: RunAs | undefined | null = null;

/**
 * `initdb` and `postgres` refuse to run as root, so a root process starts them as another OS user
 * (`$QO_POSTGRES_OS_USER`, default `postgres`). Returns undefined when they can run as we are.
 */
export function postgresRunAs(): RunAs | undefined {
  if (cachedRunAs !== null) return cachedRunAs;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    cachedRunAs = undefined;
    return undefined;
  }
  const user = process.env['QO_POSTGRES_OS_USER'] || 'postgres';
  const entry = lookupUser(user);
  if (entry === undefined) {
    throw new Error(
      `PostgreSQL refuses to run as root, and there is no '${user}' OS user to run it as. ` +
        'Create one: useradd --system --user-group --home-dir /var/lib/postgresql ' +
        `--shell /bin/bash ${user} ` +
        '(or run as a non-root user, or set QO_POSTGRES_OS_USER to an existing user).',
    );
  }
  if (entry.uid === 0)
    throw new Error(`OS user '${user}' is root; PostgreSQL refuses to run as it`);
  cachedRunAs = entry;
  return entry;
}

/** getent consults NSS (LDAP, sssd...); /etc/passwd is the fallback where getent is missing. */
function lookupUser(user: string): RunAs | undefined {
  const line =
    tryExec('getent', ['passwd', user]) ??
    readPasswd().find((entry) => entry.startsWith(`${user}:`));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(':');
  if (uid === undefined || gid === undefined) return undefined;
  return { user, uid: Number(uid), gid: Number(gid) };
}

function readPasswd(): string[] {
  try {
    return readFileSync('/etc/passwd', 'utf8').split('\n');
  } catch {
    return [];
  }
}
