// Billing with nothing configured: each route answers 503 naming the setting it needs, the Stripe webhook still
// refuses an unsigned body, and GET /v1/plans offers no provider.
import t from 'tap';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { newKey } from '../helpers/events.js';
import { eventBody, signStripe } from '../helpers/stripe-standin.js';

t.test('nothing configured', async (t) => {
  const app = await startTestApp(t);
  const api = new ApiClient(app.url);
  const alice = newKey();
  const cases = [
    [
      'checkout',
      await api.signed(alice, 'POST', '/v1/subscription/checkout', {
        body: { plan: 'premium', billing_cycle: 'monthly' },
      }),
      'STRIPE_SECRET_KEY',
    ],
    ['portal', await api.signed(alice, 'POST', '/v1/subscription/portal'), 'STRIPE_SECRET_KEY'],
    [
      'extensionpay',
      await api.signed(alice, 'POST', '/v1/subscription/extensionpay', { body: { api_key: 'some_key_1234' } }),
      'EXTENSIONPAY_EXTENSION_ID',
    ],
    [
      'lightning',
      await api.signed(alice, 'POST', '/v1/subscription/lightning', {
        body: { plan: 'premium', billing_cycle: 'monthly' },
      }),
      'NWC_URL',
    ],
    [
      'stripe webhook',
      await api.request('POST', '/v1/webhooks/stripe', { raw: eventBody('invoice.paid', {}) }),
      'STRIPE_WEBHOOK_SECRET',
    ],
  ] as const;
  for (const [what, r, setting] of cases) {
    t.equal(r.status, 503, what);
    t.equal(r.body.error.code, 'billing_not_configured', what);
    t.equal(r.body.error.setting, setting, what);
    t.match(r.body.error.message, new RegExp(`${setting} is not set`), what);
  }
  const plans = await api.request('GET', '/v1/plans');
  t.ok(
    plans.body.plans.every((p: { providers: string[] }) => p.providers.length === 0),
    'no provider sells anything',
  );
  const sub = await api.signed(alice, 'GET', '/v1/subscription?refresh=1');
  t.equal(sub.status, 200);
  t.same(sub.body.refresh, []);
});

t.test('ExtensionPay without DATA_ENCRYPTION_KEY; Stripe webhook secret without a secret key', async (t) => {
  const secret = 'whsec_only';
  const app = await startTestApp(t, {
    env: { EXTENSIONPAY_EXTENSION_ID: 'nostrx-test', STRIPE_WEBHOOK_SECRET: secret },
  });
  const api = new ApiClient(app.url);
  const r = await api.signed(newKey(), 'POST', '/v1/subscription/extensionpay', { body: { api_key: 'some_key_1234' } });
  t.equal(r.status, 503);
  t.equal(r.body.error.setting, 'DATA_ENCRYPTION_KEY');

  const raw = eventBody('invoice.paid', { id: 'in_1', object: 'invoice' });
  const unsigned = await api.request('POST', '/v1/webhooks/stripe', { raw });
  t.equal(unsigned.status, 400, 'an unsigned body is still refused');
  t.equal(unsigned.body.error.code, 'webhook_signature_invalid');
  const signed = await api.request('POST', '/v1/webhooks/stripe', {
    raw,
    headers: { 'stripe-signature': signStripe(raw, secret) },
  });
  t.equal(signed.status, 503, 'a signed one cannot be applied without the API key');
  t.equal(signed.body.error.setting, 'STRIPE_SECRET_KEY');
  t.equal(
    Number((await app.db.knex('payment_webhook_events').count<{ n: string }[]>({ n: '*' }))[0]?.n),
    0,
    'nothing recorded: Stripe retries it later',
  );
});
