// ExtensionPay, end to end through the real API (NIP-98) and a local stand-in of ExtensionPay's user endpoint: a user
// links their ExtPay key; the service reads their paid status itself, stores the key encrypted (never shown, never
// exported), and re-reads it on a schedule (driven here by calling the sync, not by waiting) and on refresh=1.
// paid → past_due → canceled follows ExtensionPay; ExtensionPay down downgrades nobody; one key, one account.
import t from 'tap';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { newKey, type Key } from '../helpers/events.js';
import { paidUser, startExtPayStandIn } from '../helpers/extensionpay-standin.js';

const ext = await startExtPayStandIn(t);
const app = await startTestApp(t, {
  redis: true,
  env: {
    DATA_ENCRYPTION_KEY: 'a3'.repeat(32),
    EXTENSIONPAY_URL: ext.url,
    EXTENSIONPAY_EXTENSION_ID: ext.extensionId,
    EXTENSIONPAY_PLANS: 'Premium monthly=premium,advanced=advanced',
  },
});
const api = new ApiClient(app.url);
const db = app.db.knex;
const hour = 3_600_000;
let keys = 0;
const extKey = () => `extpay_${process.pid}_${++keys}_${Date.now().toString(36)}`;

const planOf = async (key: Key) => (await api.signed(key, 'GET', '/v1/me')).body.plan as string;
const mine = async (key: Key) => (await api.signed(key, 'GET', '/v1/subscription')).body;
const link = (key: Key, apiKey: string) =>
  api.signed(key, 'POST', '/v1/subscription/extensionpay', { body: { api_key: apiKey } });
/** The scheduled re-sync as it runs `hours` from now (every linked account is due by then). */
const syncAt = (hours: number) => app.billing.extensionpay.syncDue(new Date(Date.now() + hours * hour));

async function linked(nickname = 'Premium monthly', over = {}) {
  const key = newKey();
  const apiKey = extKey();
  ext.users.set(apiKey, paidUser(nickname, 10, over));
  const r = await link(key, apiKey);
  return { key, apiKey, r };
}

t.test('linking a paid ExtPay user applies the plan at once, with its period and its payment', async (t) => {
  const { key, apiKey, r } = await linked();
  t.equal(r.status, 200, r.text);
  t.match(r.body, { linked: true, paid: true, plan: 'premium', applied: ['subscription_active', 'payment_succeeded'] });
  t.equal(await planOf(key), 'premium');
  const view = await mine(key);
  t.match(view.subscription, {
    plan: 'premium',
    status: 'active',
    payment_provider: 'extensionpay',
    billing_cycle: 'monthly',
    amount: '4.99',
    currency: 'USD',
    renews: true,
    cancel_at: null,
  });
  const start = new Date(view.subscription.current_period_start).getTime();
  const end = new Date(view.subscription.current_period_end).getTime();
  t.ok(start <= Date.now() && end > Date.now(), 'the period holds today');
  t.equal(start, Date.parse(ext.users.get(apiKey)?.paidAt ?? ''), 'counted from the payment');
  t.match(view.payments, [{ status: 'succeeded', amount: '4.99', payment_provider: 'extensionpay' }]);
  t.match(view.accounts, [{ provider: 'extensionpay' }]);
  t.ok(view.accounts[0].last_synced_at);

  // Linking again (the extension retries) changes nothing.
  const again = await link(key, apiKey);
  t.same(again.body.applied, ['subscription_unchanged', 'payment_unchanged']);
  t.equal((await mine(key)).payments.length, 1);
});

t.test('the key is stored encrypted and never returned by the API or the export', async (t) => {
  const { key, apiKey } = await linked();
  const user = await db('users').where({ nostr_public_key: key.pk }).first('id');
  const row = await db('billing_accounts').where({ user_id: user.id, provider: 'extensionpay' }).first();
  t.ok(Buffer.isBuffer(row.provider_data_encrypted));
  t.notOk(row.provider_data_encrypted.includes(Buffer.from(apiKey)), 'not in clear in the blob');
  t.not(row.provider_account_id, apiKey);
  t.match(row.provider_account_id, /^[0-9a-f]{64}$/, 'a fingerprint');
  const dump =
    JSON.stringify(await db('billing_accounts').select('*')) +
    JSON.stringify(await db('audit_log').select('*')) +
    JSON.stringify(await db('user_subscriptions').select('*'));
  t.notOk(dump.includes(apiKey), 'nowhere in the tables it touched');
  t.notOk(JSON.stringify(await mine(key)).includes(apiKey), 'not in GET /v1/subscription');
  const exported = await api.signed(key, 'GET', '/v1/me/export');
  t.equal(exported.status, 200, exported.text.slice(0, 200));
  t.notOk(exported.text.includes(apiKey), 'not in the export');
  t.match(exported.text, /billing_accounts/);
  t.notOk(exported.text.includes('provider_data_encrypted'));
});

