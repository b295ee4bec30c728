// Payment webhooks: HMAC-SHA256 over `t.body`, 5-minute tolerance, applied once per provider event id. A
// subscription moves the user to its plan at once (today's count stays); payments are recorded; every
// subscription change is audited; a bad signature is a 400 that changes nothing.
import t from 'tap';
import { signWebhook } from '../../src/core/billing/webhook-signature.js';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { buildEvent, newKey, type Key } from '../helpers/events.js';

const secret = 'whsec_test_3f9a';
const app = await startTestApp(t, { redis: true, env: { PAYMENT_WEBHOOK_SECRET: secret } });
const api = new ApiClient(app.url);
const db = app.db.knex;
const now = () => Math.floor(Date.now() / 1000);
let seq = 0;

function deliver(
  body: unknown,
  opts: { timestamp?: number; secret?: string; signature?: string | null; raw?: string } = {},
) {
  const raw = opts.raw ?? JSON.stringify(body);
  const headers: Record<string, string> = {};
  if (opts.signature !== null)
    headers['nostrx-signature'] = opts.signature ?? signWebhook(raw, opts.secret ?? secret, opts.timestamp ?? now());
  return api.request('POST', '/v1/webhooks/payments', { raw, headers });
}

const event = (type: string, data: Record<string, unknown>) => ({
  id: `evt_${++seq}_${Date.now()}`,
  type,
  created: now(),
  data,
});

async function counts() {
  const [w, s, p, a] = await Promise.all(
    ['payment_webhook_events', 'user_subscriptions', 'payments', 'audit_log'].map(async (table) =>
      Number((await db(table).count<{ n: string }[]>({ n: '*' }))[0]?.n),
    ),
  );
  return { webhooks: w, subscriptions: s, payments: p, audit: a };
}

async function planOf(key: Key) {
  return (await api.signed(key, 'GET', '/v1/me')).body.plan as string;
}

t.test('unsigned, wrongly signed, stale or tampered webhooks are a 400 that changes nothing', async (t) => {
  const alice = newKey();
  const body = event('subscription.created', { pubkey: alice.pk, subscription_id: 'sub_bad', plan: 'premium' });
  const before = await counts();
  const cases = [
    ['no signature', await deliver(body, { signature: null }), /header is missing/],
    ['another secret', await deliver(body, { secret: 'whsec_guess' }), /does not match the body/],
    [
      '6 minutes old',
      await deliver(body, { timestamp: now() - 360 }),
      /timestamp is 36\d s from now, the tolerance is 300 s/,
    ],
    ['6 minutes ahead', await deliver(body, { timestamp: now() + 360 }), /tolerance is 300 s/],
    ['garbage header', await deliver(body, { signature: 'sha256=abc' }), /must be t=<unix seconds>,v1=/],
    [
      'body changed after signing',
      await deliver(body, {
        raw: JSON.stringify({ ...body, data: { ...body.data, plan: 'advanced' } }),
        signature: signWebhook(JSON.stringify(body), secret, now()),
      }),
      /does not match/,
    ],
  ] as const;
  for (const [what, r, message] of cases) {
    t.equal(r.status, 400, what);
    t.equal(r.body.error.code, 'webhook_signature_invalid', what);
    t.match(r.body.error.message, message, what);
  }
  t.same(await counts(), before, 'nothing was written');
  t.notOk(await db('users').where({ nostr_public_key: alice.pk }).first(), 'not even the user');
});

t.test('an unsigned request learns nothing about the payload schema', async (t) => {
  const r = await deliver({ nonsense: true }, { signature: null });
  t.equal(r.status, 400);
  t.equal(r.body.error.code, 'webhook_signature_invalid');
});

