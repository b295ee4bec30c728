// A write transaction of admission that PostgreSQL rolled back for a conflict with another transaction (chosen as a
// deadlock victim, 40P01, or a serialization failure, 40001) is run again, so a client is never refused for a
// conflict it did not cause. The bound keeps a conflict that persists from holding the client's answer for long:
// each deadlock already costs PostgreSQL's deadlock_timeout (1 s by default) to be detected, so three tries answer
// within about three seconds, with `error:` if the last one fails too (nothing of a failed try is kept: it was
// rolled back whole).
import type { Logger } from '../../log.js';
import { retrying } from '../../lib/retry.js';
import { isTransactionConflict } from '../../store/retryable-errors.js';

/** Tries of one write transaction, the first included. */
export const CONFLICT_ATTEMPTS = 3;
/** The wait before the second try (doubled before the third), jittered to ½–1½ times that. */
const CONFLICT_BASE_DELAY_MS = 25;

/** Runs `write` (a whole transaction, or one statement outside any) again when it failed on a conflict. */
export function retryingConflicts<T>(log: Logger, what: string, write: () => Promise<T>): Promise<T> {
  return retrying(write, {
    attempts: CONFLICT_ATTEMPTS,
    baseDelayMs: CONFLICT_BASE_DELAY_MS,
    retryable: isTransactionConflict,
    onRetry: (err, attempt, delayMs) =>
      log.warn(
        { err, what, attempt, of: CONFLICT_ATTEMPTS, delayMs },
        'a write conflicted with another transaction and was rolled back; running it again',
      ),
  });
}
