// lightning_invoices (migration 0021): the invoices made through the operator's Lightning wallet, what each one buys,
// when to ask the wallet about it again, and, once paid, the period it bought (core/billing/lightning.ts).
import type { Knex } from 'knex';
import type { BillingCycle } from './payments.js';

type InvoiceState = 'pending' | 'paid' | 'expired';

/** What an invoice is made with. */
export interface NewInvoice {
  readonly paymentHash: string;
  readonly userId: string;
  readonly planCode: string;
  readonly billingCycle: BillingCycle;
  readonly amountSats: number;
  readonly bolt11: string;
  readonly expiresAt: Date;
  readonly nextCheckAt: Date;
}

export interface LightningInvoice extends Omit<NewInvoice, 'nextCheckAt'> {
  readonly createdAt: Date;
  readonly state: InvoiceState;
  readonly nextCheckAt: Date | null;
  readonly checks: number;
  readonly settledAt: Date | null;
  readonly periodStart: Date | null;
  readonly periodEnd: Date | null;
  readonly subscriptionKey: string | null;
}

interface Row {
  payment_hash: string;
  user_id: string;
  plan_code: string;
  billing_cycle: BillingCycle;
  amount_sats: string | number;
  bolt11: string;
  created_at: Date;
  expires_at: Date;
  state: InvoiceState;
  next_check_at: Date | null;
  checks: number;
  settled_at: Date | null;
  period_start: Date | null;
  period_end: Date | null;
  subscription_key: string | null;
}

const toInvoice = (r: Row): LightningInvoice => ({
  paymentHash: r.payment_hash,
  userId: r.user_id,
  planCode: r.plan_code,
  billingCycle: r.billing_cycle,
  amountSats: Number(r.amount_sats),
  bolt11: r.bolt11,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  state: r.state,
  nextCheckAt: r.next_check_at,
  checks: r.checks,
  settledAt: r.settled_at,
  periodStart: r.period_start,
  periodEnd: r.period_end,
  subscriptionKey: r.subscription_key,
});

export async function insertInvoice(trx: Knex.Transaction, i: NewInvoice): Promise<void> {
  await trx('lightning_invoices').insert({
    payment_hash: i.paymentHash,
    user_id: i.userId,
    plan_code: i.planCode,
    billing_cycle: i.billingCycle,
    amount_sats: i.amountSats,
    bolt11: i.bolt11,
    expires_at: i.expiresAt,
    next_check_at: i.nextCheckAt,
  });
}

export async function findInvoice(db: Knex, paymentHash: string): Promise<LightningInvoice | undefined> {
  const row = (await db('lightning_invoices').where({ payment_hash: paymentHash }).first()) as Row | undefined;
  return row && toInvoice(row);
}

/**
 * Invoices due for a lookup at `asOf`, claimed until `leaseUntil` (their next check moves there), so processes
 * polling together ask the wallet about each one once.
 */
export async function claimDueInvoices(
  db: Knex,
  asOf: Date,
  leaseUntil: Date,
  limit: number,
): Promise<LightningInvoice[]> {
  const due = db('lightning_invoices')
    .whereNotNull('next_check_at')
    .where('next_check_at', '<=', asOf)
    .orderBy('next_check_at')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .select('payment_hash');
  const rows = (await db('lightning_invoices')
    .whereIn('payment_hash', due)
    .update({ next_check_at: leaseUntil })
    .returning('*')) as Row[];
  return rows.map(toInvoice);
}

/** The user's invoices that are still worth asking about (refresh). */
export async function checkableInvoicesOfUser(db: Knex, userId: string): Promise<LightningInvoice[]> {
  const rows = (await db('lightning_invoices')
    .where({ user_id: userId })
    .whereNotNull('next_check_at')
    .orderBy('created_at')) as Row[];
  return rows.map(toInvoice);
}

/** The next lookup of an invoice (null: none), counting the one just made. */
export async function scheduleCheck(db: Knex, paymentHash: string, next: Date | null): Promise<void> {
  await db('lightning_invoices')
    .where({ payment_hash: paymentHash })
    .update({ next_check_at: next, checks: db.raw('checks + 1') });
}

/** pending|expired → paid with its period; false when it was paid already (another process credited it). */
export async function markPaid(
  trx: Knex.Transaction,
  paymentHash: string,
  p: { settledAt: Date; periodStart: Date; periodEnd: Date; subscriptionKey: string },
): Promise<boolean> {
  const n = await trx('lightning_invoices')
    .where({ payment_hash: paymentHash })
    .whereIn('state', ['pending', 'expired'])
    .update({
      state: 'paid',
      settled_at: p.settledAt,
      period_start: p.periodStart,
      period_end: p.periodEnd,
      subscription_key: p.subscriptionKey,
      next_check_at: null,
    });
  return n > 0;
}

/** pending → expired, with the late checks still to make (null: none); false when it is no longer pending. */
export async function markExpired(trx: Knex.Transaction, paymentHash: string, next: Date | null): Promise<boolean> {
  const n = await trx('lightning_invoices')
    .where({ payment_hash: paymentHash, state: 'pending' })
    .update({ state: 'expired', next_check_at: next });
  return n > 0;
}

/**
 * The user's paid periods that still matter at `at`: those not over yet, unless their subscription was ended or
 * replaced (canceled), plus every period of the subscription `key` (the active one, to see where it ends).
 */
export async function livePaidInvoices(
  trx: Knex,
  userId: string,
  provider: string,
  at: Date,
  key: string | undefined,
): Promise<LightningInvoice[]> {
  const rows = (await trx('lightning_invoices as li')
    .where({ 'li.user_id': userId, 'li.state': 'paid' })
    .where((q) => {
      void q
        .where('li.period_end', '>', at)
        .whereNotExists(
          trx('user_subscriptions as s')
            .where({ 's.payment_provider': provider, 's.status': 'canceled' })
            .whereRaw('s.payment_provider_id = li.subscription_key')
            .select(trx.raw('1')),
        );
      if (key) void q.orWhere('li.subscription_key', key);
    })
    .orderBy('li.period_start')
    .select('li.*')) as Row[];
  return rows.map(toInvoice);
}

/**
 * Users whose Lightning subscription needs a look at `at`: an active one whose period is over, or a paid period that
 * has begun and has no subscription row yet (one bought ahead, for another plan).
 */
export async function usersWithPeriodChanges(db: Knex, provider: string, at: Date, limit: number): Promise<string[]> {
  const ended = (await db('user_subscriptions')
    .where({ payment_provider: provider, status: 'active' })
    .where('current_period_end', '<=', at)
    .limit(limit)
    .select('user_id')) as { user_id: string }[];
  const starting = (await db('lightning_invoices as li')
    .where('li.state', 'paid')
    .where('li.period_start', '<=', at)
    .where('li.period_end', '>', at)
    .whereNotExists(
      db('user_subscriptions as s')
        .where('s.payment_provider', provider)
        .whereRaw('s.payment_provider_id = li.subscription_key')
        .select(db.raw('1')),
    )
    .limit(limit)
    .select('li.user_id')) as { user_id: string }[];
  return [...new Set([...ended, ...starting].map((r) => r.user_id))];
}

/** The provider's id (payment_provider_id) of the user's active subscription when it is that provider's. */
export async function activeSubscriptionKey(trx: Knex, userId: string, provider: string): Promise<string | undefined> {
  const row = (await trx('user_subscriptions')
    .where({ user_id: userId, status: 'active', payment_provider: provider })
    .first('payment_provider_id')) as { payment_provider_id: string | null } | undefined;
  return row?.payment_provider_id ?? undefined;
}