t.test("subscription.created moves the user to the plan at once; today's count stays", async (t) => {
  const alice = newKey();
  for (let i = 0; i < 3; i++)
    t.equal(
      (await api.signed(alice, 'POST', '/v1/events', { body: { event: buildEvent(alice.sk, { content: `n${i}` }) } }))
        .status,
      202,
    );
  t.equal(
    (await api.signed(alice, 'POST', '/v1/events', { body: { event: buildEvent(alice.sk, { content: 'n3' }) } }))
      .status,
    429,
    'basic is used up',
  );

  const periodEnd = new Date(Date.now() + 30 * 86_400_000).toISOString();
  const r = await deliver(
    event('subscription.created', {
      pubkey: alice.pk,
      subscription_id: 'sub_alice',
      plan: 'premium',
      amount: '4.99',
      currency: 'USD',
      current_period_end: periodEnd,
    }),
  );
  t.equal(r.status, 200);
  t.same(r.body, { received: true, duplicate: false, applied: 'subscription_activated' });

  t.equal(await planOf(alice), 'premium');
  const quota = await api.signed(alice, 'GET', '/v1/me/quota');
  t.match(quota.body, { plan: 'premium', daily: { used: 3, limit: 25, remaining: 22 } });
  t.equal(
    (await api.signed(alice, 'POST', '/v1/events', { body: { event: buildEvent(alice.sk, { content: 'n4' }) } }))
      .status,
    202,
    'the 4th post of the day passes',
  );

  const sub = await api.signed(alice, 'GET', '/v1/subscription');
  t.equal(sub.status, 200);
  t.equal(sub.body.plan.code, 'premium');
  t.match(sub.body.subscription, {
    plan: 'premium',
    status: 'active',
    amount: '4.99',
    currency: 'USD',
    billing_cycle: 'monthly',
    payment_provider: 'extensionpay',
  });
  t.equal(new Date(sub.body.subscription.current_period_end).toISOString(), periodEnd);

  const audit = await db('audit_log')
    .where({ table_name: 'user_subscriptions' })
    .whereRaw(`new_values->>'provider_subscription_id' = ?`, ['sub_alice']);
  t.equal(audit.length, 1);
  t.equal(audit[0].actor, 'webhook:extensionpay');
});

t.test('a redelivered event is acknowledged and not applied again', async (t) => {
  const alice = newKey();
  const created = event('subscription.created', { pubkey: alice.pk, subscription_id: 'sub_twice', plan: 'premium' });
  t.equal((await deliver(created)).body.duplicate, false);
  const before = await counts();
  const again = await deliver(created);
  t.equal(again.status, 200);
  t.same(again.body, { received: true, duplicate: true, applied: 'none' });
  t.same(await counts(), before);

  // Concurrent deliveries of one new event: one applies it.
  const payment = event('payment.succeeded', {
    pubkey: alice.pk,
    subscription_id: 'sub_twice',
    payment_id: 'pay_race',
    amount: '4.99',
    currency: 'USD',
  });
  const results = await Promise.all([deliver(payment), deliver(payment), deliver(payment)]);
  t.same(
    results.map((r) => r.status),
    [200, 200, 200],
  );
  t.equal(results.filter((r) => !r.body.duplicate).length, 1);
  t.equal((await db('payments').where({ provider_payment_id: 'pay_race' })).length, 1);
});

t.test('payments: succeeded, failed and refunded update the payment row', async (t) => {
  const alice = newKey();
  await deliver(event('subscription.created', { pubkey: alice.pk, subscription_id: 'sub_pay', plan: 'premium' }));
  let r = await deliver(
    event('payment.succeeded', {
      pubkey: alice.pk,
      subscription_id: 'sub_pay',
      payment_id: 'pay_1',
      amount: '4.99',
      currency: 'USD',
      payment_method: 'card',
      last_four: '4242',
      fee: '0.45',
      net_amount: '4.54',
      receipt_url: 'https://pay.example/r/1',
    }),
  );
  t.same(r.body.applied, 'payment_succeeded');
  r = await deliver(
    event('payment.failed', {
      pubkey: alice.pk,
      subscription_id: 'sub_pay',
      payment_id: 'pay_2',
      amount: '4.99',
      currency: 'USD',
      failure_reason: 'card declined',
    }),
  );
  t.same(r.body.applied, 'payment_failed');
  r = await deliver(event('payment.refunded', { pubkey: alice.pk, payment_id: 'pay_1' }));
  t.same(r.body.applied, 'payment_refunded');

  const rows = await db('payments').whereIn('provider_payment_id', ['pay_1', 'pay_2']).orderBy('provider_payment_id');
  t.match(rows[0], {
    status: 'refunded',
    amount: '4.99',
    last_four_digits: '4242',
    payment_method: 'card',
    provider_fee: '0.45',
    net_amount: '4.54',
  });
  t.ok(rows[0].processed_at);
  t.match(rows[1], { status: 'failed', failure_reason: 'card declined' });
  t.ok(rows[1].failed_at);
  const sub = await db('user_subscriptions').where({ payment_provider_id: 'sub_pay' }).first('id');
  t.equal(rows[0].subscription_id, sub.id, 'linked to the subscription');

  const mine = await api.signed(alice, 'GET', '/v1/subscription');
  t.same(mine.body.payments.map((p: { status: string }) => p.status).sort(), ['failed', 'refunded']);
});

