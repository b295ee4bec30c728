// Accounts: the user behind a pubkey (the account's primary key or a key linked to it, core/accounts/identities.ts),
// created the first time it publishes a correctly signed event or calls the API. Lookups are cached in the process because every event needs one; a change of status (suspension)
// invalidates the entry through `invalidate` (and, across processes, core/accounts/cache-invalidation.ts). A look-up also
// reads the user's plan and hands it to core/quota/plans.ts: an author whose entries have expired (most users post a
// few times a day, and the caches keep entries a minute) costs one query before their event, not two.
// A new author's account is not saved on its own: forNewAuthor gives it an id and the free plan in memory, and the
// statement that stores their first event saves it (core/admission/group-commit.ts), so a first post costs no
// statement, round trip or commit more than the hundredth; `saved` then caches it as stored. That id is a UUIDv7,
// as the database's default for accounts (migration 0025): time-ordered, it lands on the newest pages of the keys;
// its random part comes from a pooled buffer (lib/random-pool.ts), not a system call per id. Whether a pubkey is a new
// author's is known without a look-up when no account key could be it (known-keys.ts): such a first post skips the
// look-up altogether, and `existing` looks the author up when the statement found the account after all.
import type { Knex } from 'knex';
import { LRUCache } from 'lru-cache';
import { v7 as uuidV7 } from 'uuid';
import type { Logger } from '../../log.js';
import {
  countAccountKeys,
  findUsersWithPlans,
  listAccountKeys,
  unsavedUser,
  upsertUserByPubkey,
  type UserRecord,
} from '../../store/users.js';
import { createBatcher } from '../../lib/batcher.js';
import { pooledRandomBytes } from '../../lib/random-pool.js';
import { createTtlMap } from '../../lib/ttl-map.js';
import type { Plans } from '../quota/index.js';
import { createKnownKeys } from './known-keys.js';

export interface Accounts {
  /** The user for this pubkey, created (active, on basic) if there is none. Only for a proven pubkey. */
  forPubkey(pubkey: string): Promise<UserRecord>;
  /** The user for this pubkey if one exists; never creates one, so it is safe before a signature is checked. */
  find(pubkey: string): Promise<UserRecord | undefined>;
  /** True when, as far as this process can tell without I/O, no account has this key (a hint: see known-keys.ts). */
  isNew(pubkey: string): boolean;
  /** The account of a key presumed new that the storing statement found taken (another process's, or linked). */
  existing(pubkey: string): Promise<UserRecord | undefined>;
  /** Loads the account keys that isNew answers from (at start, in the background); until then nothing is new. */
  loadKeys(): Promise<void>;
  /** Stops loading account keys (the service is closing); resolves when a load in flight has ended. */
  close(): Promise<void>;
  /** A key that names an account: the author of an event stored by any process (the fan-out). */
  keyInUse(pubkey: string): void;
  /** A new author's account, unsaved, for a proven pubkey find() did not know (core/admission/contract.ts AuthorLookup). */
  forNewAuthor(pubkey: string): UserRecord;
  /** A new author's account as the statement that stored their event saved it. */
  saved(user: UserRecord): void;
  /**
   * Drops the cached account of `pubkey`, and with `userId` every cached key of that account (a key linked to an
   * account is cached under its own pubkey: a change of the account's status must drop those entries too).
   */
  invalidate(pubkey: string, userId?: string): void;
}

export function createAccounts(
  db: Knex,
  opts: { log: Logger; max?: number; ttlMs?: number; plans?: Pick<Plans, 'learn'> },
): Accounts {
  const keys = createKnownKeys({
    list: (after, limit) => listAccountKeys(db, after, limit),
    count: () => countAccountKeys(db),
    log: opts.log,
  });
  const cache = new LRUCache<string, UserRecord>({ max: opts.max ?? 50_000, ttl: opts.ttlMs ?? 60_000 });
  // New authors' accounts until saved: every event of one new author gets the same id (a failed write leaves it
  // here for the next event to save, until it is ttlMs old). Empty most of the time at a steady rate, hence a
  // TtlMap and not an LRUCache (lib/ttl-map.ts).
  const unsaved = createTtlMap<string, UserRecord>({ max: opts.max ?? 50_000, ttlMs: opts.ttlMs ?? 60_000 });
  const pending = new Map<string, Promise<UserRecord>>();
  // Bumped by invalidate: a lookup that started before an invalidation must not cache what it read.
  let generation = 0;

  const remember = (pubkey: string, user: UserRecord, startedAt: number): UserRecord => {
    keys.add(pubkey);
    if (startedAt === generation) cache.set(pubkey, user);
    return user;
  };
  // A burst of events from many authors the cache does not know yet costs one query, not one per author.
  const lookup = createBatcher<string, UserRecord>(async (pubkeys) => {
    const startedAt = generation;
    const learnPlan = opts.plans?.learn();
    const found = await findUsersWithPlans(db, pubkeys);
    const users = new Map<string, UserRecord>();
    for (const [pubkey, { user, planCode }] of found) {
      users.set(pubkey, remember(pubkey, user, startedAt));
      learnPlan?.(user.id, planCode);
    }
    return users;
  });

  const find = async (pubkey: string): Promise<UserRecord | undefined> => cache.get(pubkey) ?? lookup(pubkey);

  return {
    async forPubkey(pubkey) {
      const hit = cache.get(pubkey);
      if (hit) return hit;
      // Concurrent events of a new user share one lookup instead of racing inserts.
      let p = pending.get(pubkey);
      if (!p) {
        const startedAt = generation;
        const learnPlan = opts.plans?.learn();
        // with the id an event of theirs may be saving the account with right now, so both agree
        p = upsertUserByPubkey(db, pubkey, unsaved.get(pubkey)?.id)
          .then(({ user, created }) => {
            if (created) learnPlan?.(user.id, ''); // a user this statement created has no subscription yet
            unsaved.delete(pubkey);
            return remember(pubkey, user, startedAt);
          })
          .finally(() => pending.delete(pubkey));
        pending.set(pubkey, p);
      }
      return p;
    },
    find,
    isNew(pubkey) {
      return !cache.has(pubkey) && !keys.mayExist(pubkey);
    },
    async existing(pubkey) {
      unsaved.delete(pubkey);
      keys.add(pubkey);
      return find(pubkey);
    },
    loadKeys: () => keys.load(),
    close: () => keys.stop(),
    keyInUse: (pubkey) => keys.add(pubkey),
    forNewAuthor(pubkey) {
      const known = cache.get(pubkey) ?? unsaved.get(pubkey);
      if (known) return known;
      const user = unsavedUser(uuidV7({ random: pooledRandomBytes(16) }), pubkey);
      unsaved.set(pubkey, user);
      opts.plans?.learn()(user.id, ''); // a new account has no subscription
      return user;
    },
    saved(user) {
      keys.add(user.pubkey);
      unsaved.delete(user.pubkey);
      cache.set(user.pubkey, user);
    },
    invalidate(pubkey, userId) {
      keys.add(pubkey); // a key linked to an account is invalidated so: from now on it is looked up
      generation++;
      cache.delete(pubkey);
      unsaved.delete(pubkey);
      if (userId === undefined) return;
      // Rare (a status, time zone or key change), so a walk over the cache beats keeping an index by account.
      const entries: string[] = [];
      for (const [key, user] of cache.entries()) if (user.id === userId) entries.push(key);
      for (const key of entries) cache.delete(key);
    },
  };
}