t.test('a key already linked to another account is a 409 that changes nothing', async (t) => {
  const { apiKey } = await linked();
  const mallory = newKey();
  const r = await link(mallory, apiKey);
  t.equal(r.status, 409);
  t.equal(r.body.error.code, 'billing_account_linked_elsewhere');
  t.equal(await planOf(mallory), 'basic');
  const view = await mine(mallory);
  t.same([view.subscription, view.history, view.payments, view.accounts], [null, [], [], []]);
});

t.test(
  'an unknown key is a 400; an unpaid ExtPay user is linked on the basic plan and picked up when they pay',
  async (t) => {
    const alice = newKey();
    let r = await link(alice, 'not_a_known_key_123');
    t.equal(r.status, 400);
    t.equal(r.body.error.code, 'extensionpay_key_invalid');

    const apiKey = extKey();
    ext.users.set(apiKey, {
      ...paidUser('Premium monthly'),
      paid: false,
      paidAt: null,
      subscriptionStatus: undefined,
      plan: null,
    });
    r = await link(alice, apiKey);
    t.equal(r.status, 200, r.text);
    t.match(r.body, { linked: true, paid: false, plan: 'basic', applied: [] });

    ext.users.set(apiKey, paidUser('Premium monthly', 0));
    r = await api.signed(alice, 'GET', '/v1/subscription?refresh=1');
    t.same(r.body.refresh, [{ provider: 'extensionpay', outcome: 'applied' }]);
    t.equal(r.body.subscription.status, 'active');
    t.equal(await planOf(alice), 'premium');
  },
);

t.test('paid → past_due → canceled over scheduled syncs; the plan follows ExtensionPay', async (t) => {
  const { key, apiKey } = await linked('advanced');
  t.equal(await planOf(key), 'advanced');
  const user = ext.users.get(apiKey);
  if (!user) throw new Error('no user');

  ext.users.set(apiKey, { ...user, paid: false, subscriptionStatus: 'past_due' });
  t.same(await syncAt(1), [], 'not due yet an hour later');
  const outcomes = await syncAt(7);
  t.ok(outcomes.length >= 1 && outcomes.every((o) => o === 'applied'), `synced: ${outcomes.join(',')}`);
  t.equal(await planOf(key), 'basic', 'past due: no plan');
  t.match((await mine(key)).subscription, { status: 'past_due', plan: 'advanced' });

  const cancelAt = new Date(Date.now() - 60_000).toISOString();
  ext.users.set(apiKey, { ...user, paid: false, subscriptionStatus: 'canceled', subscriptionCancelAt: cancelAt });
  await syncAt(14);
  t.equal(await planOf(key), 'basic');
  const view = await mine(key);
  t.equal(view.subscription, null);
  t.match(view.history[0], { status: 'canceled', renews: false });
  t.equal(new Date(view.history[0].ends_at).toISOString(), cancelAt);
  const audits = await db('audit_log')
    .where({ table_name: 'user_subscriptions' })
    .whereRaw(`new_values->>'id' = ?`, [view.history[0].id])
    .orderBy('created_at');
  t.same(
    audits.map((a: { new_values: { status: string } }) => a.new_values.status),
    ['active', 'past_due', 'canceled'],
  );

  // Another sync of the same end changes nothing.
  await syncAt(21);
  t.equal(
    (
      await db('audit_log')
        .where({ table_name: 'user_subscriptions' })
        .whereRaw(`new_values->>'id' = ?`, [view.history[0].id])
    ).length,
    3,
  );
  const reads = ext.reads.filter((k) => k === apiKey).length;
  t.ok(reads >= 4, `ExtensionPay was read at each sync (${reads})`);
});

