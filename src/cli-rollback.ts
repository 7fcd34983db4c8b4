import { mintToken } from './auth/tokens.ts';
import type { RollbackCommand } from './cli.ts';
import type { Config } from './config/types.ts';
import { QoError } from './errors.ts';

/**
 * Asks the running proxy's admin API to undo what the command names, with a short-lived admin
 * token minted from the configured secret. Returns the API's answer and whether it succeeded.
 */
export async function runRollbackCommand(
  command: RollbackCommand,
  config: Config,
): Promise<{ ok: boolean; body: unknown }> {
  const { target } = command;
  const path =
    'query' in target
      ? `/queries/${target.query}/rollback`
      : 'transaction' in target
        ? `/transactions/${encodeURIComponent(target.transaction)}/rollback`
        : `/clusters/${encodeURIComponent(target.cluster)}/rollback`;
  const body: Record<string, unknown> = { dry_run: command.dryRun, force: command.force };
  if ('to' in target) body['to_query_id'] = target.to;
  const token = await mintToken(config.secret, { subject: 'cli', admin: true, expiresIn: 300 });
  const host = config.admin.host === '0.0.0.0' ? '127.0.0.1' : config.admin.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.admin.port}${path}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new QoError(
      'BACKEND_UNAVAILABLE',
      `the admin API at ${url} did not answer (${(error as Error).message}); is the proxy running with this configuration?`,
      { cause: error },
    );
  }
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { ok: response.ok, body: parsed };
}
