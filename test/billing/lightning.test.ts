// Lightning end to end: two service processes on one database (and one Redis prefix), both connected with the real
// @getalby/sdk client to the stand-in wallet (NIP-47 through a relay on 127.0.0.1), the user on the real API with
// NIP-98. An invoice is a real signed BOLT11; the payment is credited once although both processes hear the
// wallet's payment_received; a period bought ahead extends the current one; plans, NIP-11 and /metrics show
// Lightning; a wallet that refuses, hangs or cannot be reached gets a 502 and leaves nothing pending, while /readyz
// does not care. Polling, expiry, late payments and periods over time: lightning-periods.test.ts.
import bolt11 from 'bolt11';
import * as nip19 from 'nostr-tools/nip19';
import t from 'tap';
import { startTestApp } from '../helpers/app.js';
import { ApiClient } from '../helpers/api.js';
import { newKey, type Key } from '../helpers/events.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWalletStandIn } from '../helpers/nwc-wallet-standin.js';
import { testRedisPrefix } from '../helpers/redis.js';
import { startTestRelay } from '../helpers/upstream-relays.js';

const DAY = 86_400_000;
const relay = await startTestRelay(t, { name: 'nwc' });
const wallet = await startWalletStandIn(t, relay.url);
const env = {
  NWC_URL: wallet.nwcUrl,
  LIGHTNING_PRICES: 'premium:monthly=15000,advanced:monthly=30000',
  // The lookups come ten minutes after an invoice is made: what is paid here is credited by the notification.
  LIGHTNING_POLL_MS: '600000',
  BILLING_PROVIDER_TIMEOUT_MS: '1500',
  RELAY_NAME: 'Test relay',
};
const redis = testRedisPrefix(t);
const app = await startTestApp(t, { redis, env });
const app2 = await startTestApp(t, { redis, env, databaseUrl: app.config.databaseUrl });
const api = new ApiClient(app.url);
const api2 = new ApiClient(app2.url);
const db = app.db.knex;
const near = (a: Date | string, b: number, ms = 60_000) => Math.abs(new Date(a).getTime() - b) < ms;

const buy = (key: Key, plan = 'premium', billing_cycle = 'monthly') =>
  api.signed(key, 'POST', '/v1/subscription/lightning', { body: { plan, billing_cycle } });
const status = (key: Key, hash: string, wait = 0, client = api) =>
  client.signed(key, 'GET', `/v1/subscription/lightning/${hash}${wait ? `?wait=${wait}` : ''}`);
const planOf = async (key: Key, client = api) => (await client.signed(key, 'GET', '/v1/me')).body.plan as string;
const count = async (table: string) => Number((await db(table).count<{ n: string }[]>({ n: '*' }))[0]?.n);

async function paidStatus(key: Key, hash: string) {
  return waitFor(
    'the invoice to be paid',
    async () => {
      const r = await status(key, hash, 5);
      return r.body.status === 'paid' ? r.body : undefined;
    },
    30_000,
    10,
  );
}

t.test('GET /v1/plans and the NIP-11 document offer the plans that have a price in sats', async (t) => {
  const plans = (await api.request('GET', '/v1/plans')).body.plans as {
    code: string;
    providers: string[];
    lightning_prices: Record<string, number>;
  }[];
  const byCode = Object.fromEntries(plans.map((p) => [p.code, p]));
  t.ok(byCode.premium?.providers.includes('lightning'));
  t.same(byCode.premium?.lightning_prices, { monthly: 15000 });
  t.same(byCode.advanced?.lightning_prices, { monthly: 30000 });
  t.notOk(byCode.basic?.providers.includes('lightning'), 'a plan without a price is not sold this way');

  const res = await fetch(app.url, { headers: { accept: 'application/nostr+json' } });
  const doc = (await res.json()) as {
    fees: { subscription: { amount: number; unit: string; period: number; plan: string }[] };
  };
  t.ok(
    doc.fees.subscription.some(
      (f) => f.plan === 'premium' && f.unit === 'msats' && f.amount === 15_000_000 && f.period === 2_592_000,
    ),
  );
  t.ok(doc.fees.subscription.some((f) => f.plan === 'advanced' && f.unit === 'msats' && f.amount === 30_000_000));
});

