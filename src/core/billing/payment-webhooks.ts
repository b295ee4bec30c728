// Payment-provider webhooks, once their signature is checked (core/billing/webhook-signature.ts). Each is applied at
// most once (payment_webhook_events, by the provider's event id), in one transaction with its changes and their
// audit_log rows; after the commit the user's cached plan is dropped in every process, so the new plan's limits
// apply to their next event (today's count stays: the quota ledger is not touched).
//
// Event types and what they change:
//   subscription.created / subscription.renewed  → that subscription active (any other active one canceled first),
//                                                   with its plan, period and amount;
//   subscription.canceled                        → canceled (ends_at = data.ends_at or now): back to basic;
//   subscription.past_due                        → past_due: the plan's limits stop until it is renewed;
//   payment.succeeded / .failed / .refunded      → the payment row (by provider payment id), with its status.
// A canceled subscription stays canceled: providers retry deliveries, so a renewal, a past-due notice or even the
// creation of a subscription may arrive after its cancellation; they are acknowledged and ignored. A cancellation
// of a subscription not yet known is kept in payment_webhook_events and stops its late creation the same way. A
// renewal whose current_period_end is before the stored one (an earlier period's, delivered late) is ignored too.
import type { Knex } from 'knex';
import { writeAudit } from '../../store/audit.js';
import {
  findPayment,
  findProviderSubscription,
  getSubscription,
  listPayments,
  listSubscriptions,
  insertProviderSubscription,
  updateSubscription,
  upsertPayment,
  type BillingCycle,
  type PaymentRecord,
  type SubscriptionRecord,
} from '../../store/payments.js';
import { activeSubscription, cancelActiveSubscription, lockUser } from '../../store/subscriptions.js';
import { upsertUserByPubkey } from '../../store/users.js';
import { canceledByWebhook, recordWebhookEvent } from '../../store/webhooks.js';
import type { CacheInvalidation } from '../accounts/index.js';
import type { Plans } from '../quota/index.js';

export const webhookTypes = [
  'subscription.created',
  'subscription.renewed',
  'subscription.canceled',
  'subscription.past_due',
  'payment.succeeded',
  'payment.failed',
  'payment.refunded',
] as const;
type WebhookType = (typeof webhookTypes)[number];

export interface WebhookPayload {
  readonly id: string;
  readonly type: WebhookType;
  readonly provider?: string | undefined;
  readonly data: {
    readonly pubkey: string;
    readonly subscription_id?: string | undefined;
    readonly plan?: string | undefined;
    readonly billing_cycle?: BillingCycle | undefined;
    readonly amount?: string | undefined;
    readonly currency?: string | undefined;
    readonly current_period_start?: string | undefined;
    readonly current_period_end?: string | undefined;
    readonly ends_at?: string | undefined;
    readonly payment_id?: string | undefined;
    readonly customer_id?: string | undefined;
    readonly payment_method?: string | undefined;
    readonly last_four?: string | undefined;
    readonly failure_reason?: string | undefined;
    readonly fee?: string | undefined;
    readonly net_amount?: string | undefined;
    readonly invoice_url?: string | undefined;
    readonly receipt_url?: string | undefined;
  };
}

export type { PaymentRecord, SubscriptionRecord };

type WebhookOutcome =
  | { readonly ok: true; readonly duplicate: boolean; readonly applied: string }
  /** The payload cannot be applied (unknown plan, bad period …): nothing changed, and the provider may retry. */
  | { readonly ok: false; readonly field: string; readonly message: string };

class PayloadError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export interface PaymentsDeps {
  readonly db: Knex;
  readonly plans: Plans;
  readonly invalidation: CacheInvalidation;
  readonly now: () => number;
}

interface Billing {
  readonly active: SubscriptionRecord | undefined;
  readonly subscriptions: SubscriptionRecord[];
  readonly payments: PaymentRecord[];
}

export interface Payments {
  apply(payload: WebhookPayload): Promise<WebhookOutcome>;
  /** The user's subscriptions (newest first, the active one apart) and payments. */
  billing(userId: string): Promise<Billing>;
}

function date(value: string | undefined, field: string): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new PayloadError(field, `data.${field} is not a date-time`);
  return d;
}

