// `npm run bench [-- NAME] [options]`: runs one benchmark, pgbench when no name is given.
// Each benchmark module exports `main(argv)` and resolves to the exit code.
const BENCHMARKS: Record<string, () => Promise<{ main(argv: string[]): Promise<number> }>> = {
  pgbench: () => import('./pgbench.ts'),
  pgpool: () => import('./pgpool.ts'),
  capture: () => import('./capture.ts'),
};
const DEFAULT = 'pgbench';

const argv = process.argv.slice(2);
const named = argv[0] !== undefined && !argv[0].startsWith('-');
const name = named ? (argv[0] as string) : DEFAULT;
const load = BENCHMARKS[name];
if (load === undefined) {
  process.stderr.write(
    `unknown benchmark ${JSON.stringify(name)}; known: ${Object.keys(BENCHMARKS).join(', ')}\n`,
  );
  process.exit(2);
}
const { main } = await load();
// Exit explicitly: a pool or timer a benchmark forgot must not keep the process alive.
process.exit(await main(named ? argv.slice(1) : argv));
