import { mintToken } from './auth/tokens.ts';
import { runCli } from './cli.ts';
import type { Config } from './config/types.ts';
import { checkClusters, startOrchestrator } from './orchestrator.ts';

/** Prints how to connect: a psql command carrying a fresh admin token, and the admin API. */
async function banner(
  config: Config,
  proxy: { host: string; port: number },
  admin: { host: string; port: number },
) {
  const token = await mintToken(config.secret, { subject: 'admin', admin: true, expiresIn: '24h' });
  const cluster = config.clusters[0]?.name ?? 'postgres';
  const lines = [
    '',
    `QueryOrchestrator is ready: proxy on ${proxy.host}:${proxy.port}, admin API on http://${admin.host}:${admin.port}`,
    `clusters: ${config.clusters.map((c) => c.name).join(', ')}`,
    '',
    'Connect (the password is a JWT, valid 24h; the database name picks the cluster):',
    `  psql "postgresql://admin:${token}@${proxy.host}:${proxy.port}/${cluster}"`,
    '',
    'Admin API:',
    `  curl -H "Authorization: Bearer ${token}" http://${admin.host}:${admin.port}/queries`,
    '',
  ];
  if (config.secretIsDefault) {
    lines.push(
      'warning: the JWT secret is the built-in default; set QO_SECRET before real use',
      '',
    );
  }
  process.stdout.write(lines.join('\n'));
}

const code = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  check: checkClusters,
  start: async (config) => {
    const orchestrator = await startOrchestrator(config);
    await banner(config, orchestrator.proxy, orchestrator.admin);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    process.stderr.write('stopping...\n');
    await orchestrator.stop();
  },
});
process.exit(code);