t.test('renewed extends the period; past_due and canceled take the plan away at once', async (t) => {
  const alice = newKey();
  await deliver(
    event('subscription.created', {
      pubkey: alice.pk,
      subscription_id: 'sub_life',
      plan: 'advanced',
      billing_cycle: 'yearly',
    }),
  );
  t.equal(await planOf(alice), 'advanced');
  const nextEnd = new Date(Date.now() + 400 * 86_400_000).toISOString();
  let r = await deliver(
    event('subscription.renewed', {
      pubkey: alice.pk,
      subscription_id: 'sub_life',
      current_period_start: new Date().toISOString(),
      current_period_end: nextEnd,
    }),
  );
  t.equal(r.body.applied, 'subscription_renewed');
  let sub = (await api.signed(alice, 'GET', '/v1/subscription')).body.subscription;
  t.equal(new Date(sub.current_period_end).toISOString(), nextEnd);
  t.equal(sub.billing_cycle, 'yearly');

  r = await deliver(event('subscription.past_due', { pubkey: alice.pk, subscription_id: 'sub_life' }));
  t.equal(r.body.applied, 'subscription_past_due');
  t.equal(await planOf(alice), 'basic', 'limits of the plan stop while it is past due');
  r = await deliver(event('subscription.renewed', { pubkey: alice.pk, subscription_id: 'sub_life' }));
  t.equal(await planOf(alice), 'advanced', 'a renewal restores it');
  r = await deliver(event('subscription.canceled', { pubkey: alice.pk, subscription_id: 'sub_life' }));
  t.equal(r.body.applied, 'subscription_canceled');
  t.equal(await planOf(alice), 'basic');
  sub = (await api.signed(alice, 'GET', '/v1/subscription')).body;
  t.equal(sub.subscription, null);
  t.equal(sub.history[0].status, 'canceled');
  t.ok(sub.history[0].canceled_at);

  const audits = await db('audit_log')
    .where({ table_name: 'user_subscriptions' })
    .whereRaw(`new_values->>'id' = ?`, [sub.history[0].id])
    .orderBy('created_at');
  t.same(
    audits.map((a: { operation: string; new_values: { status: string } }) => `${a.operation} ${a.new_values.status}`),
    ['INSERT active', 'UPDATE active', 'UPDATE past_due', 'UPDATE active', 'UPDATE canceled'],
    'created, renewed, past due, renewed, canceled',
  );
});

t.test('a new subscription replaces the active one', async (t) => {
  const alice = newKey();
  await deliver(event('subscription.created', { pubkey: alice.pk, subscription_id: 'sub_a', plan: 'premium' }));
  await deliver(event('subscription.created', { pubkey: alice.pk, subscription_id: 'sub_b', plan: 'advanced' }));
  const rows = await db('user_subscriptions as s')
    .join('users as u', 'u.id', 's.user_id')
    .where('u.nostr_public_key', alice.pk)
    .orderBy('s.created_at')
    .select('s.payment_provider_id', 's.status');
  t.same(rows, [
    { payment_provider_id: 'sub_a', status: 'canceled' },
    { payment_provider_id: 'sub_b', status: 'active' },
  ]);
  t.equal(await planOf(alice), 'advanced');
});

t.test(
  'a payload that cannot be applied is a 400 naming the field, and is not recorded (the provider may retry)',
  async (t) => {
    const alice = newKey();
    const before = await counts();
    let r = await deliver(
      event('subscription.created', { pubkey: alice.pk, subscription_id: 'sub_x', plan: 'platinum' }),
    );
    t.equal(r.status, 400);
    t.same([r.body.error.code, r.body.error.field], ['webhook_payload_invalid', 'data.plan']);
    r = await deliver(event('subscription.created', { pubkey: alice.pk, plan: 'premium' }));
    t.same([r.status, r.body.error.field], [400, 'data.subscription_id']);
    r = await deliver(event('payment.succeeded', { pubkey: alice.pk, payment_id: 'pay_x' }));
    t.same([r.status, r.body.error.field], [400, 'data.amount']);
    r = await deliver(
      event('subscription.created', {
        pubkey: alice.pk,
        subscription_id: 'sub_y',
        plan: 'premium',
        current_period_start: '2030-01-02T00:00:00Z',
        current_period_end: '2030-01-01T00:00:00Z',
      }),
    );
    t.same([r.status, r.body.error.field], [400, 'data.current_period_end']);
    r = await deliver(event('subscription.wished', { pubkey: alice.pk }));
    t.same([r.status, r.body.error.code, r.body.error.field], [400, 'validation_failed', 'type']);
    r = await deliver(event('payment.succeeded', { pubkey: 'npub1alice', payment_id: 'p', amount: '1.00' }));
    t.same([r.status, r.body.error.field], [400, 'data.pubkey']);
    t.same(await counts(), before);
  },
);

