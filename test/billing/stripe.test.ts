// Stripe, end to end through the real API (NIP-98, nostr-tools) and the official `stripe` package pointed at a local
// stand-in of Stripe's API: Checkout and the Billing Portal; webhooks signed as Stripe signs them, each event type
// the service uses, delivered twice, out of order, forged or stale; past due then recovered; canceled at period
// end; refunded. The plan follows Stripe's state, re-read from the API at each event.
import t from 'tap';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { newKey, type Key } from '../helpers/events.js';
import {
  chargeObject,
  eventBody,
  invoiceObject,
  invoicePaymentObject,
  signStripe,
  startStripeStandIn,
  stripeId,
  subscriptionObject,
} from '../helpers/stripe-standin.js';

const secret = 'whsec_test_billing_7d1c';
const stand = await startStripeStandIn(t);
const app = await startTestApp(t, {
  redis: true,
  env: {
    STRIPE_SECRET_KEY: 'sk_test_standin',
    STRIPE_WEBHOOK_SECRET: secret,
    STRIPE_API_BASE: stand.url,
    STRIPE_PRICES: 'premium:monthly=price_premium_m,premium:yearly=price_premium_y,advanced:monthly=price_advanced_m',
  },
});
const api = new ApiClient(app.url);
const db = app.db.knex;
const day = 86_400;
const nowS = () => Math.floor(Date.now() / 1000);

function deliver(
  type: string,
  object: Record<string, unknown>,
  opts: { id?: string; secret?: string; timestamp?: number; signature?: string } = {},
) {
  const raw = eventBody(type, object, opts.id);
  const signature = opts.signature ?? signStripe(raw, opts.secret ?? secret, opts.timestamp);
  return api.request('POST', '/v1/webhooks/stripe', { raw, headers: { 'stripe-signature': signature } });
}

async function userIdOf(key: Key): Promise<string> {
  await api.signed(key, 'GET', '/v1/me');
  return ((await db('users').where({ nostr_public_key: key.pk }).first('id')) as { id: string }).id;
}

const planOf = async (key: Key) => (await api.signed(key, 'GET', '/v1/me')).body.plan as string;
const mine = async (key: Key) => (await api.signed(key, 'GET', '/v1/subscription')).body;

async function counts() {
  const tables = ['payment_webhook_events', 'user_subscriptions', 'payments', 'billing_accounts', 'audit_log'];
  const n = await Promise.all(
    tables.map(async (table) => Number((await db(table).count<{ n: string }[]>({ n: '*' }))[0]?.n)),
  );
  return Object.fromEntries(tables.map((table, i) => [table, n[i]]));
}

/** A buyer who completed Checkout for premium monthly: Stripe has their active subscription. */
async function subscriber(price = 'price_premium_m', amount = 499) {
  const key = newKey();
  const userId = await userIdOf(key);
  const customer = stripeId('cus');
  const sub = subscriptionObject({ customer, price, amount, status: 'active', userId });
  stand.subscriptions.set(sub.id as string, sub);
  const session = {
    id: stripeId('cs'),
    object: 'checkout.session',
    mode: 'subscription',
    status: 'complete',
    payment_status: 'paid',
    client_reference_id: userId,
    customer,
    subscription: sub.id,
  };
  const r = await deliver('checkout.session.completed', session);
  return { key, userId, customer, sub, id: sub.id as string, r };
}

/** Stripe's subscription changes (as the API will show it from now on). */
function stripeHas(id: string, change: Record<string, unknown>) {
  const sub = { ...(stand.subscriptions.get(id) as Record<string, unknown>), ...change };
  stand.subscriptions.set(id, sub);
  return sub;
}

/** An invoice of the subscription, paid or failed, with the charge Stripe's invoice payments list shows for it. */
function invoiceOf(s: { customer: string; id: string }, paid: boolean, invoiceId = stripeId('in')) {
  const intent = stripeId('pi');
  const charge = chargeObject({
    customer: s.customer,
    intent,
    amount: 499,
    last4: '4242',
    ...(paid ? {} : { failure: 'Your card was declined.' }),
  });
  stand.invoicePayments.push(
    invoicePaymentObject(invoiceId, intent, charge, paid ? undefined : 'Your card was declined.'),
  );
  return {
    invoice: invoiceObject({ id: invoiceId, customer: s.customer, subscription: s.id, amount: 499, paid }),
    charge,
    intent,
  };
}

