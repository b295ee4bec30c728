// Coalesces lookups made in the same turn of the event loop into one call (like DataLoader): under load, a
// hundred concurrent "is this id stored?" questions cost one query instead of a hundred round trips, and
// alone a question costs no extra wait.
export type BatchLoad<K, V> = (keys: K[]) => Promise<Map<K, V>>;

export function createBatcher<K, V>(load: BatchLoad<K, V>, maxBatch = 500): (key: K) => Promise<V | undefined> {
  let pending = new Map<K, { resolve: (v: V | undefined) => void; reject: (e: unknown) => void }[]>();
  let scheduled = false;

  function flush(): void {
    scheduled = false;
    const batch = pending;
    pending = new Map();
    const keys = [...batch.keys()];
    for (let i = 0; i < keys.length; i += maxBatch) {
      const chunk = keys.slice(i, i + maxBatch);
      load(chunk).then(
        (found) => {
          for (const k of chunk) for (const w of batch.get(k) ?? []) w.resolve(found.get(k));
        },
        (err: unknown) => {
          for (const k of chunk) for (const w of batch.get(k) ?? []) w.reject(err);
        },
      );
    }
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
