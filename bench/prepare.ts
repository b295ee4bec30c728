// Puts the benchmark's keys on a plan (the unlimited `advanced` by default) before the load starts, as an operator
// would through the admin API, but in bulk: one multi-row insert of users and one of their active subscriptions.
import knexFactory from 'knex';

export async function prepareKeys(databaseUrl: string, pubkeys: string[], planCode = 'advanced'): Promise<void> {
  const db = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 2 } });
  try {
    const plan = (await db('subscription_plans').where({ plan_code: planCode }).first('id', 'price_monthly')) as
      { id: string; price_monthly: string } | undefined;
    if (!plan) throw new Error(`the ${planCode} plan is missing`);
    for (let i = 0; i < pubkeys.length; i += 500) {
      const chunk = pubkeys.slice(i, i + 500);
      const users = (await db('users')
        .insert(chunk.map((k) => ({ nostr_public_key: k })))
        .onConflict('nostr_public_key')
        .merge(['last_active_at'])
        .returning('id')) as { id: string }[];
      await db('user_subscriptions')
        .insert(users.map((u) => ({ user_id: u.id, plan_id: plan.id, status: 'active', amount: plan.price_monthly })))
        .onConflict(db.raw("(user_id) WHERE status = 'active'"))
        .ignore();
    }
  } finally {
    await db.destroy();
  }
}
