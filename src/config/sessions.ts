import { isScalar, type Node } from 'yaml';
import type { ConfigReader, KeyPath } from './reader.ts';
import type { SessionsConfig } from './types.ts';

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  min: 60_000,
  m: 60_000,
  h: 3_600_000,
};
/** setTimeout's limit (about 24.8 days). */
const MAX_MS = 2 ** 31 - 1;

/**
 * `500ms`, `60s`, `5m`, `1h` in milliseconds; `0` and `off` are 0 (no limit). A bare number
 * other than 0 is refused: PostgreSQL reads it as milliseconds, people often mean seconds.
 */
export function parseTimeout(text: string): number | undefined {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === '0' || trimmed === 'off') return 0;
  const match = /^(\d+)\s*(ms|s|min|m|h)$/.exec(trimmed);
  if (match === null) return undefined;
  const ms = Number(match[1]) * (UNIT_MS[match[2] as string] ?? 1);
  return ms <= MAX_MS ? ms : undefined;
}

/** `sessions: { idle_in_transaction_timeout }`; absent means no limit. */
export function readSessions(
  reader: ConfigReader,
  node: Node | null,
  path: KeyPath,
): SessionsConfig | undefined {
  const off: SessionsConfig = { idleInTransactionTimeoutMs: 0 };
  if (reader.isEmpty(reader.resolve(node))) return off;
  const fields = reader.mapping(node, path, { known: ['idle_in_transaction_timeout'] });
  if (fields === undefined) return undefined;
  const entry = fields.entries.get('idle_in_transaction_timeout');
  if (entry === undefined || reader.isEmpty(entry.value)) return off;
  const value = entry.value;
  // YAML reads `off` as a string and `0` as a number; both mean no limit.
  const text =
    isScalar(value) && typeof value.value === 'number'
      ? String(value.value)
      : reader.text(value, entry.path)?.value;
  if (text === undefined) return undefined;
  const ms = parseTimeout(text);
  if (ms === undefined) {
    reader.report(
      value,
      entry.path,
      `expected a duration such as 60s, 500ms or 5m (at most 24 days), or off; got ${JSON.stringify(text)}`,
    );
    return undefined;
  }
  return { idleInTransactionTimeoutMs: ms };
}
