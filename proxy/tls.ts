import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import type { TlsConfig, TlsMode } from '../src/config/types.ts';
import { QoError, SqlError, SqlState } from '../src/errors.ts';

/**
 * TLS towards clients: after SSLRequest answered `S`, or directly (PostgreSQL 17's
 * `sslnegotiation=direct`), where the client opens with a TLS ClientHello and must name the
 * ALPN protocol `postgresql`.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
 */
export interface ClientTls {
  mode: TlsMode;
  /** Set unless the mode is `disable`. */
  context: SecureContext | undefined;
}

/** The ALPN protocol name PostgreSQL registered. */
export const ALPN = 'postgresql';

/** The first byte of a TLS record carrying a handshake message (the ClientHello). */
const TLS_HANDSHAKE = 0x16;

/** The single byte that accepts SSLRequest. */
export const acceptSsl = Buffer.from('S');

/** Loads the certificate and key once, when the proxy starts. */
export function clientTls(config: TlsConfig | undefined): ClientTls {
  if (config === undefined || config.mode === 'disable')
    return { mode: 'disable', context: undefined };
  if (config.cert === undefined || config.key === undefined) {
    throw new QoError('CONFIG_INVALID', `tls.mode ${config.mode} needs tls.cert and tls.key`);
  }
  try {
    const context = createSecureContext({
      cert: readFileSync(config.cert),
      key: readFileSync(config.key),
    });
    return { mode: config.mode, context };
  } catch (error) {
    throw new QoError('CONFIG_INVALID', `tls: ${(error as Error).message}`, { cause: error });
  }
}

/** Whether the first bytes a client sent open a TLS handshake rather than a startup message. */
export function isClientHello(chunk: Buffer): boolean {
  return chunk[0] === TLS_HANDSHAKE;
}

/**
 * Runs TLS on a client socket from now on. `received` holds bytes already read that belong to
 * the handshake (the ClientHello of a direct connection); they are given back to the socket
 * so that TLS reads them first.
 */
export function upgrade(socket: Socket, tls: ClientTls, received?: Buffer): TLSSocket {
  socket.removeAllListeners('data');
  socket.pause();
  if (received !== undefined && received.length > 0) socket.unshift(received);
  return new TLSSocket(socket, {
    isServer: true,
    secureContext: tls.context as SecureContext,
    ALPNProtocols: [ALPN],
  });
}

/** `tls.mode: require` and a client that did not ask for TLS. */
export function tlsRequired(): SqlError {
  return new SqlError(
    SqlState.INVALID_AUTHORIZATION,
    'TLS is required: the password is a token and must not travel in clear text',
    {
      severity: 'FATAL',
      hint: 'Connect with sslmode=require (or verify-ca, verify-full).',
    },
  );
}

/** A direct TLS connection must negotiate ALPN `postgresql`, as PostgreSQL 17 requires. */
export function alpnMissing(): SqlError {
  return new SqlError(
    SqlState.PROTOCOL_VIOLATION,
    'received direct SSL connection request without ALPN protocol negotiation extension',
    { severity: 'FATAL' },
  );
}

/** Plain bytes after SSLRequest, before the answer: they would bypass TLS (CVE-2021-23214). */
export function unencryptedAfterSsl(): SqlError {
  return new SqlError(SqlState.PROTOCOL_VIOLATION, 'received unencrypted data after SSL request', {
    severity: 'FATAL',
  });
}
