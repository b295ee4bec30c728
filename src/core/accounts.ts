// Accounts: the user behind a pubkey, created on first contact. Lookups are cached in the process because every
// event needs one; a change of status (suspension) invalidates the entry through `invalidate`.
import type { Knex } from 'knex';
import { LRUCache } from 'lru-cache';
import { upsertUserByPubkey, type UserRecord } from '../store/users.js';

export interface Accounts {
  forPubkey(pubkey: string): Promise<UserRecord>;
  invalidate(pubkey: string): void;
}

export function createAccounts(db: Knex, opts: { max?: number; ttlMs?: number } = {}): Accounts {
  const cache = new LRUCache<string, UserRecord>({ max: opts.max ?? 50_000, ttl: opts.ttlMs ?? 60_000 });
  const pending = new Map<string, Promise<UserRecord>>();
  return {
    async forPubkey(pubkey) {
      const hit = cache.get(pubkey);
      if (hit) return hit;
      // Concurrent events of a new user share one lookup instead of racing inserts.
      let p = pending.get(pubkey);
      if (!p) {
        p = upsertUserByPubkey(db, pubkey)
          .then(({ user }) => {
            cache.set(pubkey, user);
            return user;
          })
          .finally(() => pending.delete(pubkey));
        pending.set(pubkey, p);
      }
      return p;
    },
    invalidate(pubkey) {
      cache.delete(pubkey);
    },
  };
}