t.test(
  'an invoice paid from a wallet is credited by the wallet notification, once although two processes hear it',
  async (t) => {
    const alice = newKey();
    const before = { subscriptions: await count('user_subscriptions'), events: await count('payment_webhook_events') };
    const r = await buy(alice);
    t.equal(r.status, 201, r.text);
    const hash = r.body.payment_hash as string;
    t.match(r.body, {
      plan: 'premium',
      billing_cycle: 'monthly',
      amount_sats: 15000,
      status: 'pending',
      paid_at: null,
      period_start: null,
    });
    t.ok(
      near(r.body.expires_at, Date.now() + 900_000),
      'expires in LIGHTNING_INVOICE_EXPIRY_SECONDS (15 min by default)',
    );

    // A real BOLT11: the amount, the payment hash, the description and the signature of the wallet's node.
    const decoded = bolt11.decode(r.body.invoice as string);
    t.equal(decoded.millisatoshis, '15000000');
    t.equal(decoded.tagsObject.payment_hash, hash);
    t.equal(decoded.payeeNodeKey, wallet.nodePubkey, 'signed by the wallet node');
    t.equal(decoded.tagsObject.description, `Test relay: Premium plan, monthly, for ${nip19.npubEncode(alice.pk)}`);
    t.match(wallet.requests.at(-1), {
      method: 'make_invoice',
      params: { amount: 15_000_000, expiry: 900 },
      encryption: 'nip44_v2',
    });

    const pending = await db('payments').where({ provider_payment_id: hash }).first();
    t.match(pending, {
      status: 'pending',
      payment_provider: 'nwc',
      payment_method: 'lightning',
      currency: 'SAT',
      amount: '15000.00',
    });
    t.equal((await status(alice, hash)).body.status, 'pending');
    t.equal(await planOf(alice), 'basic');

    await wallet.pay(hash);
    const paid = await paidStatus(alice, hash);
    t.ok(near(paid.period_start, Date.now()), 'the period starts now');
    t.ok(near(paid.period_end, Date.now() + 30 * DAY), 'and lasts a month');
    t.equal(await planOf(alice), 'premium', 'the new limits apply at once');
    t.equal(await planOf(alice, api2), 'premium', 'in the other process too');

    const mine = (await api.signed(alice, 'GET', '/v1/subscription')).body;
    t.match(mine.subscription, {
      plan: 'premium',
      status: 'active',
      payment_provider: 'nwc',
      renews: false,
      currency: 'SAT',
      amount: '15000.00',
    });
    t.equal(
      mine.subscription.cancel_at,
      mine.subscription.current_period_end,
      'GET /v1/subscription shows when it ends',
    );
    t.match(mine.payments, [{ status: 'succeeded', payment_provider: 'nwc', payment_method: 'lightning' }]);

    // Both processes got the notification; one of them credited it.
    await waitFor(
      'both processes to have heard the payment',
      async () => (await api2.signed(alice, 'GET', `/v1/subscription/lightning/${hash}`)).body.status === 'paid',
    );
    t.equal(await count('user_subscriptions'), before.subscriptions + 1, 'one subscription');
    t.equal(await count('payment_webhook_events'), before.events + 1, 'one provider event');
    const event = await db('payment_webhook_events').where({ provider: 'nwc', provider_event_id: hash }).first();
    t.equal(event.payload.source, 'notification');
    const audits = await db('audit_log')
      .where({ table_name: 'user_subscriptions', operation: 'INSERT', actor: 'nwc' })
      .whereRaw("new_values->>'provider_subscription_id' = ?", [hash]);
    t.equal(audits.length, 1, 'audited once');
    const credited = async (a: typeof app) =>
      (await a.metrics.lightningInvoices.get()).values
        .filter((v) => v.labels.outcome === 'paid')
        .reduce((n, v) => n + v.value, 0);
    t.equal((await credited(app)) + (await credited(app2)), 1, 'counted as paid once over both processes');

    t.test('a second period bought ahead extends the first', async (t) => {
      const again = await buy(alice);
      t.equal(again.status, 201);
      await wallet.pay(again.body.payment_hash);
      const second = await paidStatus(alice, again.body.payment_hash);
      t.ok(near(second.period_start, Date.now() + 30 * DAY), 'it starts when the first ends');
      const sub = (await api.signed(alice, 'GET', '/v1/subscription')).body.subscription;
      t.ok(near(sub.current_period_end, Date.now() + 60 * DAY), 'the subscription now ends two months from now');
      t.equal(
        (await db('user_subscriptions').where({ payment_provider: 'nwc', payment_provider_id: hash })).length,
        1,
        'the same subscription',
      );
    });
  },
);