t.test(
  "checkout answers the Checkout URL of a subscription-mode session for the plan's price; nothing is stored until Stripe confirms",
  async (t) => {
    const alice = newKey();
    const userId = await userIdOf(alice);
    const before = await counts();
    const r = await api.signed(alice, 'POST', '/v1/subscription/checkout', {
      body: { plan: 'premium', billing_cycle: 'yearly' },
    });
    t.equal(r.status, 200, r.text);
    t.match(r.body.url, /^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_/);
    const call = stand.calls.filter((c) => c.path === '/v1/checkout/sessions').at(-1);
    t.match(call?.params, {
      mode: 'subscription',
      'line_items[0][price]': 'price_premium_y',
      'line_items[0][quantity]': '1',
      client_reference_id: userId,
      'subscription_data[metadata][nostrx_user_id]': userId,
      success_url: `${app.url}/app/?checkout=success`,
      cancel_url: `${app.url}/app/?checkout=canceled`,
    });
    t.notOk(call?.params.customer, 'no customer yet: Checkout creates one');
    t.same(await counts(), before, 'nothing stored');
    t.equal(await planOf(alice), 'basic');
  },
);

t.test(
  'checkout for a plan or cycle that is not sold is a 400; Stripe unreachable is a 502 and nothing is stored',
  async (t) => {
    const bob = newKey();
    await userIdOf(bob);
    const calls = stand.calls.length;
    let r = await api.signed(bob, 'POST', '/v1/subscription/checkout', {
      body: { plan: 'gold', billing_cycle: 'monthly' },
    });
    t.equal(r.status, 400);
    t.equal(r.body.error.code, 'plan_not_sold');
    t.match(
      r.body.error.message,
      /plan "gold" is not sold by Stripe billed monthly \(offered: premium:monthly, premium:yearly, advanced:monthly\)/,
    );
    r = await api.signed(bob, 'POST', '/v1/subscription/checkout', {
      body: { plan: 'advanced', billing_cycle: 'yearly' },
    });
    t.equal(r.status, 400);
    t.equal(r.body.error.code, 'plan_not_sold');
    r = await api.signed(bob, 'POST', '/v1/subscription/checkout', {
      body: { plan: 'premium', billing_cycle: 'weekly' },
    });
    t.equal(r.status, 400);
    t.equal(r.body.error.code, 'validation_failed');
    t.equal(r.body.error.field, 'billing_cycle');
    t.equal(stand.calls.length, calls, 'Stripe was not asked');

    const before = await counts();
    stand.refuse = true;
    try {
      r = await api.signed(bob, 'POST', '/v1/subscription/checkout', {
        body: { plan: 'premium', billing_cycle: 'monthly' },
      });
    } finally {
      stand.refuse = false;
    }
    t.equal(r.status, 502);
    t.equal(r.body.error.code, 'payment_provider_unavailable');
    t.match(r.body.error.message, /Stripe could not be reached; nothing was changed/);
    t.same(await counts(), before, 'nothing stored');
    t.match(
      await (await fetch(`${app.url}/metrics`)).text(),
      /nostrx_billing_provider_errors_total\{provider="stripe",operation="checkout",kind="unavailable"\} 1/,
    );
  },
);

