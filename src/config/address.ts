import { isIP } from 'node:net';
import { isScalar, type Node } from 'yaml';
import type { ConfigReader, KeyPath } from './reader.ts';
import type { ListenConfig } from './types.ts';

const LABEL = '[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOSTNAME = new RegExp(`^(?=.{1,253}$)${LABEL}(\\.${LABEL})*$`);

/** A host to listen on or connect to: an IPv4 or IPv6 address or a DNS name. */
export function isHost(host: string): boolean {
  return isIP(host) !== 0 || HOSTNAME.test(host);
}

/**
 * `host:port` as people write it: `127.0.0.1:6432`, `[::1]:6432`, `localhost:6432`, or a bare
 * port. Returns a problem sentence instead of throwing.
 */
export function parseAddress(text: string, fallbackHost: string): ListenConfig | string {
  const trimmed = text.trim();
  let host = fallbackHost;
  let portText = trimmed;
  if (!/^\d+$/.test(trimmed)) {
    const colon = trimmed.lastIndexOf(':');
    if (colon < 0) return `expected "host:port", got ${JSON.stringify(text)} (no port)`;
    host = trimmed.slice(0, colon);
    portText = trimmed.slice(colon + 1);
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    else if (host.includes(':')) {
      const hint = 'write IPv6 addresses in brackets: "[::1]:6432"';
      return `expected "host:port", got ${JSON.stringify(text)}; ${hint}`;
    }
  }
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
    return `expected "host:port" with a port from 0 to 65535, got ${JSON.stringify(text)}`;
  }
  if (!isHost(host)) {
    const shown = JSON.stringify(host);
    return `expected "host:port", got ${JSON.stringify(text)} (${shown} is not a host)`;
  }
  return { host, port: Number(portText) };
}

/**
 * A listen address: `"host:port"`, a bare port, or `{ host, port }`. Port 0 asks the operating
 * system for a free port (tests). Missing parts come from the default.
 */
export function readListen(
  reader: ConfigReader,
  node: Node | null,
  path: KeyPath,
  fallback: ListenConfig,
): ListenConfig | undefined {
  const resolved = reader.resolve(node);
  if (reader.isEmpty(resolved)) return { ...fallback };
  if (isScalar(resolved) && typeof resolved.value === 'number') {
    const port = resolved.value;
    if (Number.isInteger(port) && port >= 0 && port <= 65535) return { host: fallback.host, port };
    reader.report(
      resolved,
      path,
      `expected a port from 0 to 65535, got ${reader.describe(resolved)}`,
    );
    return undefined;
  }
  if (isScalar(resolved)) {
    const text = reader.text(resolved, path);
    if (text === undefined) return undefined;
    const parsed = parseAddress(text.value, fallback.host);
    if (typeof parsed === 'string') {
      reader.report(resolved, path, parsed);
      return undefined;
    }
    return parsed;
  }
  const fields = reader.mapping(resolved, path, { known: ['host', 'port'] });
  if (fields === undefined) return undefined;
  const host = reader.string(fields, 'host') ?? fallback.host;
  const hostEntry = fields.entries.get('host');
  if (!isHost(host)) {
    reader.report(
      hostEntry?.value,
      [...path, 'host'],
      `expected an IP address or host name, got ${JSON.stringify(host)}`,
    );
    return undefined;
  }
  const before = reader.issues.length;
  const port = reader.integer(fields, 'port', { min: 0, max: 65535 });
  if (reader.issues.length > before) return undefined;
  return { host, port: port ?? fallback.port };
}
