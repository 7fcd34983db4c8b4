import { randomBytes } from 'node:crypto';
import type { Transaction } from './transaction.ts';

/**
 * This proxy process, among the instances that may share a cluster: a random id drawn at start,
 * written into every global transaction identifier it prepares and into the application_name
 * of its monitor connections, so that recovery can tell whose prepared transaction it found
 * and whether that instance still runs.
 */
export const INSTANCE = randomBytes(4).toString('hex');

/** application_name of the monitor connections; pg_stat_activity shows it to every role. */
export const MONITOR_APPLICATION = `qo-monitor ${INSTANCE}`;

/** Global transaction identifiers this process has prepared and is still committing. */
export const inFlight = new Set<string>();

/** The identifier for PREPARE TRANSACTION: `qo_<instance>_<transaction id>` (44 bytes; the limit is 200). */
export function gidFor(txn: Transaction): string {
  return `qo_${INSTANCE}_${txn.id.replaceAll('-', '')}`;
}

/** The instance that prepared `gid`; undefined for identifiers without one (older releases). */
export function ownerOf(gid: string): string | undefined {
  return /^qo_([0-9a-f]{8})_[0-9a-f]{32}$/.exec(gid)?.[1];
}

/** The instance behind a monitor connection's application_name, if it is one. */
export function monitorInstance(applicationName: string): string | undefined {
  return /^qo-monitor ([0-9a-f]{8})$/.exec(applicationName)?.[1];
}