t.test(
  'checkout.session.completed: the plan applies at once, the customer is remembered, and checkout and the portal reuse it',
  async (t) => {
    const s = await subscriber();
    t.equal(s.r.status, 200, s.r.text);
    t.same(s.r.body, { received: true, duplicate: false, applied: ['subscription_active'] });
    t.equal(await planOf(s.key), 'premium');
    const view = await mine(s.key);
    t.match(view.subscription, {
      plan: 'premium',
      status: 'active',
      payment_provider: 'stripe',
      billing_cycle: 'monthly',
      amount: '4.99',
      currency: 'USD',
      renews: true,
      cancel_at: null,
    });
    t.match(view.accounts, [{ provider: 'stripe' }]);

    // customer.subscription.created arrives too (after, or before: Stripe does not order them): nothing new.
    const created = await deliver('customer.subscription.created', s.sub);
    t.same(created.body.applied, ['subscription_unchanged']);

    const again = await api.signed(s.key, 'POST', '/v1/subscription/checkout', {
      body: { plan: 'advanced', billing_cycle: 'monthly' },
    });
    t.equal(again.status, 200);
    t.equal(
      stand.calls.filter((c) => c.path === '/v1/checkout/sessions').at(-1)?.params.customer,
      s.customer,
      'the customer is reused',
    );
    const portal = await api.signed(s.key, 'POST', '/v1/subscription/portal');
    t.equal(portal.status, 200, portal.text);
    t.match(portal.body.url, /^https:\/\/billing\.stripe\.com\/p\/session\/bps_/);
    t.match(stand.calls.at(-1)?.params, { customer: s.customer, return_url: `${app.url}/app/` });

    const stranger = newKey();
    await userIdOf(stranger);
    const none = await api.signed(stranger, 'POST', '/v1/subscription/portal');
    t.equal(none.status, 404);
    t.equal(none.body.error.code, 'billing_customer_not_found');
  },
);

t.test('a redelivered event is acknowledged and not applied again, concurrent copies included', async (t) => {
  const s = await subscriber();
  const eventId = stripeId('evt');
  const { invoice } = invoiceOf(s, true);
  const first = await deliver('invoice.paid', invoice, { id: eventId });
  t.same(first.body, { received: true, duplicate: false, applied: ['subscription_unchanged', 'payment_succeeded'] });
  const before = await counts();
  const copies = await Promise.all([1, 2, 3].map(() => deliver('invoice.paid', invoice, { id: eventId })));
  t.same(
    copies.map((r) => [r.status, r.body.duplicate]),
    [
      [200, true],
      [200, true],
      [200, true],
    ],
  );
  t.same(await counts(), before);
});

t.test('invoice.paid records the payment with its hosted invoice, receipt, method and card digits', async (t) => {
  const s = await subscriber();
  const { invoice, charge } = invoiceOf(s, true);
  const r = await deliver('invoice.paid', invoice);
  t.equal(r.status, 200, r.text);
  const [payment] = (await mine(s.key)).payments;
  t.match(payment, {
    status: 'succeeded',
    amount: '4.99',
    currency: 'USD',
    payment_provider: 'stripe',
    payment_method: 'card',
    last_four_digits: '4242',
    invoice_url: invoice.hosted_invoice_url,
    receipt_url: charge.receipt_url,
  });
  t.ok(payment.processed_at);
  const row = await db('payments')
    .where({ provider_payment_id: invoice.id })
    .first('subscription_id', 'provider_customer_id');
  const sub = await db('user_subscriptions').where({ payment_provider_id: s.id }).first('id');
  t.same(row, { subscription_id: sub.id, provider_customer_id: s.customer });
});

t.test(
  'past due then recovered: the plan stops while Stripe retries, and comes back when the invoice is paid',
  async (t) => {
    const s = await subscriber();
    const invoiceId = stripeId('in');
    stripeHas(s.id, { status: 'past_due' });
    const failed = invoiceOf(s, false, invoiceId);
    let r = await deliver('invoice.payment_failed', failed.invoice);
    t.same(r.body.applied, ['subscription_past_due', 'payment_failed']);
    t.equal(await planOf(s.key), 'basic', 'no plan while past due');
    let view = await mine(s.key);
    t.match(view.subscription, { status: 'past_due', plan: 'premium' }, 'the subscription in trouble is shown');
    t.match(view.payments[0], { status: 'failed', failure_reason: 'Your card was declined.' });
    t.ok(view.payments[0].failed_at);

    stripeHas(s.id, { status: 'active' });
    stand.invoicePayments.splice(
      0,
      stand.invoicePayments.length,
      ...stand.invoicePayments.filter((p) => p.invoice !== invoiceId),
    );
    const paid = invoiceOf(s, true, invoiceId);
    r = await deliver('invoice.paid', paid.invoice);
    t.same(r.body.applied, ['subscription_active', 'payment_succeeded']);
    t.equal(await planOf(s.key), 'premium', 'restored');
    view = await mine(s.key);
    t.equal(view.payments.length, 1, 'one invoice, one payment row');
    t.match(view.payments[0], { status: 'succeeded', receipt_url: paid.charge.receipt_url });

    // The failure notice of that invoice, delivered again late, does not undo the success.
    r = await deliver('invoice.payment_failed', failed.invoice);
    t.same(r.body.applied, ['subscription_unchanged', 'ignored_stale_payment']);
    t.equal((await mine(s.key)).payments[0].status, 'succeeded');
  },
);

