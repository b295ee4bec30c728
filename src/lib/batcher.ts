// Coalesces lookups made in the same turn of the event loop into one call (like DataLoader): under load, a
// hundred concurrent "is this id stored?" questions cost one query instead of a hundred round trips, and
// alone a question costs no extra wait. With `maxInFlight`, no more calls than that run at once: what is asked
// meanwhile waits and leaves together when one returns, so batches grow with the load instead of the calls.
// With `weight`, a call also carries at most `maxWeight` of it (a heavier key goes alone): a statement binding a
// value per author, say, stays within what the database accepts.
export type BatchLoad<K, V> = (keys: K[]) => Promise<Map<K, V>>;

export interface BatcherOptions<K> {
  /** Keys per call (default 500). */
  readonly maxBatch?: number;
  /** Calls running at once (default: no limit). */
  readonly maxInFlight?: number;
  /**
   * While fewer calls than this run, a key asked leaves at once, alone, instead of at the end of the turn (default
   * 0: never). For loads whose shared call costs more per key than a call alone, and pays only under load.
   */
  readonly aloneUnder?: number;
  /** What one key costs a call (default 1 for every key); a call carries at most `maxWeight` of it. */
  readonly weight?: (key: K) => number;
  /** The weight one call carries at most (default: no limit); a key heavier than it is a call of its own. */
  readonly maxWeight?: number;
}

type Waiter<V> = { resolve: (v: V | undefined) => void; reject: (e: unknown) => void };

export function createBatcher<K, V>(
  load: BatchLoad<K, V>,
  options: BatcherOptions<K> = {},
): (key: K) => Promise<V | undefined> {
  const maxBatch = options.maxBatch ?? 500;
  const maxInFlight = options.maxInFlight ?? Number.POSITIVE_INFINITY;
  const maxWeight = options.maxWeight ?? Number.POSITIVE_INFINITY;
  const weight = options.weight ?? (() => 1);
  const aloneUnder = Math.min(options.aloneUnder ?? 0, maxInFlight);
  let pending = new Map<K, Waiter<V>[]>();
  let scheduled = false;
  let inFlight = 0;

  function run(chunk: K[], waiters: Map<K, Waiter<V>[]>): void {
    inFlight++;
    // a load that throws instead of rejecting still frees its place (a key asked alone runs in the asker's call)
    (async () => load(chunk))()
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
    const calls = chunks([...batch.keys()]);
    let i = 0;
    for (; i < calls.length && inFlight < maxInFlight; i++) run(calls[i]!, batch);
    for (const k of calls.slice(i).flat()) pending.set(k, batch.get(k) ?? []);
  }

  /** Consecutive runs of keys, each within maxBatch keys and maxWeight. */
  function chunks(keys: K[]): K[][] {
    const out: K[][] = [];
    let current: K[] = [];
    let carried = 0;
    for (const k of keys) {
      const w = weight(k);
      if (current.length > 0 && (current.length >= maxBatch || carried + w > maxWeight)) {
        out.push(current);
        current = [];
        carried = 0;
      }
      current.push(k);
      carried += w;
    }
    if (current.length > 0) out.push(current);
    return out;
  }

  return (key) =>
    new Promise<V | undefined>((resolve, reject) => {
      if (inFlight < aloneUnder && pending.size === 0) {
        run([key], new Map([[key, [{ resolve, reject }]]]));
        return;
      }
      const waiters = pending.get(key);
      if (waiters) waiters.push({ resolve, reject });
      else pending.set(key, [{ resolve, reject }]);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}
