import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SECRET } from './cluster.ts';
import type { TestPostgres } from './postgres.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const START_TIMEOUT_MS = 60_000;

/** The proxy as a separate process: `node --import tsx src/main.ts start --config FILE`. */
export interface ProxyChild {
  readonly pid: number;
  readonly port: number;
  readonly adminPort: number;
  /** Settles when the process has exited, with how. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything it wrote to stdout and stderr so far, for failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after 15 s; by process id. */
  stop(): Promise<void>;
}

/** Writes a configuration file for one cluster on `backends`, with a PostgreSQL catalog if given. */
export function writeConfig(
  dir: string,
  cluster: string,
  backends: readonly TestPostgres[],
  catalog?: TestPostgres,
): string {
  const file = path.join(dir, 'orchestrator.yml');
  const lines = [
    'listen: 127.0.0.1:0',
    'admin:',
    '  listen: 127.0.0.1:0',
    `secret: ${SECRET}`,
    `data_dir: ${dir}`,
    'log:',
    '  level: info',
    ...(catalog === undefined ? [] : ['catalog:', `  url: ${catalog.url}`]),
    'clusters:',
    `  ${cluster}:`,
    '    backends:',
    ...backends.map(
      (b, i) =>
        `      - { name: ${cluster}/${i}, host: ${b.host}, port: ${b.port}, user: ${b.user}, database: ${b.database} }`,
    ),
    '',
  ];
  writeFileSync(file, lines.join('\n'));
  return file;
}

/** Starts the proxy with `config` and waits for its ready banner. */
export async function startProxyChild(
  config: string,
  env: Record<string, string> = {},
): Promise<ProxyChild> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), 'start', '--config', config],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));
  let ports: { port: number; adminPort: number };
  try {
    ports = await ready(child, () => output, exited);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    pid: child.pid ?? -1,
    ...ports,
    exited,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function ready(
  child: ChildProcess,
  output: () => string,
  exited: Promise<unknown>,
): Promise<{ port: number; adminPort: number }> {
  const banner = /proxy on [\d.]+:(\d+), admin API on http:\/\/[\d.]+:(\d+)/;
  const deadline = Date.now() + START_TIMEOUT_MS;
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  while (Date.now() < deadline) {
    const match = banner.exec(output());
    if (match) return { port: Number(match[1]), adminPort: Number(match[2]) };
    if (gone) throw new Error(`the proxy (pid ${child.pid}) exited while starting:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the proxy did not start within ${START_TIMEOUT_MS / 1000} s:\n${output()}`);
}
