import type { Reversibility, Rollback } from '../src/cluster/audit.ts';

/** A value as a backend returned it in binary format, with the column's type OID. */
export interface CapturedValue {
  oid: number;
  value: Buffer | null;
}

export type CapturedRow = CapturedValue[];

/**
 * How to run one client change so that it can be undone exactly: statements to run before it
 * (same bound parameters), the rewritten statement itself with hidden result columns, and how
 * to build the undo from what they returned. Capture happens at execution time; nothing is
 * predicted.
 */
export interface CapturePlan {
  /** Run first, in order, with the client's parameters; their rows (binary) feed `build`. */
  before: string[];
  /** The client's statement with hidden columns appended to its RETURNING list. */
  statement: string;
  /** Number of hidden result columns at the end of each row, stripped before the client sees it. */
  hiddenColumns: number;
  /** True when the client's own statement returns rows (it had a RETURNING clause). */
  clientReturns: boolean;
  /**
   * Run right after `statement`, in order, in the same transaction and without parameters (rows
   * binary); for statements that cannot return hidden columns (MERGE, data-modifying WITH).
   */
  after?: string[];
  /**
   * Builds the undo from the rows of `before` and `after` (one array per statement), the hidden
   * columns of `statement`, and the row count of its command tag.
   */
  build(captured: {
    before: CapturedRow[][];
    returned: CapturedRow[];
    after?: CapturedRow[][];
    rowCount?: number | null;
    /**
     * SQLSTATEs of the notices the first backend sent while these ran; IF [NOT] EXISTS that did
     * nothing says so only this way (e.g. 42P06 for a schema that already existed).
     */
    notices?: string[];
  }): CaptureOutcome;
}

export interface CaptureOutcome {
  rollback: Rollback | null;
  reversibility: Reversibility;
  reason: string | null;
  afterImage: unknown;
}

/** A change that cannot be captured: it runs unchanged and its audit entry says why there is no undo. */
export interface NoCapture {
  reversibility: 'irreversible' | 'none';
  reason: string;
}