t.test('cancel or past_due of an unknown subscription is acknowledged and ignored', async (t) => {
  const r = await deliver(event('subscription.canceled', { pubkey: newKey().pk, subscription_id: 'sub_never' }));
  t.equal(r.status, 200);
  t.equal(r.body.applied, 'ignored_unknown_subscription');
});

t.test(
  'out of order: a renewal or past-due notice that arrives after the cancellation does not bring the subscription back',
  async (t) => {
    const alice = newKey();
    await deliver(event('subscription.created', { pubkey: alice.pk, subscription_id: 'sub_late', plan: 'premium' }));
    t.equal(
      (await deliver(event('subscription.canceled', { pubkey: alice.pk, subscription_id: 'sub_late' }))).body.applied,
      'subscription_canceled',
    );
    const before = await counts();
    for (const type of [
      'subscription.renewed',
      'subscription.past_due',
      'subscription.created',
      'subscription.canceled',
    ]) {
      const r = await deliver(event(type, { pubkey: alice.pk, subscription_id: 'sub_late', plan: 'premium' }));
      t.same(
        [r.status, r.body.applied],
        [200, 'ignored_canceled_subscription'],
        `${type} after the cancellation is acknowledged and ignored`,
      );
    }
    t.equal(await planOf(alice), 'basic');
    const after = await counts();
    t.same({ ...after, webhooks: before.webhooks }, before, 'no subscription row or audit entry changed');
    t.equal(
      after.webhooks,
      (before.webhooks ?? 0) + 4,
      'the webhooks themselves are recorded (a redelivery is a duplicate)',
    );
    const sub = await db('user_subscriptions')
      .where({ payment_provider_id: 'sub_late' })
      .first('status', 'canceled_at');
    t.equal(sub.status, 'canceled');
  },
);

t.test(
  'out of order: a renewal of an earlier period that arrives after the later one does not shorten the period',
  async (t) => {
    const carol = newKey();
    const day = 86_400_000;
    const iso = (ms: number) => new Date(ms).toISOString();
    const t0 = Date.now();
    await deliver(
      event('subscription.created', {
        pubkey: carol.pk,
        subscription_id: 'sub_periods',
        plan: 'premium',
        current_period_start: iso(t0 - 10 * day),
        current_period_end: iso(t0 + 20 * day),
      }),
    );
    const later = await deliver(
      event('subscription.renewed', {
        pubkey: carol.pk,
        subscription_id: 'sub_periods',
        current_period_start: iso(t0 + 20 * day),
        current_period_end: iso(t0 + 50 * day),
      }),
    );
    t.equal(later.body.applied, 'subscription_renewed');
    const earlier = await deliver(
      event('subscription.renewed', {
        pubkey: carol.pk,
        subscription_id: 'sub_periods',
        current_period_start: iso(t0 - 10 * day),
        current_period_end: iso(t0 + 20 * day),
      }),
    );
    t.same([earlier.status, earlier.body.applied], [200, 'ignored_stale_renewal']);
    const sub = (await api.signed(carol, 'GET', '/v1/subscription')).body.subscription;
    t.equal(new Date(sub.current_period_end).toISOString(), iso(t0 + 50 * day), 'the later period stays');
    t.equal(await planOf(carol), 'premium');
  },
);

t.test(
  'out of order: a cancellation that arrives before its subscription is created keeps the late creation from activating it',
  async (t) => {
    const bob = newKey();
    const r = await deliver(event('subscription.canceled', { pubkey: bob.pk, subscription_id: 'sub_early_cancel' }));
    t.equal(r.body.applied, 'ignored_unknown_subscription');
    const created = await deliver(
      event('subscription.created', { pubkey: bob.pk, subscription_id: 'sub_early_cancel', plan: 'advanced' }),
    );
    t.same([created.status, created.body.applied], [200, 'ignored_canceled_subscription']);
    t.equal(await planOf(bob), 'basic');
    t.equal((await db('user_subscriptions').where({ payment_provider_id: 'sub_early_cancel' })).length, 0);
    // Another subscription of the same user is not affected.
    const other = await deliver(
      event('subscription.created', { pubkey: bob.pk, subscription_id: 'sub_bob_new', plan: 'premium' }),
    );
    t.equal(other.body.applied, 'subscription_activated');
    t.equal(await planOf(bob), 'premium');
  },
);

t.test('without PAYMENT_WEBHOOK_SECRET every webhook is refused with 503', async (t) => {
  const closed = await startTestApp(t);
  const r = await new ApiClient(closed.url).request('POST', '/v1/webhooks/payments', {
    raw: '{}',
    headers: { 'nostrx-signature': signWebhook('{}', '', now()) },
  });
  t.equal(r.status, 503);
  t.equal(r.body.error.code, 'webhook_not_configured');
});
