// Reports that repeat (a dependency down: every reconnection attempt, every poll fails the same way) are passed on
// once per quiet period and counted meanwhile, so an outage is a few log lines, not thousands.

/**
 * Returns a reporter that passes a message on at most once per `quietMs` while it repeats, with the number of
 * repeats left out since the last time it was passed on. A different message is passed on at once.
 */
export function quietly(
  report: (message: string, repeats: number) => void,
  quietMs = 30_000,
): (message: string) => void {
  let last = '';
  let at = -Infinity;
  let repeats = 0;
  return (message) => {
    const now = Date.now();
    if (message === last && now - at < quietMs) {
      repeats += 1;
      return;
    }
    report(message, repeats);
    last = message;
    at = now;
    repeats = 0;
  };
}
