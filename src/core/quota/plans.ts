// Plans: the effective plan of a user is the plan of their active subscription, else `basic`. Both the plan
// list and each user's effective plan are cached in the process; `invalidate…` drops entries when a plan or a
// subscription changes (core/accounts/cache-invalidation.ts carries that across processes through Redis).
import type { Knex } from 'knex';
import { LRUCache } from 'lru-cache';
import { activeSubscriptionPlans, listPlans, type PlanRecord } from '../../store/plans.js';
import { createBatcher } from '../../lib/batcher.js';

export type { PlanRecord };

export const DEFAULT_PLAN = 'basic';

export interface Plans {
  all(): Promise<PlanRecord[]>;
  byCode(code: string): Promise<PlanRecord | undefined>;
  effectivePlan(userId: string): Promise<PlanRecord>;
  /**
   * For a look-up made elsewhere that read users' active plan codes with their rows (core/accounts/accounts.ts): call it
   * when the look-up starts, and the returned function with each code read. A code is kept only if no
   * invalidation came in between, as for this module's own look-ups.
   */
  learn(): (userId: string, code: string) => void;
  invalidateUser(userId: string): void;
  invalidateAll(): void;
}

export function createPlans(db: Knex, opts: { ttlMs?: number; max?: number } = {}): Plans {
  const ttl = opts.ttlMs ?? 60_000;
  let list: { at: number; plans: Promise<PlanRecord[]> } | undefined;
  // The user's active plan code ('' = none, so basic); plan rows come from the list cache.
  const perUser = new LRUCache<string, string>({ max: opts.max ?? 100_000, ttl });
  // Bumped by every invalidation: a look-up that started before one must not cache what it read (it may have
  // read the subscription as it was before the change that caused the invalidation).
  let generation = 0;

  const all = (): Promise<PlanRecord[]> => {
    if (!list || Date.now() - list.at > ttl) {
      const plans = listPlans(db);
      const entry = { at: Date.now(), plans };
      list = entry;
      plans.catch(() => {
        if (list === entry) list = undefined;
      });
    }
    return list.plans;
  };
  const byCode = async (code: string) => (await all()).find((p) => p.code === code);
  // Many users' first events in the same moment (a cold cache) share one query.
  const activeCode = createBatcher<string, string>(async (userIds) => {
    const startedAt = generation;
    const found = await activeSubscriptionPlans(db, userIds);
    const codes = new Map(userIds.map((id) => [id, found.get(id)?.code ?? '']));
    if (startedAt === generation) for (const [id, code] of codes) perUser.set(id, code);
    return codes;
  });

  return {
    all,
    byCode,
    async effectivePlan(userId) {
      const code = perUser.get(userId) ?? (await activeCode(userId)) ?? '';
      const plan = (await byCode(code || DEFAULT_PLAN)) ?? (await byCode(DEFAULT_PLAN));
      if (!plan) throw new Error(`the ${DEFAULT_PLAN} plan is missing from subscription_plans`);
      return plan;
    },
    learn() {
      const startedAt = generation;
      return (userId, code) => {
        if (startedAt === generation) perUser.set(userId, code);
      };
    },
    invalidateUser(userId) {
      generation++;
      perUser.delete(userId);
    },
    invalidateAll() {
      generation++;
      list = undefined;
      perUser.clear();
    },
  };
}
