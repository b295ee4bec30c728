// user_subscriptions: a user's plan history. At most one row is `active` (partial unique index
// idx_subscriptions_one_active); having none means the basic plan.
import type { Knex } from 'knex';

export interface NewSubscription {
  readonly userId: string;
  readonly planId: string;
  readonly amount: string;
  readonly currency: string;
  readonly billingCycle?: 'monthly' | 'yearly' | 'lifetime' | undefined;
  readonly paymentProvider?: string | undefined;
  readonly paymentProviderId?: string | undefined;
  readonly periodEnd?: Date | undefined;
  readonly notes?: string | undefined;
}

export interface ActiveSubscription {
  readonly id: string;
  readonly planId: string;
  readonly planCode: string;
}

/** Locks the user's row for the rest of the transaction, so plan changes of one user run one at a time. */
export async function lockUser(
  trx: Knex.Transaction,
  userId: string,
): Promise<{ id: string; pubkey: string } | undefined> {
  const row = (await trx('users').where({ id: userId }).forUpdate().first('id', 'nostr_public_key')) as
    { id: string; nostr_public_key: string } | undefined;
  return row && { id: row.id, pubkey: row.nostr_public_key };
}

export async function activeSubscription(db: Knex, userId: string): Promise<ActiveSubscription | undefined> {
  const row = (await db('user_subscriptions as s')
    .join('subscription_plans as p', 'p.id', 's.plan_id')
    .where({ 's.user_id': userId, 's.status': 'active' })
    .first('s.id', 's.plan_id', 'p.plan_code')) as { id: string; plan_id: string; plan_code: string } | undefined;
  return row && { id: row.id, planId: row.plan_id, planCode: row.plan_code };
}

/** Ends the active subscription (status canceled, ends now); returns how many rows changed (0 or 1). */
export async function cancelActiveSubscription(trx: Knex.Transaction, userId: string): Promise<number> {
  return trx('user_subscriptions')
    .where({ user_id: userId, status: 'active' })
    .update({ status: 'canceled', canceled_at: trx.fn.now(), ends_at: trx.fn.now(), updated_at: trx.fn.now() });
}

export async function insertActiveSubscription(trx: Knex.Transaction, s: NewSubscription): Promise<string> {
  const rows = (await trx('user_subscriptions')
    .insert({
      user_id: s.userId,
      plan_id: s.planId,
      status: 'active',
      billing_cycle: s.billingCycle ?? 'monthly',
      amount: s.amount,
      currency: s.currency,
      payment_provider: s.paymentProvider ?? 'manual',
      payment_provider_id: s.paymentProviderId ?? null,
      current_period_end: s.periodEnd?.toISOString() ?? null,
      notes: s.notes ?? null,
    })
    .returning('id')) as { id: string }[];
  return (rows[0] as { id: string }).id;
}
