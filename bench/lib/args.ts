import { parseArgs } from 'node:util';

/**
 * `--seconds N` (default 10) and `--help`, as the pgbench and pgpool benchmarks take them.
 * Returns the seconds, or the exit code when there is nothing to run (help, or a bad value).
 */
export function secondsArgument(
  argv: string[],
  usage: string,
): { seconds: number } | { exit: number } {
  const { values } = parseArgs({
    args: argv,
    options: { seconds: { type: 'string', default: '10' }, help: { type: 'boolean' } },
  });
  if (values.help) {
    process.stdout.write(usage);
    return { exit: 0 };
  }
  const seconds = Number(values.seconds);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) {
    process.stderr.write(`--seconds must be a whole number from 1 to 3600\n${usage}`);
    return { exit: 2 };
  }
  return { seconds };
}