function need<T>(value: T | undefined, field: string, type: string): T {
  if (value === undefined) throw new PayloadError(field, `data.${field} is required for ${type}`);
  return value;
}

export function createPayments(deps: PaymentsDeps): Payments {
  const { db } = deps;
  const nowDate = () => new Date(deps.now() * 1000);

  /** Makes the provider's subscription the user's one active subscription. */
  async function activate(
    trx: Knex.Transaction,
    userId: string,
    p: WebhookPayload,
    provider: string,
    actor: string,
  ): Promise<string> {
    const d = p.data;
    const providerId = need(d.subscription_id, 'subscription_id', p.type);
    const existing = await findProviderSubscription(trx, provider, providerId);
    if (existing && existing.userId !== userId)
      throw new PayloadError('subscription_id', `subscription ${providerId} belongs to another user`);
    if (existing?.status === 'canceled' || (!existing && (await canceledByWebhook(trx, provider, providerId))))
      return 'ignored_canceled_subscription';
    const planCode = d.plan ?? existing?.planCode;
    if (!planCode) throw new PayloadError('plan', `data.plan is required for ${p.type} of an unknown subscription`);
    const plan = (await deps.plans.all()).find((x) => x.code === planCode);
    if (!plan) throw new PayloadError('plan', `there is no plan "${planCode}"`);
    const cycle = d.billing_cycle ?? existing?.billingCycle ?? 'monthly';
    const start = date(d.current_period_start, 'current_period_start') ?? nowDate();
    const end =
      date(d.current_period_end, 'current_period_end') ?? (cycle === 'lifetime' ? null : addPeriod(start, cycle));
    if (end && end <= start)
      throw new PayloadError('current_period_end', 'data.current_period_end must be after current_period_start');
    // A retried renewal of an earlier period, arriving after the later one: it would shorten the period.
    const storedEnd = existing?.currentPeriodEnd;
    if (p.type === 'subscription.renewed' && storedEnd && d.current_period_end !== undefined && end && end < storedEnd)
      return 'ignored_stale_renewal';
    const amount = d.amount ?? (cycle === 'yearly' ? (plan.priceYearly ?? plan.priceMonthly) : plan.priceMonthly);
    const change = {
      planId: plan.id,
      status: 'active' as const,
      billingCycle: cycle,
      amount,
      currency: d.currency ?? plan.currency,
      currentPeriodStart: start,
      currentPeriodEnd: end,
      endsAt: null,
      canceledAt: null,
    };

    const current = await activeOf(trx, userId);
    if (current && current.id !== existing?.id) {
      await cancelActiveSubscription(trx, userId);
      await audit(
        trx,
        userId,
        current,
        { status: 'canceled', reason: `replaced by ${provider} subscription ${providerId}` },
        actor,
      );
    }
    if (existing) {
      await updateSubscription(trx, existing.id, change);
      await audit(
        trx,
        userId,
        existing,
        { plan: plan.code, status: 'active', current_period_end: end?.toISOString() ?? null },
        actor,
      );
    } else {
      const id = await insertProviderSubscription(trx, { userId, provider, providerId, ...change });
      await writeAudit(trx, {
        table: 'user_subscriptions',
        operation: 'INSERT',
        userId,
        newValues: { id, plan: plan.code, status: 'active', provider, provider_subscription_id: providerId },
        actor,
      });
    }
    return p.type === 'subscription.created' ? 'subscription_activated' : 'subscription_renewed';
  }

  async function activeOf(trx: Knex.Transaction, userId: string): Promise<SubscriptionRecord | undefined> {
    const active = await activeSubscription(trx, userId);
    return active && getSubscription(trx, active.id);
  }

  async function audit(
    trx: Knex.Transaction,
    userId: string,
    before: SubscriptionRecord,
    after: Record<string, unknown>,
    actor: string,
  ) {
    await writeAudit(trx, {
      table: 'user_subscriptions',
      operation: 'UPDATE',
      userId,
      oldValues: {
        id: before.id,
        plan: before.planCode,
        status: before.status,
        current_period_end: before.currentPeriodEnd?.toISOString() ?? null,
      },
      newValues: { id: before.id, ...after },
      actor,
    });
  }

  async function endSubscription(
    trx: Knex.Transaction,
    userId: string,
    p: WebhookPayload,
    provider: string,
    actor: string,
  ): Promise<string> {
    const providerId = need(p.data.subscription_id, 'subscription_id', p.type);
    const existing = await findProviderSubscription(trx, provider, providerId);
    if (!existing || existing.userId !== userId) return 'ignored_unknown_subscription';
    if (existing.status === 'canceled') return 'ignored_canceled_subscription';
    if (p.type === 'subscription.canceled') {
      const endsAt = date(p.data.ends_at, 'ends_at') ?? nowDate();
      await updateSubscription(trx, existing.id, { status: 'canceled', canceledAt: nowDate(), endsAt });
      await audit(trx, userId, existing, { status: 'canceled', ends_at: endsAt.toISOString() }, actor);
      return 'subscription_canceled';
    }
    await updateSubscription(trx, existing.id, { status: 'past_due' });
    await audit(trx, userId, existing, { status: 'past_due' }, actor);
    return 'subscription_past_due';
  }

  async function recordPayment(
    trx: Knex.Transaction,
    userId: string,
    p: WebhookPayload,
    provider: string,
  ): Promise<string> {
    const d = p.data;
    const paymentId = need(d.payment_id, 'payment_id', p.type);
    const known = await findPayment(trx, paymentId);
    if (known && known.userId !== userId)
      throw new PayloadError('payment_id', `payment ${paymentId} belongs to another user`);
    if (!known) need(d.amount, 'amount', p.type);
    const subscription = d.subscription_id
      ? await findProviderSubscription(trx, provider, d.subscription_id)
      : undefined;
    const now = nowDate();
    const status = p.type === 'payment.succeeded' ? 'succeeded' : p.type === 'payment.failed' ? 'failed' : 'refunded';
    await upsertPayment(trx, {
      userId,
      providerPaymentId: paymentId,
      provider,
      status,
      subscriptionId: subscription && subscription.userId === userId ? subscription.id : undefined,
      amount: d.amount,
      currency: d.currency,
      providerCustomerId: d.customer_id,
      paymentMethod: d.payment_method,
      lastFourDigits: d.last_four,
      processedAt: status === 'succeeded' ? now : undefined,
      failedAt: status === 'failed' ? now : undefined,
      failureReason: d.failure_reason,
      providerFee: d.fee,
      netAmount: d.net_amount,
      invoiceUrl: d.invoice_url,
      receiptUrl: d.receipt_url,
    });
    return `payment_${status}`;
  }

  return {
    async billing(userId) {
      const [subscriptions, payments] = await Promise.all([listSubscriptions(db, userId), listPayments(db, userId)]);
      return { active: subscriptions.find((s) => s.status === 'active'), subscriptions, payments };
    },
    async apply(p) {
      const provider = p.provider ?? 'extensionpay';
      const actor = `webhook:${provider}`;
      let userId = '';
      try {
        const result = await db.transaction(async (trx) => {
          if (!(await recordWebhookEvent(trx, { provider, eventId: p.id, type: p.type, payload: p })))
            return { duplicate: true, applied: 'none' };
          const { user } = await upsertUserByPubkey(trx, p.data.pubkey);
          userId = user.id;
          await lockUser(trx, user.id);
          switch (p.type) {
            case 'subscription.created':
            case 'subscription.renewed':
              return { duplicate: false, applied: await activate(trx, user.id, p, provider, actor) };
            case 'subscription.canceled':
            case 'subscription.past_due':
              return { duplicate: false, applied: await endSubscription(trx, user.id, p, provider, actor) };
            case 'payment.succeeded':
            case 'payment.failed':
            case 'payment.refunded':
              return { duplicate: false, applied: await recordPayment(trx, user.id, p, provider) };
          }
        });
        if (!result.duplicate && p.type.startsWith('subscription.')) deps.invalidation.user(userId);
        return { ok: true, ...result };
      } catch (err) {
        if (err instanceof PayloadError) return { ok: false, field: `data.${err.field}`, message: err.message };
        throw err;
      }
    },
  };
}

function addPeriod(start: Date, cycle: 'monthly' | 'yearly'): Date {
  const d = new Date(start);
  if (cycle === 'yearly') d.setUTCFullYear(d.getUTCFullYear() + 1);
  else d.setUTCMonth(d.getUTCMonth() + 1);
  return d;
}
