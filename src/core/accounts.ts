// Accounts: the user behind a pubkey, created the first time it publishes a correctly signed event or calls the
// API. Lookups are cached in the process because every event needs one; a change of status (suspension)
// invalidates the entry through `invalidate` (and, across processes, core/cache-invalidation.ts).
import type { Knex } from 'knex';
import { LRUCache } from 'lru-cache';
import { findUsersByPubkeys, upsertUserByPubkey, type UserRecord } from '../store/users.js';
import { createBatcher } from './batcher.js';

export interface Accounts {
  /** The user for this pubkey, created (active, on basic) if there is none. Only for a proven pubkey. */
  forPubkey(pubkey: string): Promise<UserRecord>;
  /** The user for this pubkey if one exists; never creates one, so it is safe before a signature is checked. */
  find(pubkey: string): Promise<UserRecord | undefined>;
  invalidate(pubkey: string): void;
}

export function createAccounts(db: Knex, opts: { max?: number; ttlMs?: number } = {}): Accounts {
  const cache = new LRUCache<string, UserRecord>({ max: opts.max ?? 50_000, ttl: opts.ttlMs ?? 60_000 });
  const pending = new Map<string, Promise<UserRecord>>();
  // Bumped by invalidate: a lookup that started before an invalidation must not cache what it read.
  let generation = 0;

  const remember = (pubkey: string, user: UserRecord, startedAt: number): UserRecord => {
    if (startedAt === generation) cache.set(pubkey, user);
    return user;
  };
  // A burst of events from many authors the cache does not know yet costs one query, not one per author.
  const lookup = createBatcher<string, UserRecord>(async (pubkeys) => {
    const startedAt = generation;
    const found = await findUsersByPubkeys(db, pubkeys);
    for (const [pubkey, user] of found) remember(pubkey, user, startedAt);
    return found;
  });

  return {
    async forPubkey(pubkey) {
      const hit = cache.get(pubkey);
      if (hit) return hit;
      // Concurrent events of a new user share one lookup instead of racing inserts.
      let p = pending.get(pubkey);
      if (!p) {
        const startedAt = generation;
        p = upsertUserByPubkey(db, pubkey)
          .then(({ user }) => remember(pubkey, user, startedAt))
          .finally(() => pending.delete(pubkey));
        pending.set(pubkey, p);
      }
      return p;
    },
    async find(pubkey) {
      const hit = cache.get(pubkey);
      if (hit) return hit;
      return lookup(pubkey);
    },
    invalidate(pubkey) {
      generation++;
      cache.delete(pubkey);
    },
  };
}
