// subscription_plans: the tiers and their limits. Plans live in the database, never in code.
import type { Knex } from 'knex';

export interface PlanRecord {
  readonly id: string;
  readonly code: string;
  readonly name: string;
  readonly description: string | null;
  readonly priceMonthly: string;
  readonly priceYearly: string | null;
  readonly currency: string;
  readonly dailyPostLimit: number;
  readonly monthlyPostLimit: number | null;
  readonly customRelaysAllowed: boolean;
  readonly analyticsEnabled: boolean;
  readonly prioritySupport: boolean;
  readonly multipleIdentities: boolean;
  readonly isActive: boolean;
  readonly isPublic: boolean;
  readonly sortOrder: number;
}

interface PlanRow {
  id: string;
  plan_code: string;
  name: string;
  description: string | null;
  price_monthly: string;
  price_yearly: string | null;
  currency: string | null;
  daily_post_limit: number;
  monthly_post_limit: number | null;
  custom_relays_allowed: boolean | null;
  analytics_enabled: boolean | null;
  priority_support: boolean | null;
  multiple_identities: boolean | null;
  is_active: boolean | null;
  is_public: boolean | null;
  sort_order: number | null;
}

function toPlan(r: PlanRow): PlanRecord {
  return {
    id: r.id,
    code: r.plan_code,
    name: r.name,
    description: r.description,
    priceMonthly: String(r.price_monthly),
    priceYearly: r.price_yearly === null ? null : String(r.price_yearly),
    currency: r.currency ?? 'USD',
    dailyPostLimit: r.daily_post_limit,
    monthlyPostLimit: r.monthly_post_limit,
    customRelaysAllowed: r.custom_relays_allowed ?? false,
    analyticsEnabled: r.analytics_enabled ?? false,
    prioritySupport: r.priority_support ?? false,
    multipleIdentities: r.multiple_identities ?? false,
    isActive: r.is_active ?? true,
    isPublic: r.is_public ?? true,
    sortOrder: r.sort_order ?? 100,
  };
}

export async function listPlans(db: Knex): Promise<PlanRecord[]> {
  const rows = (await db('subscription_plans')
    .select('*')
    .orderBy([{ column: 'sort_order' }, { column: 'plan_code' }])) as PlanRow[];
  return rows.map(toPlan);
}

/**
 * The plans of these users' active subscriptions, by user id; users without one are absent (on basic). One
 * query for many users (a partial unique index keeps at most one active subscription per user).
 */
export async function activeSubscriptionPlans(db: Knex, userIds: readonly string[]): Promise<Map<string, PlanRecord>> {
  if (userIds.length === 0) return new Map();
  const rows = (await db('user_subscriptions as s')
    .join('subscription_plans as p', 'p.id', 's.plan_id')
    .whereIn('s.user_id', userIds)
    .where('s.status', 'active')
    .select('p.*', 's.user_id as subscriber_id')) as (PlanRow & { subscriber_id: string })[];
  return new Map(rows.map((r) => [r.subscriber_id, toPlan(r)]));
}
