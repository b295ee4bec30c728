// Pure rules of the provider modules: AES-256-GCM sealing of provider keys, ExtPay's user object → facts (periods
// counted from the payment, clamped month ends), and Stripe's statuses onto the founding enum.
import t from 'tap';
import {
  addMonths,
  extPayFacts,
  extPayPlanMap,
  parseExtPayUser,
  periodAround,
} from '../../src/core/billing/extensionpay.js';
import { createSecretBox, parseDataKey } from '../../src/core/billing/secret-box.js';
import { statusOf } from '../../src/core/billing/stripe.js';

t.test('a sealed key opens only with its key and its row', async (t) => {
  const box = createSecretBox('11'.repeat(32));
  const sealed = box.seal('extpay-key-123', 'extensionpay:user-a');
  t.equal(box.open(sealed, 'extensionpay:user-a'), 'extpay-key-123');
  t.not(
    box.seal('extpay-key-123', 'extensionpay:user-a').toString('hex'),
    sealed.toString('hex'),
    'a fresh IV each time',
  );
  t.throws(() => box.open(sealed, 'extensionpay:user-b'), 'another row');
  t.throws(() => createSecretBox('22'.repeat(32)).open(sealed, 'extensionpay:user-a'), 'another key');
  const tampered = Buffer.from(sealed);
  tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
  t.throws(() => box.open(tampered, 'extensionpay:user-a'), 'a changed byte');
  t.equal(box.fingerprint('k', 'extensionpay'), box.fingerprint('k', 'extensionpay'));
  t.not(box.fingerprint('k', 'extensionpay'), createSecretBox('22'.repeat(32)).fingerprint('k', 'extensionpay'));
  t.equal(parseDataKey(Buffer.alloc(32, 7).toString('base64')).length, 32);
  t.throws(() => parseDataKey('short'));
});

t.test('months add with the day clamped; the period holding a date is counted from the first payment', async (t) => {
  t.equal(addMonths(new Date('2025-01-31T10:00:00Z'), 1).toISOString(), '2025-02-28T10:00:00.000Z');
  t.equal(addMonths(new Date('2024-01-31T10:00:00Z'), 1).toISOString(), '2024-02-29T10:00:00.000Z');
  t.equal(addMonths(new Date('2025-11-15T00:00:00Z'), 3).toISOString(), '2026-02-15T00:00:00.000Z');
  const anchor = new Date('2025-01-31T10:00:00Z');
  t.same(periodAround(anchor, 1, new Date('2025-03-30T00:00:00Z')), {
    start: new Date('2025-02-28T10:00:00Z'),
    end: new Date('2025-03-31T10:00:00Z'),
  });
  t.same(periodAround(anchor, 12, new Date('2027-06-01T00:00:00Z')), {
    start: new Date('2027-01-31T10:00:00Z'),
    end: new Date('2028-01-31T10:00:00Z'),
  });
  t.same(periodAround(anchor, 1, anchor), { start: anchor, end: new Date('2025-02-28T10:00:00Z') });
});

t.test('the ExtPay user object becomes facts', async (t) => {
  const planFor = extPayPlanMap(['Premium Monthly=premium', 'adv=advanced']);
  t.equal(planFor('  premium monthly '), 'premium');
  t.equal(planFor(null), undefined);
  const now = new Date();
  const paidAt = new Date(now.getTime() - 40 * 86_400_000).toISOString();
  const user = parseExtPayUser({
    paid: true,
    paidAt,
    email: null,
    installedAt: paidAt,
    trialStartedAt: null,
    plan: { unitAmountCents: 499, currency: 'usd', nickname: 'Premium Monthly', interval: 'month', intervalCount: 1 },
    subscriptionStatus: 'active',
    subscriptionCancelAt: null,
  });
  if (!user) throw new Error('not parsed');
  const ctx = { userId: 'u1', fingerprint: 'f'.repeat(64), planFor };
  const mapped = extPayFacts(user, ctx, now);
  t.ok(mapped.ok);
  if (!mapped.ok) return;
  const s = mapped.facts.subscription;
  t.match(s, {
    provider: 'extensionpay',
    planCode: 'premium',
    billingCycle: 'monthly',
    status: 'active',
    amount: '4.99',
    currency: 'USD',
    endsAt: null,
  });
  t.ok(s && s.periodStart <= now && s.periodEnd && s.periodEnd > now, 'the period holds now');
  t.match(mapped.facts.payments, [
    {
      status: 'succeeded',
      amount: '4.99',
      providerPaymentId: `extensionpay:${'f'.repeat(40)}:${Math.floor(Date.parse(paidAt) / 1000)}`,
    },
  ]);

  t.same(
    extPayFacts({ ...user, paid: false, paidAt: null, subscriptionStatus: undefined }, ctx, now),
    { ok: true, facts: {} },
    'never paid: nothing',
  );
  t.same(
    extPayFacts(
      {
        ...user,
        plan: {
          ...(user.plan ?? { unitAmountCents: 0, currency: 'usd', interval: 'month', intervalCount: 1 }),
          nickname: 'Gold',
        },
      },
      ctx,
      now,
    ),
    { ok: false, nickname: 'Gold' },
  );
  t.equal(parseExtPayUser({ paid: 'yes' }), undefined, 'not a user object');
  t.equal(parseExtPayUser({ paid: true, paidAt: 'soon', plan: null }), undefined, 'a date that is not one');
});

t.test("Stripe's statuses map onto the founding enum", async (t) => {
  t.same(
    ['active', 'past_due', 'canceled', 'unpaid', 'incomplete', 'trialing', 'incomplete_expired', 'paused'].map((s) =>
      statusOf(s),
    ),
    ['active', 'past_due', 'canceled', 'unpaid', 'incomplete', 'trialing', 'canceled', 'unpaid'],
  );
});
