import { type ChildProcess, spawn } from 'node:child_process';
import type { AddressInfo, Socket } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import type { PostgresBinaries, RunAs } from './binaries.ts';
import { identity, isRunning, type LogTail, serverEnv } from './process.ts';

const READY = /database system is ready to accept connections/;
const ADDRESS_IN_USE =
  /could not bind IPv4 address.*Address already in use|could not create any TCP\/IP sockets/s;
const PORT_ATTEMPTS = 5;

/** What it takes to (re)start one server. */
export interface ServerContext {
  readonly bins: PostgresBinaries;
  readonly runAs: RunAs | undefined;
  readonly serverDir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly settings: Map<string, string>;
  readonly log: LogTail;
  readonly startTimeoutMs: number;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export class StartError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
  }
}

/**
 * A free port can be taken by another process between probing it and the server binding it;
 * the server then exits at once saying so, and we try another port.
 */
export async function launchOnFreePort(
  ctx: ServerContext,
  fixedPort: number,
): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort || (await freePort());
    try {
      return { child: await launch(ctx, port), port };
    } catch (error) {
      const retry =
        fixedPort === 0 &&
        attempt < PORT_ATTEMPTS &&
        error instanceof StartError &&
        ADDRESS_IN_USE.test(error.output);
      if (!retry) throw error;
    }
  }
}

/** Spawns the postmaster and resolves once its log says it accepts connections. */
export function launch(ctx: ServerContext, port: number): Promise<ChildProcess> {
  const args = ['-D', ctx.dataDir, '-p', String(port)];
  for (const [name, value] of ctx.settings) args.push('-c', `${name}=${value}`);
  const child = spawn(path.join(ctx.bins.bindir, 'postgres'), args, {
    ...identity(ctx.runAs),
    cwd: ctx.dataDir,
    env: serverEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let onOutput: ((text: string) => void) | undefined;
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (text: string) => {
      ctx.log.append(text);
      onOutput?.(text);
    });
  }
  return new Promise((resolve, reject) => {
    const fail = (message: string) => {
      finish();
      if (isRunning(child)) child.kill('SIGKILL');
      const tail = ctx.log.lines(30);
      reject(new StartError(`${message}; server log:\n${tail}`, output));
    };
    const timer = setTimeout(
      () => fail(`PostgreSQL did not accept connections within ${ctx.startTimeoutMs} ms`),
      ctx.startTimeoutMs,
    );
    // 'close' rather than 'exit': it comes after the last log lines have been read.
    const onClose = (code: number | null, signal: string | null) =>
      fail(`PostgreSQL on port ${port} exited during startup (code ${code}, signal ${signal})`);
    const onError = (error: Error) =>
      fail(`cannot run ${ctx.bins.bindir}/postgres: ${error.message}`);
    const finish = () => {
      clearTimeout(timer);
      onOutput = undefined;
      child.off('close', onClose);
      child.off('error', onError);
    };
    onOutput = (text) => {
      output = (output + text).slice(-16 * 1024);
      if (READY.test(output)) {
        finish();
        setRef(child, false);
        resolve(child);
      }
    };
    child.once('close', onClose);
    child.once('error', onError);
  });
}

/**
 * While idle, a running server must not keep this process alive: a test that forgets stop()
 * still ends, and the exit handler of postgres.ts kills the server.
 */
export function setRef(child: ChildProcess, on: boolean): void {
  for (const handle of [child, child.stdout, child.stderr] as unknown as Socket[]) {
    if (handle) on ? handle.ref() : handle.unref();
  }
}
