// The ledger, the one place provider facts become rows (what a Lightning provider will use too): facts observed
// before the applied state are ignored, payments only move forward, one event id applies once, one active
// subscription per user (the user's choice takes the place; a renewal elsewhere waits), canceled is final for a row.
// Real PostgreSQL; the facts are built here as a provider module would build them.
import t from 'tap';
import { createBillingLedger } from '../../src/core/billing/ledger.js';
import type { PaymentFact, SubscriptionFact } from '../../src/core/billing/facts.js';
import { createPlans } from '../../src/core/quota/plans.js';
import type { CacheInvalidation } from '../../src/core/accounts/cache-invalidation.js';
import { upsertUserByPubkey } from '../../src/store/users.js';
import { createTestDatabase } from '../helpers/db.js';
import { newKey } from '../helpers/events.js';

const db = (await createTestDatabase(t)).knex;
const plans = createPlans(db);
const invalidated: string[] = [];
const invalidation: CacheInvalidation = {
  user: (id) => invalidated.push(id),
  account: () => {},
  allPlans: () => {},
  close: async () => {},
};
const ledger = createBillingLedger({ db, plans, invalidation });
const day = 86_400_000;
let seq = 0;

async function newUser(): Promise<string> {
  return db.transaction(async (trx) => (await upsertUserByPubkey(trx, newKey().pk)).user.id);
}

function sub(userId: string, over: Partial<SubscriptionFact> = {}): SubscriptionFact {
  const now = Date.now();
  return {
    provider: 'lightning',
    providerSubscriptionId: `ln_${++seq}`,
    userId,
    planCode: 'premium',
    billingCycle: 'monthly',
    status: 'active',
    amount: '4.99',
    currency: 'USD',
    periodStart: new Date(now - day),
    periodEnd: new Date(now + 29 * day),
    endsAt: null,
    canceledAt: null,
    observedAt: new Date(now),
    ...over,
  };
}

function pay(userId: string, over: Partial<PaymentFact> = {}): PaymentFact {
  return {
    provider: 'lightning',
    providerPaymentId: `lnpay_${++seq}`,
    userId,
    amount: '4.99',
    currency: 'USD',
    status: 'succeeded',
    paymentMethod: 'lightning',
    ...over,
  };
}

const planOf = async (userId: string) => {
  plans.invalidateUser(userId);
  return (await plans.effectivePlan(userId)).code;
};

t.test('a fact observed before the applied state is not applied', async (t) => {
  const u = await newUser();
  const first = sub(u);
  t.same((await ledger.record(u, { subscription: first }, { actor: 'lightning' })).applied, ['subscription_active']);
  const canceled = {
    ...first,
    status: 'canceled' as const,
    endsAt: new Date(),
    canceledAt: new Date(),
    observedAt: new Date(first.observedAt.getTime() + 1000),
  };
  t.same((await ledger.record(u, { subscription: canceled }, { actor: 'lightning' })).applied, [
    'subscription_canceled',
  ]);
  const late = { ...first, observedAt: new Date(first.observedAt.getTime() + 500) };
  t.same((await ledger.record(u, { subscription: late }, { actor: 'lightning' })).applied, [
    'ignored_stale_subscription',
  ]);
  t.equal(await planOf(u), 'basic');
  t.ok(invalidated.includes(u), 'the cached plan was dropped');
});

t.test('a payment only moves forward: failed → succeeded → refunded, never back', async (t) => {
  const u = await newUser();
  const p = pay(u, { status: 'failed', failureReason: 'expired invoice' });
  t.same((await ledger.record(u, { payments: [p] }, { actor: 'lightning' })).applied, ['payment_failed']);
  t.same((await ledger.record(u, { payments: [{ ...p, status: 'succeeded' }] }, { actor: 'lightning' })).applied, [
    'payment_succeeded',
  ]);
  t.same((await ledger.record(u, { payments: [{ ...p, status: 'failed' }] }, { actor: 'lightning' })).applied, [
    'ignored_stale_payment',
  ]);
  t.same((await ledger.record(u, { payments: [{ ...p, status: 'refunded' }] }, { actor: 'lightning' })).applied, [
    'payment_refunded',
  ]);
  t.same((await ledger.record(u, { payments: [{ ...p, status: 'succeeded' }] }, { actor: 'lightning' })).applied, [
    'ignored_stale_payment',
  ]);
  t.equal(
    (await db('payments').where({ provider_payment_id: p.providerPaymentId }).first('status')).status,
    'refunded',
  );
});

