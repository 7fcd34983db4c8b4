import { type ChildProcess, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { RunAs } from './binaries.ts';

const execFileAsync = promisify(execFile);

/**
 * The environment of initdb and postgres: no inherited PG* variables (PGDATA, PGPORT...) that
 * could override what we pass, and the C locale so that log lines are in English.
 */
export function serverEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C' };
}

/** uid/gid spawn options; libuv also drops root's supplementary groups when uid is set. */
export function identity(runAs: RunAs | undefined): { uid?: number; gid?: number } {
  return runAs === undefined ? {} : { uid: runAs.uid, gid: runAs.gid };
}

/** Runs a program to completion as `runAs`; the error names the program and shows its output. */
export async function runProgram(
  file: string,
  args: string[],
  options: { runAs: RunAs | undefined; cwd: string; timeoutMs: number },
): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync(file, args, {
      ...identity(options.runAs),
      cwd: options.cwd,
      env: serverEnv(),
      timeout: options.timeoutMs,
      encoding: 'utf8',
    });
    return stdout + stderr;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    const output = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim();
    throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${output}`, { cause: error });
  }
}

/** Resolves true when the child has exited, false if it is still running after `timeoutMs`. */
export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** The last lines a server wrote, kept bounded, for error messages and debugging. */
export class LogTail {
  #text = '';
  readonly #limit: number;

  constructor(limit = 64 * 1024) {
    this.#limit = limit;
  }

  append(chunk: string): void {
    this.#text += chunk;
    if (this.#text.length > this.#limit) this.#text = this.#text.slice(-this.#limit / 2);
  }

  lines(count: number): string {
    return this.#text.trimEnd().split('\n').slice(-count).join('\n');
  }
}