t.test(
  'canceled at period end: the plan stays, does not renew and shows the cancel date; deleted ends it',
  async (t) => {
    const s = await subscriber();
    const periodEnd = (s.sub.items as { data: { current_period_end: number }[] }).data[0]?.current_period_end as number;
    const updated = stripeHas(s.id, { cancel_at_period_end: true, cancel_at: periodEnd, canceled_at: nowS() });
    let r = await deliver('customer.subscription.updated', updated);
    t.same(r.body.applied, ['subscription_active']);
    t.equal(await planOf(s.key), 'premium', 'paid until the period ends');
    let view = await mine(s.key);
    t.match(view.subscription, { status: 'active', renews: false });
    t.equal(new Date(view.subscription.cancel_at).getTime(), periodEnd * 1000);
    t.ok(view.subscription.canceled_at);

    const deleted = stripeHas(s.id, { status: 'canceled', ended_at: periodEnd });
    r = await deliver('customer.subscription.deleted', deleted);
    t.same(r.body.applied, ['subscription_canceled']);
    t.equal(await planOf(s.key), 'basic');
    view = await mine(s.key);
    t.equal(view.subscription, null);
    t.match(view.history[0], { status: 'canceled', renews: false, cancel_at: null });
    t.equal(new Date(view.history[0].ends_at).getTime(), periodEnd * 1000);
  },
);

t.test('out of order: an older event delivered after a newer one never brings back an older state', async (t) => {
  const s = await subscriber();
  const activeCopy = { ...s.sub };
  stripeHas(s.id, { status: 'canceled', ended_at: nowS(), canceled_at: nowS() });
  let r = await deliver('customer.subscription.deleted', stand.subscriptions.get(s.id) as Record<string, unknown>);
  t.same(r.body.applied, ['subscription_canceled']);
  // The updated/created events of before the cancellation arrive now, each carrying the old active copy.
  r = await deliver('customer.subscription.updated', activeCopy);
  t.same(r.body.applied, ['subscription_unchanged'], 'Stripe says canceled now: applied as such');
  r = await deliver('customer.subscription.created', activeCopy);
  t.same(r.body.applied, ['subscription_unchanged']);
  t.equal(await planOf(s.key), 'basic');

  // A cancellation that arrives before the checkout of a new subscription: it is applied, and the late checkout
  // finds the subscription canceled at Stripe.
  const bob = newKey();
  const bobId = await userIdOf(bob);
  const customer = stripeId('cus');
  const sub = subscriptionObject({
    customer,
    price: 'price_premium_m',
    amount: 499,
    status: 'canceled',
    userId: bobId,
    endedAt: nowS(),
    canceledAt: nowS(),
  });
  stand.subscriptions.set(sub.id as string, sub);
  r = await deliver('customer.subscription.deleted', sub);
  t.same(r.body.applied, ['subscription_canceled']);
  r = await deliver('checkout.session.completed', {
    id: stripeId('cs'),
    object: 'checkout.session',
    mode: 'subscription',
    client_reference_id: bobId,
    customer,
    subscription: sub.id,
  });
  t.same(r.body.applied, ['subscription_unchanged']);
  t.equal(await planOf(bob), 'basic');
});