t.test('one event id applies once, also when delivered at the same time', async (t) => {
  const u = await newUser();
  const event = { provider: 'lightning', eventId: `evt_${++seq}`, type: 'invoice.settled', payload: { any: 'thing' } };
  const facts = { subscription: sub(u), payments: [pay(u)] };
  const results = await Promise.all([1, 2, 3].map(() => ledger.record(u, facts, { actor: 'lightning', event })));
  t.equal(results.filter((r) => !r.duplicate).length, 1);
  t.equal((await db('user_subscriptions').where({ user_id: u })).length, 1);
});

t.test('one active subscription: a new one takes the place and the replaced one stays replaced', async (t) => {
  const u = await newUser();
  const ext = sub(u, { provider: 'extensionpay', planCode: 'premium' });
  await ledger.record(u, { subscription: ext }, { actor: 'extensionpay' });
  const stripe = sub(u, { provider: 'stripe', planCode: 'advanced' });
  t.same((await ledger.record(u, { subscription: stripe }, { actor: 'stripe', takeSlot: true })).applied, [
    'subscription_active',
  ]);
  t.equal(await planOf(u), 'advanced');
  const replaced = await db('user_subscriptions')
    .where({ payment_provider_id: ext.providerSubscriptionId })
    .first('status', 'replaced_by');
  t.equal(replaced.status, 'canceled');
  t.ok(replaced.replaced_by);
  // ExtensionPay still says active at the next sync: the place is not taken back.
  const again = { ...ext, observedAt: new Date(Date.now() + 1000) };
  t.same((await ledger.record(u, { subscription: again }, { actor: 'extensionpay' })).applied, [
    'ignored_replaced_subscription',
  ]);
  t.equal(await planOf(u), 'advanced');

  // A subscription recovering from past due while another holds the place waits for it.
  const w = await newUser();
  const a = sub(w, { provider: 'stripe' });
  await ledger.record(w, { subscription: { ...a, status: 'past_due' } }, { actor: 'stripe' });
  await ledger.record(
    w,
    { subscription: sub(w, { provider: 'extensionpay', planCode: 'advanced' }) },
    { actor: 'user', takeSlot: true },
  );
  const recovered = { ...a, observedAt: new Date(Date.now() + 2000) };
  t.same((await ledger.record(w, { subscription: recovered }, { actor: 'stripe' })).applied, ['ignored_place_taken']);
  t.equal(await planOf(w), 'advanced');
  t.equal((await db('user_subscriptions').where({ user_id: w, status: 'active' })).length, 1);
});

t.test('facts that cannot apply roll back whole: an unknown plan, a subscription of another user', async (t) => {
  const u = await newUser();
  const v = await newUser();
  await t.rejects(
    ledger.record(u, { subscription: sub(u, { planCode: 'platinum' }), payments: [pay(u)] }, { actor: 'lightning' }),
    { code: 'unknown_plan' },
  );
  t.equal((await db('payments').where({ user_id: u })).length, 0, 'the payment was not written either');
  const theirs = sub(v);
  await ledger.record(v, { subscription: theirs }, { actor: 'lightning' });
  await t.rejects(ledger.record(u, { subscription: { ...theirs, userId: u } }, { actor: 'lightning' }), {
    code: 'other_user',
  });
});

t.test('every change is audited with its actor', async (t) => {
  const u = await newUser();
  const s = sub(u);
  await ledger.record(u, { subscription: s }, { actor: 'lightning' });
  await ledger.record(
    u,
    { subscription: { ...s, status: 'past_due', observedAt: new Date(Date.now() + 1000) } },
    { actor: 'lightning' },
  );
  const rows = await db('audit_log').where({ user_id: u, table_name: 'user_subscriptions' }).orderBy('created_at');
  t.same(
    rows.map((r: { operation: string; actor: string; new_values: { status: string } }) => [
      r.operation,
      r.new_values.status,
      r.actor,
    ]),
    [
      ['INSERT', 'active', 'lightning'],
      ['UPDATE', 'past_due', 'lightning'],
    ],
  );
});
