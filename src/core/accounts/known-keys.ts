// Which pubkeys may name an account, answered without I/O: a Bloom filter of every account key (primary or linked),
// loaded from the database when the service starts and told of each key this process learns since. A first post
// then skips the look-up that would find nothing (a round trip on every new author's path, docs/benchmarks.md).
// "No account" is this process's view, not a fact: another process may have made the account, or linked the key,
// after the load. So it is only a hint: the statement that stores a presumed first post stores it only if it saves
// the account itself (store/event-batch.ts), and otherwise the post is admitted again after a look-up
// (core/admission/pipeline.ts). A false positive costs the look-up every post paid before.
import { BloomFilter } from 'bloomfilter';
import type { Logger } from '../../log.js';

export interface KnownKeys {
  /** False only when no account had this key at the last load and this process has not learned of one since. */
  mayExist(pubkey: string): boolean;
  /** A key that names an account now (or may: a key being linked). */
  add(pubkey: string): void;
  /**
   * Reads every account key into a new filter sized for them, which replaces the old one when complete. Until the
   * first load completes every key may exist. Resolves when done; a failure is logged, keeps the old filter, and is
   * tried again `retryMs` later (not sooner, however many keys are learned meanwhile).
   */
  load(): Promise<void>;
  /** No load after this one; resolves when the one in flight, if any, has ended. */
  stop(): Promise<void>;
}

export interface KnownKeysOptions {
  /** Account keys in order, `limit` at a time after `after` ('' to start): store/users.ts listAccountKeys. */
  readonly list: (after: string, limit: number) => Promise<readonly string[]>;
  /** How many account keys there are (store/users.ts countAccountKeys), to size the filter. */
  readonly count: () => Promise<number>;
  readonly log: Logger;
  /** Keys read per statement. */
  readonly page?: number;
  /** The fewest keys a filter is sized for; it is sized for twice the keys counted when that is more. */
  readonly minCapacity?: number;
  /** After a failed load, the wait before the next (milliseconds). */
  readonly retryMs?: number;
}

/** False positives wanted at capacity: one first post in a hundred pays the look-up it would have paid anyway. */
const FALSE_POSITIVE_RATE = 0.01;

interface Sized {
  readonly filter: BloomFilter;
  readonly capacity: number;
  count: number;
}

function sized(capacity: number): Sized {
  // the optimal bits and hash count for the capacity and rate (~9.6 bits and 7 hashes a key at 1 %)
  const bits = Math.ceil((-capacity * Math.log(FALSE_POSITIVE_RATE)) / Math.LN2 ** 2);
  const hashes = Math.max(1, Math.round((bits / capacity) * Math.LN2));
  return { filter: new BloomFilter(bits, hashes), capacity, count: 0 };
}

export function createKnownKeys(opts: KnownKeysOptions): KnownKeys {
  const page = opts.page ?? 10_000;
  const minCapacity = opts.minCapacity ?? 1_000_000;
  const retryMs = opts.retryMs ?? 30_000;
  let current: Sized | undefined;
  // while a load runs: the keys learned meanwhile, which the pages it already read may have passed
  let learned: string[] | undefined;
  let loading: Promise<void> | undefined;
  let retry: NodeJS.Timeout | undefined;
  let stopped = false;

  // counted only when new to the filter: keys are told again and again (every look-up, every event of another process)
  const put = (s: Sized, key: string): void => {
    if (s.filter.test(key)) return;
    s.filter.add(key);
    s.count++;
  };

  async function readAll(during: string[]): Promise<void> {
    const started = Date.now();
    // sized before reading, so that the keys go straight into it (ten million keys held as strings would be ~1 GB)
    const building = sized(Math.max(minCapacity, 2 * (await opts.count())));
    for (let after = ''; ;) {
      const got = await opts.list(after, page);
      for (const key of got) put(building, key);
      if (got.length < page) break;
      after = got[got.length - 1]!;
    }
    for (const key of during) put(building, key);
    current = building;
    opts.log.info(
      { keys: building.count, capacity: building.capacity, ms: Date.now() - started },
      'account keys loaded',
    );
  }

  function load(): Promise<void> {
    if (stopped) return Promise.resolve();
    clearTimeout(retry);
    retry = undefined;
    loading ??= (async () => {
      const during: string[] = [];
      learned = during;
      try {
        await readAll(during);
      } catch (err) {
        opts.log.warn({ err, retryMs }, 'account keys could not be loaded; authors are looked up meanwhile');
        // one try a while later: a database that is away would otherwise be asked again at every key learned
        if (!stopped) retry = setTimeout(() => void load(), retryMs).unref();
      } finally {
        learned = undefined;
        loading = undefined;
      }
    })();
    return loading;
  }

  return {
    mayExist(pubkey) {
      return current === undefined || current.filter.test(pubkey);
    },
    add(pubkey) {
      learned?.push(pubkey);
      if (!current) return;
      put(current, pubkey);
      // past its capacity the filter answers "may exist" more often (look-ups, never a wrong answer): size it anew
      if (current.count > current.capacity && !loading && !retry) void load();
    },
    load,
    async stop() {
      stopped = true;
      clearTimeout(retry);
      await loading;
    },
  };
}