t.test(
  'ExtensionPay down during a sync: nobody is downgraded, the failure is counted and retried sooner',
  async (t) => {
    const a = await linked();
    const b = await linked('advanced');
    ext.down = true;
    let outcomes: string[];
    const asOf = Date.now() + 30 * hour;
    try {
      outcomes = await app.billing.extensionpay.syncDue(new Date(asOf));
    } finally {
      ext.down = false;
    }
    t.ok(outcomes.length >= 2 && outcomes.every((o) => o === 'unavailable'), `outcomes: ${outcomes.join(',')}`);
    t.equal(await planOf(a.key), 'premium', 'kept');
    t.equal(await planOf(b.key), 'advanced', 'kept');
    t.equal((await mine(a.key)).subscription.status, 'active');
    const row = await db('billing_accounts as b')
      .join('users as u', 'u.id', 'b.user_id')
      .where('u.nostr_public_key', a.key.pk)
      .first('b.sync_failures', 'b.next_sync_at', 'b.last_sync_error');
    t.equal(row.sync_failures, 1);
    t.match(row.last_sync_error, /unavailable: HTTP 503/);
    const retry = new Date(row.next_sync_at).getTime() - asOf;
    t.ok(retry > 0 && retry < 2 * 60_000, `retried within minutes of that sync, not hours (${retry} ms)`);
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    t.match(
      metrics,
      /nostrx_billing_provider_errors_total\{provider="extensionpay",operation="sync",kind="unavailable"\} [1-9]/,
    );
    t.match(metrics, /nostrx_billing_syncs_total\{provider="extensionpay",outcome="unavailable"\} [1-9]/);

    // refresh=1 while it is down: the state stays, and the answer says so.
    ext.down = true;
    let r;
    try {
      r = await api.signed(a.key, 'GET', '/v1/subscription?refresh=1');
    } finally {
      ext.down = false;
    }
    t.equal(r.status, 200);
    t.same(r.body.refresh, [{ provider: 'extensionpay', outcome: 'unavailable' }]);
    t.equal(r.body.subscription.status, 'active');

    // Back up: the next sync succeeds and clears the failures.
    await syncAt(31);
    const after = await db('billing_accounts as b')
      .join('users as u', 'u.id', 'b.user_id')
      .where('u.nostr_public_key', a.key.pk)
      .first('b.sync_failures');
    t.equal(after.sync_failures, 0);
  },
);

t.test('ExtensionPay down while linking: a 502 and nothing stored', async (t) => {
  const alice = newKey();
  const apiKey = extKey();
  ext.users.set(apiKey, paidUser('Premium monthly'));
  ext.down = true;
  let r;
  try {
    r = await link(alice, apiKey);
  } finally {
    ext.down = false;
  }
  t.equal(r.status, 502);
  t.equal(r.body.error.code, 'payment_provider_unavailable');
  t.same((await mine(alice)).accounts, []);
});

t.test(
  'cancellation at period end, a one-time (lifetime) plan, an unmapped plan, a new key replacing the old one',
  async (t) => {
    const cancelAt = new Date(Date.now() + 20 * 86_400_000).toISOString();
    const a = await linked('Premium monthly', { subscriptionCancelAt: cancelAt });
    let view = await mine(a.key);
    t.match(view.subscription, { status: 'active', renews: false });
    t.equal(new Date(view.subscription.cancel_at).toISOString(), cancelAt);
    t.equal(await planOf(a.key), 'premium');

    const b = await linked('advanced', {
      plan: { unitAmountCents: 4900, currency: 'eur', nickname: 'advanced', interval: 'once', intervalCount: null },
      subscriptionStatus: undefined,
    });
    view = await mine(b.key);
    t.match(view.subscription, {
      status: 'active',
      billing_cycle: 'lifetime',
      current_period_end: null,
      renews: false,
      amount: '49.00',
      currency: 'EUR',
    });

    const c = newKey();
    const unknownPlan = extKey();
    ext.users.set(unknownPlan, paidUser('Gold'));
    const r = await link(c, unknownPlan);
    t.equal(r.status, 400);
    t.equal(r.body.error.code, 'extensionpay_plan_unmapped');
    t.match(r.body.error.message, /"Gold"/);

    // b links a second ExtPay key: the first one's subscription ends, the new one applies.
    const second = extKey();
    ext.users.set(second, paidUser('Premium monthly', 2));
    const relinked = await link(b.key, second);
    t.equal(relinked.status, 200);
    t.match(relinked.body.applied, ['subscription_canceled', 'subscription_active', 'payment_succeeded']);
    view = await mine(b.key);
    t.match(view.subscription, { plan: 'premium', status: 'active' });
    t.same(
      view.history.map((s: { status: string }) => s.status),
      ['active', 'canceled'],
    );
    t.equal(view.accounts.length, 1);
  },
);

t.test('GET /v1/plans says ExtensionPay sells premium and advanced', async (t) => {
  const r = await api.request('GET', '/v1/plans');
  const byCode = Object.fromEntries(r.body.plans.map((p: { code: string }) => [p.code, p]));
  t.same(byCode.premium.providers, ['extensionpay']);
  t.same(byCode.advanced.providers, ['extensionpay']);
  t.same(byCode.basic.providers, []);
  t.same(byCode.premium.checkout_cycles, [], 'Stripe is not configured here');
});
