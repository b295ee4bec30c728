// What Lightning invoices become in the ledger: a payment credited (with the period it bought), an invoice expired
// unpaid, and the subscription the paid periods give at a moment (lightning-periods.ts). Every change goes through the
// ledger, in its transaction and under the user's lock, so two payments of one user are placed one after the other.
// A payment is credited once across processes: its payment hash is recorded as a provider event in the same
// transaction (a second delivery is a duplicate), and the invoice moves pending|expired → paid by a conditional update.
import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import {
  activeSubscriptionKey,
  findInvoice,
  livePaidInvoices,
  markExpired,
  markPaid,
  usersWithPeriodChanges,
  type LightningInvoice,
} from '../../store/lightning-invoices.js';
import { findProviderSubscription } from '../../store/payments.js';
import type { Metrics } from '../ops/index.js';
import type { BillingCycle, BillingFacts, PaymentFact, PaymentStatus } from './facts.js';
import type { BillingLedger } from './ledger.js';
import { lateLookup, placePeriod, stateAt, type PaidPeriod } from './lightning-periods.js';
import type { WalletInvoice } from './nwc-wallet.js';

/** The provider code of Lightning rows (user_subscriptions, payments, payment_webhook_events). */
export const LIGHTNING_PROVIDER = 'nwc';
export type Cycle = Exclude<BillingCycle, 'lifetime'>;
/** The most users one run of applyPeriods looks at. */
const BATCH = 50;

/** What one settlement did: credited now, already credited, not ours, or refused (paid less than asked). */
export type Settlement = 'credited' | 'duplicate' | 'unknown' | 'refused';

export interface CreditDeps {
  readonly db: Knex;
  readonly ledger: BillingLedger;
  readonly log: Logger;
  readonly metrics?: Pick<Metrics, 'lightningInvoices'> | undefined;
  readonly nowMs: () => number;
  /** Told when an invoice stops being pending (paid or expired) in this process. */
  readonly onSettled: (paymentHash: string) => void;
}

export interface Credit {
  settle(inv: LightningInvoice, tx: WalletInvoice, source: 'notification' | 'lookup'): Promise<Settlement>;
  expire(inv: LightningInvoice, now: number): Promise<void>;
  applyPeriods(asOf: Date): Promise<number>;
}

/** The payment fact of an invoice: provider nwc, method lightning, the amount in sats (currency SAT). */
export function lightningPayment(
  i: LightningInvoice,
  status: PaymentStatus,
  extra: Partial<PaymentFact> = {},
): PaymentFact {
  const p = {
    provider: LIGHTNING_PROVIDER,
    providerPaymentId: i.paymentHash,
    userId: i.userId,
    amount: String(i.amountSats),
  };
  return { ...p, currency: 'SAT', status, paymentMethod: 'lightning', ...extra };
}

const periodOf = (i: LightningInvoice): PaidPeriod => ({
  paymentHash: i.paymentHash,
  subscriptionKey: i.subscriptionKey ?? i.paymentHash,
  planCode: i.planCode,
  billingCycle: i.billingCycle as Cycle,
  amountSats: i.amountSats,
  start: i.periodStart ?? i.createdAt,
  end: i.periodEnd ?? i.createdAt,
});

