import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../src/config/types.ts';
import { closeLog, exitWithin } from './child.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHILD_ENTRY = path.join(HERE, 'proxy-child.ts');
/** `--import tsx` is resolved from the working directory: the repository root has it. */
const REPOSITORY = path.resolve(HERE, '..', '..');
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

/** The orchestrator running in its own process (see proxy-child.ts). */
export interface ProxyProcess {
  readonly pid: number;
  readonly host: string;
  readonly port: number;
  /** True once the process has exited, whether asked to or not. */
  readonly exited: boolean;
  /** How it exited, e.g. `code 1` or `signal SIGSEGV`; undefined while it runs. */
  readonly exitReason: string | undefined;
  /** User plus system CPU time of the process so far, in milliseconds (from /proc). */
  cpuMs(): Promise<number | undefined>;
  /** Peak resident set size so far, in MiB (VmHWM from /proc). */
  peakRssMiB(): Promise<number | undefined>;
  /** SIGTERM, then SIGKILL if it has not exited in time; by process id only. */
  stop(): Promise<void>;
}

/**
 * Spawns the orchestrator with `config` and waits until it listens. Its stderr (the logger)
 * is appended to `logPath`. The child watches its stdin and stops when this process dies.
 * `nodeArgs` go to node before the entry, e.g. `--cpu-prof`.
 */
export async function startProxyProcess(
  config: Config,
  logPath: string,
  nodeArgs: readonly string[] = [],
): Promise<ProxyProcess> {
  const log = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', CHILD_ENTRY], {
    cwd: REPOSITORY,
    env: { ...process.env, QO_BENCH_CONFIG: JSON.stringify(config) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stderr?.pipe(log);
  let exitReason: string | undefined;
  child.once('exit', (code, signal) => {
    exitReason = signal === null ? `code ${code}` : `signal ${signal}`;
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let address: { host: string; port: number };
  try {
    address = await readAddress(child);
  } catch (error) {
    child.kill('SIGKILL');
    process.off('exit', killOnExit);
    await closeLog(log);
    throw error;
  }
  const pid = child.pid ?? -1;
  return {
    pid,
    host: address.host,
    port: address.port,
    get exited() {
      return exitReason !== undefined;
    },
    get exitReason() {
      return exitReason;
    },
    cpuMs: () => readCpuMs(pid),
    peakRssMiB: () => readPeakRss(pid),
    async stop() {
      process.off('exit', killOnExit);
      if (exitReason === undefined) {
        child.kill('SIGTERM');
        if (!(await exitWithin(child, STOP_TIMEOUT_MS))) {
          child.kill('SIGKILL');
          await exitWithin(child, STOP_TIMEOUT_MS);
        }
      }
      await closeLog(log);
    },
  };
}

function readAddress(child: ChildProcess): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(
      () => done(new Error(`the proxy did not start within ${START_TIMEOUT_MS / 1000} s`)),
      START_TIMEOUT_MS,
    );
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      try {
        const ready = JSON.parse(buffered.slice(0, newline)) as {
          proxy: { host: string; port: number };
        };
        done(undefined, ready.proxy);
      } catch (error) {
        done(
          new Error(`unreadable ready line from the proxy: ${buffered.slice(0, newline)}`, {
            cause: error,
          }),
        );
      }
    };
    const onExit = (code: number | null, signal: string | null) =>
      done(new Error(`the proxy exited while starting (${signal ?? `code ${code}`}); see its log`));
    const done = (error?: Error, address?: { host: string; port: number }) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(error);
      else if (address) resolve(address);
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Fields 14 and 15 of /proc/<pid>/stat are utime and stime in clock ticks (100 per second). */
async function readCpuMs(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

async function readPeakRss(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kib = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
    return kib === undefined ? undefined : Math.round(Number(kib) / 1024);
  } catch {
    return undefined;
  }
}