t.test('what is not sold in sats is a 400, and nothing is asked of the wallet', async (t) => {
  const bob = newKey();
  const asked = wallet.requests.length;
  const payments = await count('payments');
  for (const [plan, cycle] of [
    ['platinum', 'monthly'],
    ['basic', 'monthly'],
    ['premium', 'yearly'],
  ] as const) {
    const r = await buy(bob, plan, cycle);
    t.equal(r.status, 400, `${plan} ${cycle}`);
    t.equal(r.body.error.code, 'plan_not_sold');
    t.match(
      r.body.error.message,
      `plan "${plan}" is not sold for Lightning billed ${cycle} (offered: premium:monthly, advanced:monthly)`,
    );
  }
  const weekly = await buy(bob, 'premium', 'weekly');
  t.equal(weekly.status, 400);
  t.equal(weekly.body.error.code, 'validation_failed');
  t.equal(wallet.requests.length, asked);
  t.equal(await count('payments'), payments);
});

t.test('a wallet that refuses, hangs or cannot be reached: 502 with a clear message, nothing pending', async (t) => {
  const carol = newKey();
  const payments = await count('payments');
  const invoices = await count('lightning_invoices');

  wallet.failWith = { code: 'INTERNAL', message: 'the node is offline' };
  const refused = await buy(carol);
  wallet.failWith = undefined;
  t.equal(refused.status, 502);
  t.equal(refused.body.error.code, 'payment_provider_unavailable');
  t.match(
    refused.body.error.message,
    /^the Lightning wallet refused to make the invoice \(INTERNAL: the node is offline\); nothing was stored/,
  );

  wallet.silent = true;
  const hung = await buy(carol);
  wallet.silent = false;
  t.equal(hung.status, 502);
  t.match(hung.body.error.message, /^the Lightning wallet could not be reached \(reply timeout/);

  await relay.stop();
  const down = await buy(carol);
  t.equal(down.status, 502);
  t.match(down.body.error.message, /^the Lightning wallet could not be reached/);
  const ready = await api.request('GET', '/readyz');
  t.equal(ready.status, 200, '/readyz does not depend on the wallet');

  t.equal(await count('payments'), payments, 'no payment row');
  t.equal(await count('lightning_invoices'), invoices, 'no invoice row');

  await relay.start();
  await wallet.stop();
  await wallet.start();
  const back = await waitFor(
    'the wallet to answer again',
    async () => {
      const r = await buy(carol);
      return r.status === 201 ? r : undefined;
    },
    20_000,
    200,
  );
  t.equal(back.body.status, 'pending');

  const scrape = await api.request('GET', '/metrics');
  t.match(scrape.text, /nostrx_lightning_invoices_total\{outcome="wallet_error"\} [1-9]/);
  t.match(scrape.text, /nostrx_lightning_invoices_total\{outcome="created"\} [1-9]/);
  t.match(
    scrape.text,
    /nostrx_billing_provider_errors_total\{provider="nwc",operation="make_invoice",kind="rejected"\} 1/,
  );
  t.match(
    scrape.text,
    /nostrx_billing_provider_errors_total\{provider="nwc",operation="make_invoice",kind="unavailable"\} 2/,
  );
});

t.test('an invoice is shown to its buyer only', async (t) => {
  const dave = newKey();
  const mallory = newKey();
  const r = await buy(dave);
  t.equal(r.status, 201);
  const other = await status(mallory, r.body.payment_hash);
  t.equal(other.status, 404);
  t.equal(other.body.error.code, 'invoice_not_found');
  t.equal((await status(dave, 'ab'.repeat(32))).status, 404);
  t.equal((await status(dave, 'not-a-hash')).status, 400);
  const waited = await status(dave, r.body.payment_hash, 1);
  t.equal(waited.body.status, 'pending', '?wait answers when the time is up');
});
