import type { AuditEntry } from '../src/cluster/audit.ts';

/*
 * Which audited changes a larger undo runs, newest first: those of one client transaction, or
 * every change committed on a cluster after a given entry.
 */

/** Entries that cannot be undone, and why: the larger undo is refused while any is left. */
export interface Blocking {
  id: number;
  reason: string;
}

export interface UndoSelection {
  /** To undo, newest first. */
  entries: AuditEntry[];
  blocking: Blocking[];
}

function changed(entry: AuditEntry): boolean {
  return entry.outcome === 'committed' && entry.reversibility !== 'none';
}

function blockingOf(entry: AuditEntry): Blocking | undefined {
  if (entry.reversibility === 'irreversible' || entry.rollback === null) {
    return { id: entry.id, reason: entry.reason ?? 'no rollback was recorded' };
  }
  return undefined;
}

function byIdNewestFirst(entries: readonly AuditEntry[]): AuditEntry[] {
  return [...entries].sort((a, b) => b.id - a.id);
}

/** The changes of one client transaction still in effect (not rolled back), newest first. */
export function transactionUndo(entries: readonly AuditEntry[]): UndoSelection {
  const selected = byIdNewestFirst(entries).filter(
    (entry) => changed(entry) && entry.rolledBackBy === null,
  );
  return {
    entries: selected,
    blocking: selected.map(blockingOf).filter((b) => b !== undefined),
  };
}

/**
 * Every change after entry `after` whose effect is still there, newest first. A change and its
 * rollback that both came after the point cancel out and are both left alone; a rollback of a
 * change made before the point is itself undone (which redoes that change). Entries rolled back
 * by a rollback that was undone in turn are in effect again, and are undone.
 */
export function pointInTimeUndo(after: number, later: readonly AuditEntry[]): UndoSelection {
  const cancelled = new Set<number>();
  const selected: AuditEntry[] = [];
  for (const entry of byIdNewestFirst(later)) {
    if (entry.id <= after || !changed(entry) || cancelled.has(entry.id)) continue;
    if (entry.rollbackOf !== null && entry.rollbackOf > after) {
      cancelled.add(entry.rollbackOf);
      continue;
    }
    selected.push(entry);
  }
  return {
    entries: selected,
    blocking: selected.map(blockingOf).filter((b) => b !== undefined),
  };
}
