import type { Rollback } from '../src/cluster/audit.ts';
import type { CaptureOutcome, CapturePlan } from './types.ts';
import type { AfterImage } from './values.ts';

/**
 * Start of the reason given when the rows an UPDATE changed are not the rows locked before it
 * (a concurrent insert or update made other rows match). Running the statement again from a
 * savepoint usually succeeds; `isConcurrentChange` tells the proxy when to do so.
 */
export const CONCURRENT_CHANGE = 'rows changed concurrently';

export function isConcurrentChange(outcome: CaptureOutcome): boolean {
  return (
    outcome.reversibility === 'irreversible' && !!outcome.reason?.startsWith(CONCURRENT_CHANGE)
  );
}

export function failed(reason: string): CaptureOutcome {
  return { rollback: null, reversibility: 'irreversible', reason, afterImage: null };
}

export function tooLarge(rows: number, limit: number): CaptureOutcome {
  return failed(`too large: ${rows} rows, limit ${limit}`);
}

/** An undo that is exact unless `partialReasons` name effects it does not cover. */
export function captured(
  rollback: Rollback,
  partialReasons: readonly string[],
  afterImage: AfterImage | AfterImage[],
): CaptureOutcome {
  return {
    rollback,
    reversibility: partialReasons.length > 0 ? 'partial' : 'exact',
    reason: partialReasons.length > 0 ? partialReasons.join('; ') : null,
    afterImage,
  };
}

/**
 * `build` runs after the change has executed, so it never throws: a failure to build the undo
 * makes the change irreversible, with the cause as the reason, instead of failing the change.
 */
export function safeBuild(build: CapturePlan['build']): CapturePlan['build'] {
  return (rows) => {
    try {
      return build(rows);
    } catch (error) {
      return failed(`the undo could not be built: ${(error as Error).message}`);
    }
  };
}