t.test("charge.refunded marks the invoice's payment refunded", async (t) => {
  const s = await subscriber();
  const { invoice, intent } = invoiceOf(s, true);
  await deliver('invoice.paid', invoice);
  const refunded = chargeObject({ customer: s.customer, intent, amount: 499, refunded: true });
  const r = await deliver('charge.refunded', refunded);
  t.same(r.body.applied, ['payment_refunded']);
  const [payment] = (await mine(s.key)).payments;
  t.match(payment, { status: 'refunded', amount: '4.99', invoice_url: invoice.hosted_invoice_url });
  // A late invoice.paid for it does not undo the refund.
  const late = await deliver('invoice.paid', invoice);
  t.same(late.body.applied, ['subscription_unchanged', 'ignored_stale_payment']);
});

t.test('forged and stale signatures are a 400 that changes nothing', async (t) => {
  const s = await subscriber();
  const before = await counts();
  const deleted = stripeHas(s.id, { status: 'canceled', ended_at: nowS() });
  const raw = eventBody('customer.subscription.deleted', deleted);
  const cases = [
    ['no signature', await api.request('POST', '/v1/webhooks/stripe', { raw })],
    ['another secret', await deliver('customer.subscription.deleted', deleted, { secret: 'whsec_guess' })],
    ['10 minutes old', await deliver('customer.subscription.deleted', deleted, { timestamp: nowS() - 600 })],
    ['garbage header', await deliver('customer.subscription.deleted', deleted, { signature: 't=1,v1=abc' })],
    [
      'body changed after signing',
      await api.request('POST', '/v1/webhooks/stripe', {
        raw: raw.replace('"canceled"', '"active"'),
        headers: { 'stripe-signature': signStripe(raw, secret) },
      }),
    ],
  ] as const;
  for (const [what, r] of cases) {
    t.equal(r.status, 400, what);
    t.equal(r.body.error.code, 'webhook_signature_invalid', what);
  }
  t.same(await counts(), before, 'nothing was written');
  t.equal(await planOf(s.key), 'premium');
  stripeHas(s.id, { status: 'active', ended_at: null });
});

t.test('events for unknown prices or customers are acknowledged and change nothing', async (t) => {
  const before = await counts();
  const foreign = subscriptionObject({
    customer: stripeId('cus'),
    price: 'price_other_product',
    amount: 100,
    status: 'active',
  });
  stand.subscriptions.set(foreign.id as string, foreign);
  const r = await deliver('customer.subscription.created', foreign);
  t.equal(r.status, 200);
  t.same(r.body.applied, ['ignored_unknown_customer']);
  const other = await deliver('customer.created', { id: stripeId('cus'), object: 'customer' });
  t.same(other.body.applied, ['ignored_event_type']);
  t.same(await counts(), before);
});

t.test('refresh=1 re-reads the Stripe subscription now', async (t) => {
  const s = await subscriber();
  stripeHas(s.id, { status: 'past_due' });
  const r = await api.signed(s.key, 'GET', '/v1/subscription?refresh=1');
  t.equal(r.status, 200, r.text);
  t.same(r.body.refresh, [{ provider: 'stripe', outcome: 'applied' }]);
  t.equal(r.body.subscription.status, 'past_due');
  t.equal(await planOf(s.key), 'basic');
});

t.test('GET /v1/plans says Stripe sells premium and advanced, and for which cycles', async (t) => {
  const r = await api.request('GET', '/v1/plans');
  const byCode = Object.fromEntries(r.body.plans.map((p: { code: string }) => [p.code, p]));
  t.match(byCode.premium, { providers: ['stripe'], checkout_cycles: ['monthly', 'yearly'] });
  t.match(byCode.advanced, { providers: ['stripe'], checkout_cycles: ['monthly'] });
  t.same(byCode.basic.providers, []);
});

t.test('the period and amounts come from the subscription items (API 2025+)', async (t) => {
  const s = await subscriber('price_advanced_m', 999);
  const view = await mine(s.key);
  const item = (s.sub.items as { data: { current_period_start: number; current_period_end: number }[] }).data[0];
  t.equal(new Date(view.subscription.current_period_start).getTime(), (item?.current_period_start ?? 0) * 1000);
  t.equal(new Date(view.subscription.current_period_end).getTime(), (item?.current_period_end ?? 0) * 1000);
  t.match(view.subscription, { plan: 'advanced', amount: '9.99' });
  t.ok(Math.abs(new Date(view.subscription.current_period_end).getTime() / 1000 - nowS() - 29 * day) < 2 * day);
});
