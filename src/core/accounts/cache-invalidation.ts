// Cache invalidation for accounts and plans, in this process and (with Redis) in every other one. Whoever changes
// a subscription, a plan row or a user's status calls one of these after the commit; each call drops the entries
// here at once and tells the other processes, which drop theirs when the message arrives (milliseconds).
import type { Channel } from '../../store/pubsub.js';
import type { Accounts } from './accounts.js';
import type { Plans } from '../quota/index.js';

export interface CacheInvalidation {
  /** The user's subscription changed: their effective plan (and any quota state tied to it). */
  user(userId: string): void;
  /**
   * The user's row changed (status, timezone) or one of their keys was linked or unlinked: the cached account of
   * `pubkey`, and with `userId` the cached entries of every key of that account.
   */
  account(pubkey: string, userId?: string): void;
  /** A plan row changed: every plan and every user's effective plan. */
  allPlans(): void;
  close(): Promise<void>;
}

type Message =
  | { readonly k: 'user'; readonly id: string }
  | { readonly k: 'account'; readonly pubkey: string; readonly userId?: string }
  | { readonly k: 'plans' };

export interface CacheInvalidationDeps {
  readonly plans: Plans;
  readonly accounts: Accounts;
  /** Told about every user whose plan changed (the quota's per-user state). */
  readonly onUserPlan?: (userId: string) => void;
  /** Redis pub/sub channel; without one, invalidation stays in this process. */
  readonly channel?: Channel | undefined;
}

export function createCacheInvalidation(deps: CacheInvalidationDeps): CacheInvalidation {
  const apply = (m: Message): void => {
    switch (m.k) {
      case 'user':
        deps.plans.invalidateUser(m.id);
        deps.onUserPlan?.(m.id);
        return;
      case 'account':
        deps.accounts.invalidate(m.pubkey, m.userId);
        return;
      case 'plans':
        deps.plans.invalidateAll();
        return;
    }
  };
  deps.channel?.onMessage((text) => {
    let m: Message;
    try {
      m = JSON.parse(text) as Message;
    } catch {
      return;
    }
    apply(m);
  });
  const send = (m: Message): void => {
    apply(m);
    deps.channel?.publish(JSON.stringify(m));
  };
  return {
    user: (id) => send({ k: 'user', id }),
    account: (pubkey, userId) =>
      send(userId === undefined ? { k: 'account', pubkey } : { k: 'account', pubkey, userId }),
    allPlans: () => send({ k: 'plans' }),
    close: async () => {
      await deps.channel?.close();
    },
  };
}
