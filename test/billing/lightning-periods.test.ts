// Lightning over time, with the provider module built as the composition root builds it (real PostgreSQL, the real
// ledger, the real @getalby/sdk client talking NIP-47 through a loopback relay to the stand-in wallet) and a clock
// of its own that the tests move forward: an invoice that expires unpaid is canceled; one paid after its expiry is
// still credited (found by a late lookup, or reported by the wallet); periods bought ahead start when the current one
// ends and Lightning periods do not renew; a wallet that is down leaves invoices pending until it answers again; two
// processes crediting the same payment credit it once; the background poller finds a payment whose notification was
// lost. Nothing logged, by us or by the SDK, contains the connection secret.
import { pino } from 'pino';
import t from 'tap';
import type { CacheInvalidation } from '../../src/core/accounts/cache-invalidation.js';
import { createBillingLedger } from '../../src/core/billing/ledger.js';
import { createLightning, type Lightning, type LightningSettings } from '../../src/core/billing/lightning.js';
import { createNwcWallet, parseTransaction, type LightningWallet } from '../../src/core/billing/nwc-wallet.js';
import { createMetrics } from '../../src/core/ops/metrics.js';
import { createPlans } from '../../src/core/quota/plans.js';
import { upsertUserByPubkey } from '../../src/store/users.js';
import { createTestDatabase, createTestPglite } from '../helpers/db.js';
import { newKey } from '../helpers/events.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWalletStandIn } from '../helpers/nwc-wallet-standin.js';
import { startTestRelay } from '../helpers/upstream-relays.js';

const DAY = 86_400_000;
const db = (await createTestDatabase(t)).knex;
const plans = createPlans(db);
const invalidation: CacheInvalidation = {
  user: () => {},
  account: () => {},
  allPlans: () => {},
  close: async () => {},
};
const relay = await startTestRelay(t, { name: 'nwc' });
const wallet = await startWalletStandIn(t, relay.url);
const secret = new URL(wallet.nwcUrl.replace('nostr+walletconnect://', 'http://')).searchParams.get('secret') as string;

// Everything written to the log, and to the console (where the SDK writes its own complaints), during this file.
const lines: string[] = [];
const log = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
for (const name of ['error', 'warn', 'info', 'log', 'debug'] as const) {
  const original = console[name].bind(console);
  console[name] = (...args: unknown[]) =>
    void lines.push(args.map((a) => (a instanceof Error ? `${a.message} ${a.stack}` : String(a))).join(' '));
  t.teardown(() => void (console[name] = original));
}

let offsetMs = 0;
const nowMs = () => Date.now() + offsetMs;
const metrics = createMetrics();
const settings: LightningSettings = {
  prices: ['premium:monthly=15000', 'premium:yearly=150000', 'advanced:monthly=30000'],
  expirySeconds: 600,
  pollMs: 100_000,
  serviceName: 'Test relay',
};

/** One process's Lightning: its own ledger and its own NWC client (the SDK), on the shared database and wallet. */
function process_(
  over: Partial<LightningSettings> = {},
  clock = nowMs,
): { lightning: Lightning; wallet: LightningWallet } {
  const nwc = createNwcWallet({ url: wallet.nwcUrl, timeoutMs: 1500, log });
  const lightning = createLightning({
    settings: { ...settings, ...over },
    wallet: nwc,
    db,
    ledger: createBillingLedger({ db, plans, invalidation }),
    plans,
    log,
    metrics,
    nowMs: clock,
  });
  t.teardown(() => lightning.stop());
  return { lightning, wallet: nwc };
}
const { lightning } = process_();

async function newUser(): Promise<{ id: string; pubkey: string }> {
  const pubkey = newKey().pk;
  const id = await db.transaction(async (trx) => (await upsertUserByPubkey(trx, pubkey)).user.id);
  return { id, pubkey };
}

const planOf = async (userId: string) => {
  plans.invalidateUser(userId);
  return (await plans.effectivePlan(userId)).code;
};
const invoiceRow = (hash: string) => db('lightning_invoices').where({ payment_hash: hash }).first();
const paymentRow = (hash: string) => db('payments').where({ provider_payment_id: hash }).first();
const nwcSubscriptions = (userId: string) =>
  db('user_subscriptions').where({ user_id: userId, payment_provider: 'nwc' }).orderBy('created_at');
