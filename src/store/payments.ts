// Provider-linked subscriptions and payments: what payment webhooks change, and what GET /v1/subscription shows.
// (Plan changes without a provider are in subscriptions.ts.)
import type { Knex } from 'knex';

export type SubscriptionStatus = 'active' | 'past_due' | 'canceled' | 'unpaid' | 'incomplete' | 'trialing';
export type BillingCycle = 'monthly' | 'yearly' | 'lifetime';
export type PaymentStatus = 'pending' | 'processing' | 'succeeded' | 'failed' | 'canceled' | 'refunded';

export interface SubscriptionRecord {
  readonly id: string;
  readonly userId: string;
  readonly planId: string;
  readonly planCode: string;
  readonly status: SubscriptionStatus;
  readonly billingCycle: BillingCycle;
  readonly amount: string;
  readonly currency: string;
  readonly startedAt: Date;
  readonly currentPeriodStart: Date | null;
  readonly currentPeriodEnd: Date | null;
  readonly endsAt: Date | null;
  readonly canceledAt: Date | null;
  readonly paymentProvider: string;
  readonly paymentProviderId: string | null;
  /** The provider time of the state last applied (core/billing/ledger.ts): an older state is not applied. */
  readonly providerStateAt: Date | null;
  /** The subscription that took this one's place as the user's active one; the row then stays as it is. */
  readonly replacedBy: string | null;
}

interface SubscriptionRow {
  id: string;
  user_id: string;
  plan_id: string;
  plan_code: string;
  status: SubscriptionStatus;
  billing_cycle: BillingCycle;
  amount: string;
  currency: string;
  started_at: Date;
  current_period_start: Date | null;
  current_period_end: Date | null;
  ends_at: Date | null;
  canceled_at: Date | null;
  payment_provider: string;
  payment_provider_id: string | null;
  provider_state_at: Date | null;
  replaced_by: string | null;
}

const subscriptionColumns = [
  's.id',
  's.user_id',
  's.plan_id',
  'p.plan_code',
  's.status',
  's.billing_cycle',
  's.amount',
  's.currency',
  's.started_at',
  's.current_period_start',
  's.current_period_end',
  's.ends_at',
  's.canceled_at',
  's.payment_provider',
  's.payment_provider_id',
  's.provider_state_at',
  's.replaced_by',
];

function toSubscription(r: SubscriptionRow): SubscriptionRecord {
  return {
    id: r.id,
    userId: r.user_id,
    planId: r.plan_id,
    planCode: r.plan_code,
    status: r.status,
    billingCycle: r.billing_cycle,
    amount: String(r.amount),
    currency: r.currency,
    startedAt: r.started_at,
    currentPeriodStart: r.current_period_start,
    currentPeriodEnd: r.current_period_end,
    endsAt: r.ends_at,
    canceledAt: r.canceled_at,
    paymentProvider: r.payment_provider,
    paymentProviderId: r.payment_provider_id,
    providerStateAt: r.provider_state_at,
    replacedBy: r.replaced_by,
  };
}

const subscriptions = (db: Knex) => db('user_subscriptions as s').join('subscription_plans as p', 'p.id', 's.plan_id');

export async function findProviderSubscription(
  db: Knex,
  provider: string,
  providerId: string,
): Promise<SubscriptionRecord | undefined> {
  const row = (await subscriptions(db)
    .where({ 's.payment_provider': provider, 's.payment_provider_id': providerId })
    .orderBy('s.created_at', 'desc')
    .first(subscriptionColumns)) as SubscriptionRow | undefined;
  return row && toSubscription(row);
}

export async function getSubscription(db: Knex, id: string): Promise<SubscriptionRecord | undefined> {
  const row = (await subscriptions(db).where('s.id', id).first(subscriptionColumns)) as SubscriptionRow | undefined;
  return row && toSubscription(row);
}

/** The user's subscriptions, newest first (the active one, if any, among them). */
export async function listSubscriptions(db: Knex, userId: string, limit = 50): Promise<SubscriptionRecord[]> {
  const rows = (await subscriptions(db)
    .where('s.user_id', userId)
    .orderBy([
      { column: 's.created_at', order: 'desc' },
      { column: 's.id', order: 'desc' },
    ])
    .limit(limit)
    .select(subscriptionColumns)) as SubscriptionRow[];
  return rows.map(toSubscription);
}