export function createCredit(deps: CreditDeps): Credit {
  const log = deps.log.child({ mod: 'lightning' });

  /** The subscription facts the user's paid periods give at `now` (in the ledger's transaction, under the user's lock). */
  async function periodFacts(trx: Knex.Transaction, userId: string, now: Date): Promise<BillingFacts> {
    const activeKey = await activeSubscriptionKey(trx, userId, LIGHTNING_PROVIDER);
    const periods = (await livePaidInvoices(trx, userId, LIGHTNING_PROVIDER, now, activeKey)).map(periodOf);
    const { current, ended } = stateAt(now, periods, activeKey);
    const ends = ended ? [{ provider: LIGHTNING_PROVIDER, providerSubscriptionId: ended.key, at: ended.at }] : [];
    if (!current) return { ends };
    // Facts derived under the lock are the newest there are: never older than the state already applied.
    const known = await findProviderSubscription(trx, LIGHTNING_PROVIDER, current.key);
    const applied = known?.providerStateAt;
    const observedAt = applied && applied >= now ? new Date(applied.getTime() + 1) : now;
    const { key, planCode, billingCycle, amountSats, start, end } = current;
    const state = {
      status: 'active' as const,
      amount: String(amountSats),
      currency: 'SAT',
      periodStart: start,
      periodEnd: end,
    };
    const fact = {
      provider: LIGHTNING_PROVIDER,
      providerSubscriptionId: key,
      userId,
      planCode,
      billingCycle,
      ...state,
    };
    return { ends, subscription: { ...fact, endsAt: end, canceledAt: null, observedAt } };
  }

  async function settle(
    inv: LightningInvoice,
    tx: WalletInvoice,
    source: 'notification' | 'lookup',
  ): Promise<Settlement> {
    if (tx.amountMsats < inv.amountSats * 1000) {
      const paid = { paymentHash: inv.paymentHash, paidMsats: tx.amountMsats, askedSats: inv.amountSats };
      log.error(paid, 'the wallet reports less paid than the invoice asked; not credited');
      return 'refused';
    }
    const settledAt = tx.settledAt ? new Date(tx.settledAt * 1000) : new Date(deps.nowMs());
    let late = false;
    let placed: PaidPeriod | undefined;
    const credit = async (trx: Knex.Transaction): Promise<BillingFacts> => {
      const now = new Date(deps.nowMs());
      const activeKey = await activeSubscriptionKey(trx, inv.userId, LIGHTNING_PROVIDER);
      const live = (await livePaidInvoices(trx, inv.userId, LIGHTNING_PROVIDER, now, activeKey)).map(periodOf);
      const place = placePeriod(now, live, {
        paymentHash: inv.paymentHash,
        planCode: inv.planCode,
        billingCycle: inv.billingCycle as Cycle,
      });
      const before = await findInvoice(trx, inv.paymentHash);
      const period = {
        settledAt,
        periodStart: place.start,
        periodEnd: place.end,
        subscriptionKey: place.subscriptionKey,
      };
      if (!(await markPaid(trx, inv.paymentHash, period))) return {};
      late = before?.state === 'expired';
      placed = { ...periodOf(inv), subscriptionKey: place.subscriptionKey, start: place.start, end: place.end };
      const paid = lightningPayment(inv, 'succeeded', {
        providerSubscriptionId: place.subscriptionKey,
        processedAt: settledAt,
      });
      // The period just marked paid is among the user's paid periods now.
      return { ...(await periodFacts(trx, inv.userId, now)), payments: [paid] };
    };
    const payload = {
      payment_hash: inv.paymentHash,
      amount_msats: tx.amountMsats,
      settled_at: tx.settledAt ?? null,
      source,
    };
    const event = { provider: LIGHTNING_PROVIDER, eventId: inv.paymentHash, type: 'payment_received', payload };
    const outcome = await deps.ledger.record(inv.userId, credit, { actor: LIGHTNING_PROVIDER, takeSlot: true, event });
    if (outcome.duplicate || !placed) return 'duplicate';
    deps.metrics?.lightningInvoices.inc({ outcome: late ? 'paid_late' : 'paid' });
    const what = { userId: inv.userId, paymentHash: inv.paymentHash, plan: inv.planCode, source, late };
    log.info(
      { ...what, periodStart: placed.start, periodEnd: placed.end, applied: outcome.applied },
      'Lightning payment credited',
    );
    deps.onSettled(inv.paymentHash);
    return 'credited';
  }

  async function expire(inv: LightningInvoice, now: number): Promise<void> {
    const canceled = lightningPayment(inv, 'canceled', {
      failedAt: new Date(now),
      failureReason: 'the invoice expired unpaid',
    });
    const outcome = await deps.ledger.record(
      inv.userId,
      async (trx) =>
        (await markExpired(trx, inv.paymentHash, lateLookup(inv.expiresAt, now))) ? { payments: [canceled] } : {},
      { actor: LIGHTNING_PROVIDER },
    );
    if (outcome.applied.length === 0) return;
    deps.metrics?.lightningInvoices.inc({ outcome: 'expired' });
    log.info({ userId: inv.userId, paymentHash: inv.paymentHash }, 'Lightning invoice expired unpaid');
    deps.onSettled(inv.paymentHash);
  }

  /** Starts the periods due and ends the ones over at `asOf`: nobody is told, so each process looks. */
  async function applyPeriods(asOf: Date): Promise<number> {
    const users = await usersWithPeriodChanges(deps.db, LIGHTNING_PROVIDER, asOf, BATCH);
    for (const userId of users) {
      try {
        const facts = (trx: Knex.Transaction) => periodFacts(trx, userId, asOf);
        const outcome = await deps.ledger.record(userId, facts, { actor: LIGHTNING_PROVIDER, takeSlot: true });
        log.info({ userId, applied: outcome.applied }, 'Lightning periods applied');
      } catch (err) {
        log.error({ err, userId }, 'Lightning periods could not be applied');
      }
    }
    return users.length;
  }

  return { settle, expire, applyPeriods };
}
