// Account administration (core/accounts/account-admin.ts) on real PostgreSQL and Redis: plan changes keep a history of
// subscriptions with audit rows, refused changes carry a code, and every change reaches the caches of another
// instance through Redis pub/sub before that instance's next event. Accounts are never created for a pubkey whose
// event was not correctly signed.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { createTestDatabaseUrl } from '../../helpers/db.js';
import { testRedisPrefix } from '../../helpers/redis.js';
import { startTestApp } from '../../helpers/app.js';
import { buildEvent, newKey } from '../../helpers/events.js';
import { RawClient } from '../../helpers/raw-client.js';
import { waitFor } from '../../helpers/wait-for.js';
import { AccountAdminError, changePlan, setUserStatus } from '../../../src/core/accounts/account-admin.js';

const databaseUrl = await createTestDatabaseUrl(t);
const prefix = testRedisPrefix(t);
const a = await startTestApp(t, { databaseUrl, redis: prefix });
const b = await startTestApp(t, { databaseUrl, redis: prefix });

t.test('changePlan keeps the history and audits every step with its actor', async (t) => {
  const user = await a.accounts.forPubkey(newKey().pk);
  await changePlan(a.accountAdmin, user.id, 'premium', 'admin-1');
  await changePlan(a.accountAdmin, user.id, 'advanced', 'payments', {
    paymentProvider: 'extensionpay',
    paymentProviderId: 'ep_123',
    amount: '9.99',
    billingCycle: 'yearly',
  });
  await changePlan(a.accountAdmin, user.id, 'basic', 'admin-2');
  const subs = await a.db
    .knex('user_subscriptions as s')
    .join('subscription_plans as p', 'p.id', 's.plan_id')
    .where({ 's.user_id': user.id })
    .orderBy('s.created_at')
    .select('p.plan_code', 's.status', 's.payment_provider', 's.payment_provider_id', 's.billing_cycle');
  t.same(subs, [
    {
      plan_code: 'premium',
      status: 'canceled',
      payment_provider: 'manual',
      payment_provider_id: null,
      billing_cycle: 'monthly',
    },
    {
      plan_code: 'advanced',
      status: 'canceled',
      payment_provider: 'extensionpay',
      payment_provider_id: 'ep_123',
      billing_cycle: 'yearly',
    },
  ]);
  const audit = (await a.db
    .knex('audit_log')
    .where({ user_id: user.id })
    .orderBy('created_at')
    .orderBy('id')
    .select('operation', 'actor', 'new_values')) as {
    operation: string;
    actor: string;
    new_values: { plan: string; status: string };
  }[];
  t.same(
    audit.map((r) => [r.operation, r.actor, r.new_values.plan, r.new_values.status]).sort(),
    [
      ['INSERT', 'admin-1', 'premium', 'active'],
      ['INSERT', 'payments', 'advanced', 'active'],
      ['UPDATE', 'admin-2', 'advanced', 'canceled'],
      ['UPDATE', 'payments', 'premium', 'canceled'],
    ].sort(),
  );
  await a.usage.flush();
  const changes = await a.db
    .knex('usage_events')
    .where({ user_id: user.id, event_type: 'tier_change' })
    .orderBy('occurred_at')
    .select('event_action');
  t.same(
    changes.map((c: { event_action: string }) => c.event_action),
    ['basic_to_premium', 'premium_to_advanced', 'advanced_to_basic'],
  );
});

t.test('refused changes carry a stable code', async (t) => {
  const user = await a.accounts.forPubkey(newKey().pk);
  await t.rejects(
    changePlan(a.accountAdmin, user.id, 'platinum', 'admin'),
    new AccountAdminError('unknown_plan', 'there is no plan "platinum"'),
  );
  await t.rejects(changePlan(a.accountAdmin, randomUUID(), 'premium', 'admin'), { code: 'unknown_user' });
  await a.db
    .knex('subscription_plans')
    .insert({ plan_code: 'legacy', name: 'Legacy', daily_post_limit: 10, is_active: false });
  a.invalidation.allPlans();
  await t.rejects(changePlan(a.accountAdmin, user.id, 'legacy', 'admin'), { code: 'inactive_plan' });
  await t.rejects(setUserStatus(a.accountAdmin, user.id, 'banned' as 'suspended', 'admin'), { code: 'invalid_status' });
  await t.rejects(setUserStatus(a.accountAdmin, randomUUID(), 'suspended', 'admin'), { code: 'unknown_user' });
});

t.test('a plan change and a suspension made on A reach B’s caches at once', async (t) => {
  const key = newKey();
  const onB = await RawClient.connect(b.relayUrl);
  t.teardown(() => onB.close());
  for (let i = 0; i < 3; i++) t.same(await onB.publish(buildEvent(key.sk, { content: `n${i}` })), [true, '']);
  t.equal(
    (await onB.publish(buildEvent(key.sk, { content: 'n3' })))[0],
    false,
    'B knows the user is at the basic limit',
  );
  const user = await a.accounts.forPubkey(key.pk);

  await changePlan(a.accountAdmin, user.id, 'premium', 'admin');
  await waitFor('B sees premium', async () => (await b.plans.effectivePlan(user.id)).code === 'premium');
  t.same(await onB.publish(buildEvent(key.sk, { content: 'n4' })), [true, ''], 'B applies the new limit');

  await setUserStatus(a.accountAdmin, user.id, 'suspended', 'admin');
  await waitFor('B sees the suspension', async () => (await b.accounts.find(key.pk))?.status === 'suspended');
  t.same(await onB.publish(buildEvent(key.sk, { content: 'n5' })), [false, 'blocked: this account is suspended']);
});

t.test('no account is created for a pubkey whose event is not correctly signed', async (t) => {
  const mallory = newKey();
  const ev = buildEvent(mallory.sk);
  const r = await a.admit({ ...ev, sig: '1'.repeat(128) }, { via: 'relay', authed: new Set() });
  t.equal(r.status, 'rejected');
  t.equal(await a.accounts.find(mallory.pk), undefined);
  t.equal((await a.db.knex('users').where({ nostr_public_key: mallory.pk })).length, 0);
  t.equal((await a.admit(ev, { via: 'relay', authed: new Set() })).status, 'accepted');
  t.equal(
    (await a.db.knex('users').where({ nostr_public_key: mallory.pk })).length,
    1,
    'created by its first signed event',
  );
});
