// The test command. Runs every test/**/*.test.ts (or the files and directories given as
// arguments) with node's test runner, two files at a time, each file in its own process;
// prints the spec report and then a last line `N passed, N failed[, N skipped]`; exits
// non-zero when anything failed. A test file that crashes counts as a failed test.
//
// Environment: QO_TEST_CONCURRENCY (files at once, default 2), QO_TEST_FILE_TIMEOUT_MS (per
// file, default 600000), QO_TEST_RUN_TIMEOUT_MS (whole run, default 1800000). A file that runs
// out of time is killed (SIGTERM) and counts as failed.
import { readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const concurrency = positiveInt('QO_TEST_CONCURRENCY', 2);
const fileTimeoutMs = positiveInt('QO_TEST_FILE_TIMEOUT_MS', 10 * 60_000);
const runTimeoutMs = positiveInt('QO_TEST_RUN_TIMEOUT_MS', 30 * 60_000);

function positiveInt(name, fallback) {
  const value = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

/** Test files under a directory, skipping node_modules and hidden directories. */
function findTests(dir, found = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) findTests(full, found);
    else if (entry.isFile() && entry.name.endsWith('.test.ts')) found.push(full);
  }
  return found;
}

function selectFiles(args) {
  if (args.length === 0) return findTests(path.join(root, 'test')).sort();
  const files = [];
  for (const arg of args) {
    const full = path.resolve(arg);
    let stats;
    try {
      stats = statSync(full);
    } catch {
      throw new Error(`no such test file or directory: ${arg}`);
    }
    if (stats.isDirectory()) files.push(...findTests(full).sort());
    else files.push(full);
  }
  return [...new Set(files)];
}

const args = process.argv.slice(2);
const namePatterns = args
  .filter((arg) => arg.startsWith('--test-name-pattern='))
  .map((arg) => arg.slice('--test-name-pattern='.length));
const paths = args.filter((arg) => !arg.startsWith('--'));

let files;
try {
  files = selectFiles(paths);
} catch (error) {
  console.error(error.message);
  console.log('0 passed, 1 failed');
  process.exit(2);
}

// Each test file runs in a child process started with this process's execArgv (node 20 has no
// run() option for it), so this is how TypeScript support (tsx) reaches the children.
if (!process.execArgv.some((arg) => arg.includes('tsx'))) {
  process.execArgv.push('--import', import.meta.resolve('tsx'));
}
// Lets the harness say once per run, not once per file, which PostgreSQL it uses.
const runId = `${process.pid}-${Date.now()}`;
process.env.QO_TEST_RUN_ID = runId;

const counts = { passed: 0, failed: 0, skipped: 0, failedSuites: 0 };

function count(event, failed) {
  const data = event ?? {};
  if (data.details?.type === 'suite') {
    if (failed) counts.failedSuites++;
    return;
  }
  if (data.skip !== undefined || data.todo !== undefined) counts.skipped++;
  else if (failed) counts.failed++;
  else counts.passed++;
}

function summary() {
  // A suite can fail with no failing test in it (a failing before() hook): still a failure.
  const failed = counts.failed === 0 ? counts.failedSuites : counts.failed;
  const skipped = counts.skipped > 0 ? `, ${counts.skipped} skipped` : '';
  return { line: `${counts.passed} passed, ${failed} failed${skipped}`, failed };
}

const runSignal = AbortSignal.timeout(runTimeoutMs);

async function main() {
  if (files.length === 0) {
    console.log('no test files found');
    return 0;
  }
  const stream = run({
    files,
    concurrency,
    forceExit: true,
    // The root's timeout applies to each file's test, that is to the whole file.
    timeout: fileTimeoutMs,
    signal: runSignal,
    ...(namePatterns.length > 0 ? { testNamePatterns: namePatterns } : {}),
  });
  stream.on('test:pass', (data) => count(data, false));
  stream.on('test:fail', (data) => count(data, true));
  const report = stream.compose(spec());
  report.pipe(process.stdout);
  await new Promise((resolve, reject) => {
    report.once('end', resolve);
    report.once('error', reject);
  });
  if (runSignal.aborted) {
    console.log(`\nthe run took longer than ${runTimeoutMs} ms and was stopped`);
    counts.failed = Math.max(counts.failed, 1);
  }
  const { line, failed } = summary();
  console.log(`\n${line}`);
  return failed > 0 ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(error);
  counts.failed = Math.max(counts.failed, 1);
  console.log(`\n${summary().line}`);
  process.exitCode = 1;
} finally {
  rmSync(path.join(os.tmpdir(), `qo-test-announced-${runId}`), { force: true });
}
