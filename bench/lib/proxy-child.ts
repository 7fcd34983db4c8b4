// Entry of the proxy child process of the benchmarks: starts the orchestrator with the
// configuration given as JSON in QO_BENCH_CONFIG, prints one JSON line with its addresses on
// stdout, and stops on SIGTERM or SIGINT, or when its standard input closes (the parent died).
import type { Config } from '../../src/config/types.ts';
import { createLogger } from '../../src/log.ts';
import { startOrchestrator } from '../../src/orchestrator.ts';

const config = JSON.parse(process.env['QO_BENCH_CONFIG'] ?? '') as Config;
const orchestrator = await startOrchestrator(config, { logger: createLogger(config.log.level) });
process.stdout.write(
  `${JSON.stringify({ proxy: orchestrator.proxy, admin: orchestrator.admin, pid: process.pid })}\n`,
);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await orchestrator.stop();
  process.exit(0);
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