export interface SubscriptionChange {
  readonly planId?: string | undefined;
  readonly status?: SubscriptionStatus | undefined;
  readonly billingCycle?: BillingCycle | undefined;
  readonly amount?: string | undefined;
  readonly currency?: string | undefined;
  readonly currentPeriodStart?: Date | undefined;
  readonly currentPeriodEnd?: Date | null | undefined;
  readonly endsAt?: Date | null | undefined;
  readonly canceledAt?: Date | null | undefined;
  readonly providerStateAt?: Date | undefined;
  readonly replacedBy?: string | undefined;
}

/** A new active subscription linked to the provider's subscription id (the caller canceled any other active one). */
export async function insertProviderSubscription(
  trx: Knex.Transaction,
  s: {
    userId: string;
    provider: string;
    providerId: string;
    planId: string;
    billingCycle: BillingCycle;
    amount: string;
    currency: string;
    currentPeriodStart: Date;
    currentPeriodEnd: Date | null;
  },
): Promise<string> {
  return insertSubscriptionState(trx, { ...s, status: 'active', endsAt: null, canceledAt: null });
}

/** A provider's subscription in any status (core/billing/ledger.ts; an active one only once no other is active). */
export async function insertSubscriptionState(
  trx: Knex.Transaction,
  s: {
    userId: string;
    provider: string;
    providerId: string;
    planId: string;
    status: SubscriptionStatus;
    billingCycle: BillingCycle;
    amount: string;
    currency: string;
    currentPeriodStart: Date;
    currentPeriodEnd: Date | null;
    endsAt: Date | null;
    canceledAt: Date | null;
    providerStateAt?: Date;
  },
): Promise<string> {
  const rows = (await trx('user_subscriptions')
    .insert({
      user_id: s.userId,
      plan_id: s.planId,
      status: s.status,
      billing_cycle: s.billingCycle,
      amount: s.amount,
      currency: s.currency,
      started_at: s.currentPeriodStart,
      current_period_start: s.currentPeriodStart,
      current_period_end: s.currentPeriodEnd,
      ends_at: s.endsAt,
      canceled_at: s.canceledAt,
      payment_provider: s.provider,
      payment_provider_id: s.providerId,
      provider_state_at: s.providerStateAt ?? null,
    })
    .returning('id')) as { id: string }[];
  return (rows[0] as { id: string }).id;
}

export async function updateSubscription(trx: Knex.Transaction, id: string, c: SubscriptionChange): Promise<void> {
  const values: Record<string, unknown> = { updated_at: trx.fn.now() };
  if (c.planId !== undefined) values.plan_id = c.planId;
  if (c.status !== undefined) values.status = c.status;
  if (c.billingCycle !== undefined) values.billing_cycle = c.billingCycle;
  if (c.amount !== undefined) values.amount = c.amount;
  if (c.currency !== undefined) values.currency = c.currency;
  if (c.currentPeriodStart !== undefined) values.current_period_start = c.currentPeriodStart;
  if (c.currentPeriodEnd !== undefined) values.current_period_end = c.currentPeriodEnd;
  if (c.endsAt !== undefined) values.ends_at = c.endsAt;
  if (c.canceledAt !== undefined) values.canceled_at = c.canceledAt;
  if (c.providerStateAt !== undefined) values.provider_state_at = c.providerStateAt;
  if (c.replacedBy !== undefined) values.replaced_by = c.replacedBy;
  await trx('user_subscriptions').where({ id }).update(values);
}

export interface PaymentRecord {
  readonly id: string;
  readonly userId: string;
  readonly subscriptionId: string | null;
  readonly amount: string;
  readonly currency: string;
  readonly status: PaymentStatus;
  readonly paymentProvider: string;
  readonly providerPaymentId: string | null;
  readonly paymentMethod: string | null;
  readonly lastFourDigits: string | null;
  readonly createdAt: Date;
  readonly processedAt: Date | null;
  readonly failedAt: Date | null;
  readonly failureReason: string | null;
  readonly invoiceUrl: string | null;
  readonly receiptUrl: string | null;
}

