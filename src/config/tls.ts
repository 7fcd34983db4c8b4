import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Node } from 'yaml';
import type { ConfigReader, Fields, KeyPath } from './reader.ts';
import type { TlsConfig, TlsMode } from './types.ts';

const MODES: readonly TlsMode[] = ['disable', 'allow', 'require'];

/**
 * `tls: { mode, cert, key }`. Absent or `mode: disable` offers no TLS; `allow` and `require`
 * need a PEM certificate and its private key, relative to the configuration file. The pair is
 * loaded once here, so that a wrong file stops the start with its line instead of failing the
 * first client.
 */
export function readTls(
  reader: ConfigReader,
  node: Node | null,
  path: KeyPath,
  baseDir: string,
): TlsConfig | undefined {
  if (reader.isEmpty(reader.resolve(node))) return { mode: 'disable' };
  const fields = reader.mapping(node, path, { known: ['mode', 'cert', 'key'] });
  if (fields === undefined) return undefined;
  const before = reader.issues.length;
  const mode = reader.choice(fields, 'mode', MODES) ?? 'disable';
  if (reader.issues.length > before) return undefined;
  if (mode === 'disable') return { mode };
  const hint = `a PEM file; \`tls.mode: ${mode}\` needs a certificate and its key`;
  const cert = pemFile(reader, fields, 'cert', baseDir, hint);
  const key = pemFile(reader, fields, 'key', baseDir, hint);
  if (cert === undefined || key === undefined) return undefined;
  try {
    createSecureContext({ cert: readFileSync(cert), key: readFileSync(key) });
  } catch (error) {
    const entry = fields.entries.get('cert');
    const reason = (error as Error).message.replace(/^error:[0-9A-F]+:/, '');
    reader.report(
      entry?.value,
      entry?.path ?? [...path, 'cert'],
      `cannot be used with \`tls.key\`: ${reason}`,
    );
    return undefined;
  }
  return { mode, cert, key };
}

/** A readable file named by `key`, as an absolute path. */
function pemFile(
  reader: ConfigReader,
  fields: Fields,
  key: string,
  baseDir: string,
  hint: string,
): string | undefined {
  const entry = fields.entries.get(key);
  if (entry === undefined || reader.isEmpty(entry.value)) {
    reader.missing(fields, key, hint);
    return undefined;
  }
  const text = reader.string(fields, key);
  if (text === undefined) return undefined;
  const file = resolve(baseDir, text);
  let problem: string | undefined;
  try {
    if (!statSync(file).isFile()) problem = `${file} is not a file`;
    else readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    problem =
      code === 'ENOENT' ? `no such file (looked for ${file})` : `cannot be read: ${code ?? error}`;
  }
  if (problem !== undefined) {
    reader.report(entry.value, entry.path, problem);
    return undefined;
  }
  return file;
}
