import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  dir: string;
  /** PEM certificate for `localhost` and 127.0.0.1, self-signed (it is its own CA). */
  cert: string;
  key: string;
  remove(): void;
}

/** A self-signed certificate made with the `openssl` command, in a new temporary directory. */
export function selfSignedCertificate(commonName = 'localhost'): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'qo-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const result = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=${commonName}`,
      '-days',
      '2',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  if (result.error !== undefined || result.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`openssl could not make a certificate: ${result.error ?? result.stderr}`);
  }
  return { dir, cert, key, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