interface PaymentRow {
  id: string;
  user_id: string;
  subscription_id: string | null;
  amount: string;
  currency: string;
  status: PaymentStatus;
  payment_provider: string;
  provider_payment_id: string | null;
  payment_method: string | null;
  last_four_digits: string | null;
  created_at: Date;
  processed_at: Date | null;
  failed_at: Date | null;
  failure_reason: string | null;
  invoice_url: string | null;
  receipt_url: string | null;
}

const paymentColumns = [
  'id',
  'user_id',
  'subscription_id',
  'amount',
  'currency',
  'status',
  'payment_provider',
  'provider_payment_id',
  'payment_method',
  'last_four_digits',
  'created_at',
  'processed_at',
  'failed_at',
  'failure_reason',
  'invoice_url',
  'receipt_url',
];

function toPayment(r: PaymentRow): PaymentRecord {
  return {
    id: r.id,
    userId: r.user_id,
    subscriptionId: r.subscription_id,
    amount: String(r.amount),
    currency: r.currency,
    status: r.status,
    paymentProvider: r.payment_provider,
    providerPaymentId: r.provider_payment_id,
    paymentMethod: r.payment_method,
    lastFourDigits: r.last_four_digits,
    createdAt: r.created_at,
    processedAt: r.processed_at,
    failedAt: r.failed_at,
    failureReason: r.failure_reason,
    invoiceUrl: r.invoice_url,
    receiptUrl: r.receipt_url,
  };
}

export async function findPayment(db: Knex, providerPaymentId: string): Promise<PaymentRecord | undefined> {
  const row = (await db('payments').where({ provider_payment_id: providerPaymentId }).first(paymentColumns)) as
    PaymentRow | undefined;
  return row && toPayment(row);
}

export interface PaymentWrite {
  readonly userId: string;
  readonly providerPaymentId: string;
  readonly status: PaymentStatus;
  readonly provider: string;
  readonly subscriptionId?: string | null | undefined;
  readonly amount?: string | undefined;
  readonly currency?: string | undefined;
  readonly providerCustomerId?: string | undefined;
  readonly paymentMethod?: string | undefined;
  readonly lastFourDigits?: string | undefined;
  readonly processedAt?: Date | undefined;
  readonly failedAt?: Date | undefined;
  readonly failureReason?: string | undefined;
  readonly providerFee?: string | undefined;
  readonly netAmount?: string | undefined;
  readonly invoiceUrl?: string | undefined;
  readonly receiptUrl?: string | undefined;
}

/** Inserts the payment, or updates the row with the same provider payment id (only the fields given). */
export async function upsertPayment(trx: Knex.Transaction, p: PaymentWrite): Promise<PaymentRecord> {
  const given: Record<string, unknown> = {
    status: p.status,
    subscription_id: p.subscriptionId,
    amount: p.amount,
    currency: p.currency,
    provider_customer_id: p.providerCustomerId,
    payment_method: p.paymentMethod,
    last_four_digits: p.lastFourDigits,
    processed_at: p.processedAt,
    failed_at: p.failedAt,
    failure_reason: p.failureReason,
    provider_fee: p.providerFee,
    net_amount: p.netAmount,
    invoice_url: p.invoiceUrl,
    receipt_url: p.receiptUrl,
  };
  const values = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  const rows = (await trx('payments')
    .insert({
      amount: '0',
      ...values,
      user_id: p.userId,
      payment_provider: p.provider,
      provider_payment_id: p.providerPaymentId,
    })
    .onConflict('provider_payment_id')
    .merge(values)
    .returning(paymentColumns)) as PaymentRow[];
  return toPayment(rows[0] as PaymentRow);
}

/**
 * Archives the payments made over `years` years ago (the founding schema's retention policy): they stay, as
 * accounting law requires, but leave the user's history. Returns how many were archived now.
 */
export async function archivePaymentsOlderThan(db: Knex, years: number): Promise<number> {
  const rows = (await db('payments')
    .where({ archived: false })
    .where('created_at', '<', db.raw('now() - make_interval(years => ?)', [years]))
    .update({ archived: true })
    .returning('id')) as { id: string }[];
  return rows.length;
}

/** The user's payments, newest first, without archived ones. */
export async function listPayments(db: Knex, userId: string, limit = 100): Promise<PaymentRecord[]> {
  const rows = (await db('payments')
    .where({ user_id: userId, archived: false })
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(limit)
    .select(paymentColumns)) as PaymentRow[];
  return rows.map(toPayment);
}
