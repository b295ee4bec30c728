// Coalesces lookups made in the same turn of the event loop into one call (like DataLoader): under load, a
// hundred concurrent "is this id stored?" questions cost one query instead of a hundred round trips, and
// alone a question costs no extra wait. With `maxInFlight`, no more calls than that run at once: what is asked
// meanwhile waits and leaves together when one returns, so batches grow with the load instead of the calls.
export type BatchLoad<K, V> = (keys: K[]) => Promise<Map<K, V>>;

export interface BatcherOptions {
  /** Keys per call (default 500). */
  readonly maxBatch?: number;
  /** Calls running at once (default: no limit). */
  readonly maxInFlight?: number;
}

type Waiter<V> = { resolve: (v: V | undefined) => void; reject: (e: unknown) => void };

export function createBatcher<K, V>(
  load: BatchLoad<K, V>,
  options: BatcherOptions = {},
): (key: K) => Promise<V | undefined> {
  const maxBatch = options.maxBatch ?? 500;
  const maxInFlight = options.maxInFlight ?? Number.POSITIVE_INFINITY;
  let pending = new Map<K, Waiter<V>[]>();
  let scheduled = false;
  let inFlight = 0;

  function run(chunk: K[], waiters: Map<K, Waiter<V>[]>): void {
    inFlight++;
    load(chunk)
      .then(
        (found) => {
          for (const k of chunk) for (const w of waiters.get(k) ?? []) w.resolve(found.get(k));
        },
        (err: unknown) => {
          for (const k of chunk) for (const w of waiters.get(k) ?? []) w.reject(err);
        },
      )
      .finally(() => {
        inFlight--;
        if (pending.size > 0 && !scheduled) flush();
      });
  }

  function flush(): void {
    scheduled = false;
    if (inFlight >= maxInFlight) return; // the next call to return takes them
    const batch = pending;
    pending = new Map();
    const keys = [...batch.keys()];
    let i = 0;
    for (; i < keys.length && inFlight < maxInFlight; i += maxBatch) run(keys.slice(i, i + maxBatch), batch);
    for (const k of keys.slice(i)) pending.set(k, batch.get(k) ?? []);
  }

  return (key) =>
    new Promise<V | undefined>((resolve, reject) => {
      const waiters = pending.get(key);
      if (waiters) waiters.push({ resolve, reject });
      else pending.set(key, [{ resolve, reject }]);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}
