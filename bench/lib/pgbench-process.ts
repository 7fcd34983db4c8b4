import { spawn } from 'node:child_process';

/** What one pgbench invocation printed and what it measured. */
export interface PgbenchOutcome {
  args: string[];
  /** Exit code; null when it was ended by a signal. */
  code: number | null;
  signal: string | null;
  /** True when it ran past its time bound and was killed. */
  timedOut: boolean;
  elapsedMs: number;
  stdout: string;
  stderr: string;
  tps: number | undefined;
  latencyMs: number | undefined;
  transactions: number | undefined;
  failedTransactions: number | undefined;
  /** pgbench's own note that clients aborted and the figures are incomplete. */
  aborted: boolean;
  /** The distinct error lines it printed (client numbers removed), at most ten. */
  errors: string[];
  /** What the `onTimeout` probe saw when the time bound ran out, before pgbench was killed. */
  atTimeout: string | undefined;
}

const KILL_GRACE_MS = 5_000;
const PROBE_MS = 10_000;

/** pgbench's environment: ours minus PG* variables, so only the arguments pick the target. */
export function pgbenchEnv(password?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('PG')) env[name] = value;
  }
  env['LC_ALL'] = 'C';
  if (password !== undefined) env['PGPASSWORD'] = password;
  return env;
}

/**
 * Runs pgbench; after `timeoutMs` it gets SIGTERM, and SIGKILL if that is not enough. Before
 * the kill, `onTimeout` may look at the servers to record what was stuck.
 */
export function runPgbench(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  onTimeout?: () => Promise<string>,
): Promise<PgbenchOutcome> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('pgbench', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let atTimeout: string | undefined;
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(async () => {
      timedOut = true;
      if (onTimeout !== undefined) {
        atTimeout = await Promise.race([
          onTimeout().catch((error: Error) => `probe failed: ${error.message}`),
          new Promise<string>((done) => setTimeout(() => done('probe timed out'), PROBE_MS)),
        ]);
      }
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS).unref();
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        args,
        code,
        signal,
        timedOut,
        elapsedMs: Math.round(performance.now() - started),
        stdout,
        stderr,
        ...parseSummary(stdout),
        aborted: /Run was aborted/.test(stdout + stderr),
        errors: errorLines(stderr),
        atTimeout,
      });
    });
  });
}

/** Reads pgbench 15's summary lines, e.g. `tps = 1234.5 (without initial connection time)`. */
function parseSummary(stdout: string) {
  const number = (pattern: RegExp) => {
    const match = pattern.exec(stdout)?.[1];
    return match === undefined ? undefined : Number(match);
  };
  return {
    tps: number(/^tps = ([\d.]+)/m),
    latencyMs: number(/^latency average = ([\d.]+) ms/m),
    transactions: number(/^number of transactions actually processed: (\d+)/m),
    failedTransactions: number(/^number of failed transactions: (\d+)/m),
  };
}

function errorLines(stderr: string): string[] {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /error|fatal|abort|detail|hint/i.test(line))
    .map((line) => line.replace(/client \d+/g, 'client N'))
    // libpq had no message to give, e.g. PQprepare got no ParseComplete and no ErrorResponse.
    .map((line) => (/^pgbench: error:$/.test(line) ? `${line} (empty message)` : line));
  return [...new Set(lines)].slice(0, 10);
}

/** Exit code 0, no error printed, no failed or aborted transaction, within its time bound. */
export function succeeded(outcome: PgbenchOutcome): boolean {
  return (
    outcome.code === 0 &&
    !outcome.timedOut &&
    !outcome.aborted &&
    (outcome.failedTransactions ?? 0) === 0 &&
    outcome.errors.length === 0
  );
}

/** One word for how a run ended, as the result tables print it. */
export function runStatus(outcome: PgbenchOutcome): 'timed out' | 'ok' | 'failed' | 'errors' {
  if (outcome.timedOut) return 'timed out';
  if (succeeded(outcome)) return 'ok';
  return outcome.tps === undefined ? 'failed' : 'errors';
}

/** How a run ended, its error lines, and what was stuck if it ran out of time. */
export function describe(outcome: PgbenchOutcome): string {
  const how = outcome.timedOut
    ? `killed after ${outcome.elapsedMs} ms without finishing`
    : outcome.signal !== null
      ? `ended by ${outcome.signal}`
      : `exit code ${outcome.code}`;
  const errors = outcome.errors.length > 0 ? `: ${outcome.errors.join(' | ')}` : '';
  const stuck = outcome.atTimeout === undefined ? '' : `; at the time bound:\n${outcome.atTimeout}`;
  return `${how}${errors}${stuck}`;
}
