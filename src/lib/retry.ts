// Bounded retries with a jittered exponential backoff, for failures a second try can cure (a deadlock victim, a
// lock wait that timed out). The caller names those failures; any other error is thrown at once, and the last
// failure is thrown when the tries are used up.

export interface RetryOptions {
  /** Tries in all, the first one included (1 = no retry). */
  readonly attempts: number;
  /** The wait after the first failure; each later wait doubles. Each is drawn from ½ to 1½ times that. */
  readonly baseDelayMs: number;
  /** Whether this failure may be cured by trying again. */
  readonly retryable: (err: unknown) => boolean;
  /** Told each failure that is going to be retried, with the try that failed (1-based) and the wait before the next. */
  readonly onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * The wait after failed try `attempt` (1-based): baseMs·2^(attempt−1), jittered to between ½ and 1½ times that, so
 * two parties that failed together do not try again together.
 */
export function backoffDelay(baseMs: number, attempt: number, random: () => number = Math.random): number {
  return Math.round(baseMs * 2 ** (attempt - 1) * (0.5 + random()));
}

/** Runs `run` until it succeeds, fails with an error that is not retryable, or has been tried `attempts` times. */
export async function retrying<T>(run: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  if (!Number.isInteger(opts.attempts) || opts.attempts < 1)
    throw new RangeError(`attempts must be an integer >= 1, got ${opts.attempts}`);
  for (let attempt = 1; ; attempt++) {
    try {
      return await run(attempt);
    } catch (err) {
      if (attempt >= opts.attempts || !opts.retryable(err)) throw err;
      const delayMs = backoffDelay(opts.baseDelayMs, attempt);
      opts.onRetry?.(err, attempt, delayMs);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
