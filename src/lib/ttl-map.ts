// A Map whose entries expire `ttlMs` after they were set (or, with `touch`, last read), and which drops its oldest
// entries past `max`. For the bounded caches that are often empty, in place of lru-cache: lru-cache (11.5) clears
// every one of its slot arrays, O(max), when its last entry is deleted, which for a cache of 50,000–500,000 slots
// is 0.1–1 ms of the main thread each time a quiet relay's only entry expires or a first post's is dropped
// (docs/benchmarks.md). A Map costs nothing when empty and keeps its order for the oldest-first drop.
export interface TtlMap<K, V> {
  get(key: K): V | undefined;
  set(key: K, value: V): void;
  delete(key: K): void;
  readonly size: number;
}

export interface TtlMapOptions {
  readonly max: number;
  readonly ttlMs: number;
  /** A read renews the entry's time and makes it the newest (least recently used dropped first). */
  readonly touch?: boolean;
  /** Milliseconds; injectable for tests. */
  readonly now?: () => number;
}

export function createTtlMap<K, V>(opts: TtlMapOptions): TtlMap<K, V> {
  const { max, ttlMs, touch = false, now = Date.now } = opts;
  const entries = new Map<K, { value: V; at: number }>();
  return {
    get(key) {
      const e = entries.get(key);
      if (!e) return undefined;
      const t = now();
      if (t - e.at > ttlMs) {
        entries.delete(key);
        return undefined;
      }
      if (touch) {
        e.at = t;
        entries.delete(key);
        entries.set(key, e);
      }
      return e.value;
    },
    set(key, value) {
      if (!entries.delete(key) && entries.size >= max) {
        const oldest = entries.keys().next();
        if (!oldest.done) entries.delete(oldest.value);
      }
      entries.set(key, { value, at: now() });
    },
    delete(key) {
      entries.delete(key);
    },
    get size() {
      return entries.size;
    },
  };
}