const counted = async (outcome: string) =>
  (await metrics.lightningInvoices.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
const near = (a: Date | string, b: number, ms = 60_000) => Math.abs(new Date(a).getTime() - b) < ms;

t.teardown(() => {
  offsetMs = 0;
});

t.test(
  'an invoice still unpaid at its expiry is canceled; a payment the wallet settles later is still credited',
  async (t) => {
    offsetMs = 0;
    const user = await newUser();
    const inv = await lightning.createInvoice(user, 'premium', 'monthly');
    t.equal((await paymentRow(inv.paymentHash)).status, 'pending');

    offsetMs = 601_000; // past the expiry, by our clock (the wallet itself still calls it pending)
    await lightning.checkDue(new Date(nowMs()));
    t.equal((await invoiceRow(inv.paymentHash)).state, 'expired');
    const canceled = await paymentRow(inv.paymentHash);
    t.equal(canceled.status, 'canceled');
    t.equal(canceled.failure_reason, 'the invoice expired unpaid');
    t.equal(await planOf(user.id), 'basic');
    t.equal(await counted('expired'), 1);

    // Paid late, no notification: the first late lookup (a minute after the expiry) finds it.
    await wallet.pay(inv.paymentHash, { notify: false });
    offsetMs = 600_000 + 61_000;
    await lightning.checkDue(new Date(nowMs()));
    const paid = await invoiceRow(inv.paymentHash);
    t.equal(paid.state, 'paid');
    t.equal((await paymentRow(inv.paymentHash)).status, 'succeeded');
    t.ok(near(paid.period_start, nowMs()), 'the period starts when the payment is credited');
    t.equal(await planOf(user.id), 'premium');
    t.equal(await counted('paid_late'), 1);
  },
);

t.test('a late payment the wallet reports is credited, once', async (t) => {
  offsetMs = 0;
  const user = await newUser();
  const inv = await lightning.createInvoice(user, 'premium', 'monthly');
  offsetMs = 601_000;
  await lightning.checkDue(new Date(nowMs()));
  t.equal((await invoiceRow(inv.paymentHash)).state, 'expired');

  await wallet.pay(inv.paymentHash, { notify: false });
  const tx = parseTransaction(wallet.invoices.get(inv.paymentHash));
  if (!tx) throw new Error('the stand-in transaction does not parse');
  t.equal(await lightning.paymentReceived(tx), 'credited');
  t.equal(await lightning.paymentReceived(tx), 'duplicate', 'the same notification again changes nothing');
  t.equal((await paymentRow(inv.paymentHash)).status, 'succeeded');
  t.equal(await planOf(user.id), 'premium');
  t.equal(
    await lightning.paymentReceived({ ...tx, paymentHash: 'ab'.repeat(32) }),
    'unknown',
    'a payment for an invoice we did not make is ignored',
  );
  t.equal(await lightning.paymentReceived({ ...tx, amountMsats: 1000 }), 'duplicate');
});

t.test('a payment of less than the invoice asked is not credited', async (t) => {
  offsetMs = 0;
  const user = await newUser();
  const inv = await lightning.createInvoice(user, 'premium', 'monthly');
  const tx = {
    paymentHash: inv.paymentHash,
    invoice: inv.invoice,
    amountMsats: 14_999_000,
    state: 'settled' as const,
    settledAt: Math.floor(Date.now() / 1000),
    expiresAt: undefined,
  };
  t.equal(await lightning.paymentReceived(tx), 'refused');
  t.equal((await invoiceRow(inv.paymentHash)).state, 'pending');
  t.equal(await planOf(user.id), 'basic');
});

t.test(
  'periods bought ahead: the same plan extends the current period, another plan starts when it ends; none renews',
  async (t) => {
    offsetMs = 0;
    const user = await newUser();
    const start = nowMs();
    const buy = async (plan: string) => {
      const inv = await lightning.createInvoice(user, plan, 'monthly');
      await wallet.pay(inv.paymentHash, { notify: false });
      t.equal(await lightning.refresh(user.id), 'applied');
      return inv.paymentHash;
    };

    const first = await buy('premium');
    let subs = await nwcSubscriptions(user.id);
    t.equal(subs.length, 1);
    t.equal(subs[0].status, 'active');
    t.ok(near(subs[0].current_period_end, start + 30 * DAY), 'a month from now');
    t.same(subs[0].ends_at, subs[0].current_period_end, 'it ends at the end of its period: it does not renew');
    t.equal(subs[0].payment_provider_id, first);
    t.equal((await paymentRow(first)).subscription_id, subs[0].id);
    t.equal(await planOf(user.id), 'premium');

    const second = await buy('premium');
    subs = await nwcSubscriptions(user.id);
    t.equal(subs.length, 1, 'the same subscription, extended');
    t.ok(near(subs[0].current_period_end, start + 60 * DAY), 'two months from now');
    t.ok(
      near((await invoiceRow(second)).period_start, start + 30 * DAY),
      'the second period starts when the first ends',
    );

    const third = await buy('advanced');
    const queued = await invoiceRow(third);
    t.ok(near(queued.period_start, start + 60 * DAY), 'another plan waits for the paid time to end');
    t.equal((await nwcSubscriptions(user.id)).length, 1, 'no subscription for it yet');
    t.equal(await planOf(user.id), 'premium');

    offsetMs = 60 * DAY + 1000;
    await lightning.applyPeriods(new Date(nowMs()));
    subs = await nwcSubscriptions(user.id);
    t.same(
      subs.map((s: { status: string; payment_provider_id: string }) => [s.status, s.payment_provider_id]),
      [
        ['canceled', first],
        ['active', third],
      ],
    );
    t.ok(near(subs[0].ends_at, start + 60 * DAY), 'premium ended when its paid time did');
    t.ok(near(subs[1].current_period_end, start + 90 * DAY));
    t.equal(await planOf(user.id), 'advanced');

    offsetMs = 90 * DAY + 1000;
    t.equal(await lightning.applyPeriods(new Date(nowMs())), 1);
    t.same(
      (await nwcSubscriptions(user.id)).map((s: { status: string }) => s.status),
      ['canceled', 'canceled'],
    );
    t.equal(await planOf(user.id), 'basic', 'back on basic: nothing renews');
    t.equal(await lightning.applyPeriods(new Date(nowMs())), 0, 'nothing left to do');

    offsetMs = 90 * DAY + 2000;
    const again = await buy('premium');
    t.ok(near((await invoiceRow(again)).period_start, nowMs()), 'after a gap, a new period starts at once');
    t.equal(await planOf(user.id), 'premium');
    offsetMs = 0;
  },
);

t.test('a yearly period lasts 365 days', async (t) => {
  offsetMs = 0;
  const user = await newUser();
  const inv = await lightning.createInvoice(user, 'premium', 'yearly');
  t.equal(inv.amountSats, 150_000);
  await wallet.pay(inv.paymentHash, { notify: false });
  await lightning.refresh(user.id);
  t.ok(near((await invoiceRow(inv.paymentHash)).period_end, nowMs() + 365 * DAY));
});

t.test('a wallet that is down leaves the invoice pending, past its expiry, until it answers again', async (t) => {
  offsetMs = 0;
  const user = await newUser();
  const inv = await lightning.createInvoice(user, 'premium', 'monthly');
  await wallet.pay(inv.paymentHash, { notify: false });
  await relay.stop();
  offsetMs = 700_000;
  t.equal(await lightning.refresh(user.id), 'unavailable');
  await lightning.checkDue(new Date(nowMs() + 3_600_000));
  t.equal((await invoiceRow(inv.paymentHash)).state, 'pending', 'not canceled on the word of nobody');
  t.equal((await paymentRow(inv.paymentHash)).status, 'pending');
  t.ok(
    (await metrics.billingProviderErrors.get()).values.some(
      (v) => v.labels.provider === 'nwc' && v.labels.operation === 'lookup_invoice',
    ),
  );

  await relay.start();
  await wallet.stop();
  await wallet.start();
  await waitFor(
    'the wallet answering again',
    async () => (await lightning.refresh(user.id)) === 'applied',
    15_000,
    200,
  );
  t.equal((await invoiceRow(inv.paymentHash)).state, 'paid');
  t.equal(await planOf(user.id), 'premium');
  offsetMs = 0;
});

t.test('two processes crediting the same payment at once credit it once', async (t) => {
  offsetMs = 0;
  const other = process_();
  const user = await newUser();
  const inv = await lightning.createInvoice(user, 'premium', 'monthly');
  await wallet.pay(inv.paymentHash, { notify: false });
  const tx = parseTransaction(wallet.invoices.get(inv.paymentHash));
  if (!tx) throw new Error('the stand-in transaction does not parse');
  const outcomes = await Promise.all([
    lightning.paymentReceived(tx),
    other.lightning.paymentReceived(tx),
    lightning.refresh(user.id),
    other.lightning.refresh(user.id),
    other.lightning.checkDue(new Date(nowMs() + 3_600_000)),
  ]);
  t.equal(outcomes.slice(0, 2).filter((o) => o === 'credited').length <= 1, true, `${JSON.stringify(outcomes)}`);
  t.equal(Number((await db('payments').where({ provider_payment_id: inv.paymentHash }).count({ n: '*' }))[0]?.n), 1);
  t.equal(
    Number(
      (
        await db('payment_webhook_events')
          .where({ provider: 'nwc', provider_event_id: inv.paymentHash })
          .count({ n: '*' })
      )[0]?.n,
    ),
    1,
  );
  const subs = await nwcSubscriptions(user.id);
  t.equal(subs.length, 1);
  t.ok(near(subs[0].current_period_end, nowMs() + 30 * DAY), 'one period, not two');
  const audits = await db('audit_log').where({
    table_name: 'user_subscriptions',
    user_id: user.id,
    operation: 'INSERT',
  });
  t.equal(audits.length, 1, 'one subscription created, audited once');
});

t.test('the background poller finds a payment whose notification was lost', async (t) => {
  const poller = process_({ pollMs: 100 }, Date.now);
  poller.lightning.start();
  const user = await newUser();
  const inv = await poller.lightning.createInvoice(user, 'premium', 'monthly');
  await wallet.pay(inv.paymentHash, { notify: false });
  await waitFor(
    'the poller to credit the payment',
    async () => (await invoiceRow(inv.paymentHash)).state === 'paid',
    20_000,
    100,
  );
  t.equal((await paymentRow(inv.paymentHash)).status, 'succeeded');
  const event = await db('payment_webhook_events')
    .where({ provider: 'nwc', provider_event_id: inv.paymentHash })
    .first();
  t.equal(event.payload.source, 'lookup');
  await poller.lightning.stop();
});

t.test('a wallet that speaks only NIP-04: invoices, lookups and notifications still work', async (t) => {
  const old = await startWalletStandIn(t, relay.url, { encryptions: ['nip04'] });
  const client = createNwcWallet({ url: old.nwcUrl, timeoutMs: 1500, log });
  t.teardown(() => client.close());
  const heard: string[] = [];
  const stop = client.onPaymentReceived((tx) => heard.push(tx.paymentHash));
  t.teardown(stop);
  const made = await client.makeInvoice({ amountMsats: 21_000, description: 'nip04', expirySeconds: 60 });
  if (!made.ok) throw new Error(made.reason);
  t.equal(old.requests.at(-1)?.encryption, 'nip04');
  await old.pay(made.value.paymentHash);
  await waitFor('the payment_received notification', async () => heard.includes(made.value.paymentHash), 15_000);
  const looked = await client.lookupInvoice(made.value.paymentHash);
  t.match(looked, { ok: true, value: { state: 'settled', amountMsats: 21_000 } });
  t.match(await client.lookupInvoice('ab'.repeat(32)), { ok: false, kind: 'rejected', code: 'NOT_FOUND' });
});

t.test('on the embedded database (PGlite, one connection) too: made, paid, credited; made, expired', async (t) => {
  const embedded = (await createTestPglite(t)).knex;
  const embeddedPlans = createPlans(embedded);
  const nwc = createNwcWallet({ url: wallet.nwcUrl, timeoutMs: 1500, log });
  const ledger = createBillingLedger({ db: embedded, plans: embeddedPlans, invalidation });
  const ln = createLightning({ settings, wallet: nwc, db: embedded, ledger, plans: embeddedPlans, log, nowMs });
  t.teardown(() => ln.stop());
  offsetMs = 0;
  const pubkey = newKey().pk;
  const id = await embedded.transaction(async (trx) => (await upsertUserByPubkey(trx, pubkey)).user.id);
  const paid = await ln.createInvoice({ id, pubkey }, 'premium', 'monthly');
  const unpaid = await ln.createInvoice({ id, pubkey }, 'advanced', 'monthly');
  await wallet.pay(paid.paymentHash, { notify: false });
  t.equal(await ln.refresh(id), 'applied');
  embeddedPlans.invalidateUser(id);
  t.equal((await embeddedPlans.effectivePlan(id)).code, 'premium');
  offsetMs = 601_000;
  await ln.checkDue(new Date(nowMs()));
  t.equal((await embedded('lightning_invoices').where({ payment_hash: unpaid.paymentHash }).first()).state, 'expired');
  offsetMs = 31 * DAY;
  await ln.applyPeriods(new Date(nowMs()));
  embeddedPlans.invalidateUser(id);
  t.equal((await embeddedPlans.effectivePlan(id)).code, 'basic');
  offsetMs = 0;
});

t.test('nothing logged contains the connection secret', async (t) => {
  t.ok(lines.length > 0, `${lines.length} lines logged`);
  t.notOk(
    lines.some((l) => l.includes(secret)),
    'no log line holds the NWC secret',
  );
});
