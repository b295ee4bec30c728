// The one place where what payment providers say (facts.ts) becomes user_subscriptions and payments rows. Every
// provider module hands its facts to `record`; Stripe webhooks, ExtensionPay syncs and a Lightning provider alike.
//
// One call is one transaction, holding the user's row lock (so one user's changes apply one at a time), with the
// provider event in the inbox (payment_webhook_events: a redelivered event changes nothing) and an audit_log row per
// change. After the commit, the user's cached plan is dropped in every process: the new limits apply at once.
//
// Order: a subscription fact observed before the state already applied is ignored (providers retry and reorder
// deliveries; an older state never overwrites a newer one). A payment's status only moves forward
// (paymentStatusRank): a late `failed` never undoes a success, a late success never undoes a refund.
//
// One active subscription per user (the founding schema): a subscription that turns active takes the place of
// another active one when it is new to us or the user asked for it (a checkout, a link); the one it replaced is
// canceled here with replaced_by set and stays so, whatever its provider says later. Otherwise (a renewal of one
// while another holds the place) the state is left as it was until the place is free.
import type { Knex } from 'knex';
import { writeAudit } from '../../store/audit.js';
import {
  findPayment,
  findProviderSubscription,
  getSubscription,
  insertSubscriptionState,
  updateSubscription,
  upsertPayment,
  type SubscriptionChange,
  type SubscriptionRecord,
} from '../../store/payments.js';
import { activeSubscription, lockUser } from '../../store/subscriptions.js';
import { recordWebhookEvent } from '../../store/webhooks.js';
import type { CacheInvalidation } from '../accounts/index.js';
import type { Plans } from '../quota/index.js';
import {
  paymentStatusRank,
  type BillingFacts,
  type PaymentFact,
  type SubscriptionEnd,
  type SubscriptionFact,
} from './facts.js';

export interface LedgerDeps {
  readonly db: Knex;
  readonly plans: Plans;
  readonly invalidation: CacheInvalidation;
}

/** A provider event, recorded in the inbox with the facts it gave: applied once per (provider, event id). */
interface InboxEvent {
  readonly provider: string;
  readonly eventId: string;
  readonly type: string;
  readonly payload: unknown;
}

interface RecordOptions {
  /** Who the audit rows name: the provider ('stripe', 'extensionpay') or 'user'. */
  readonly actor: string;
  readonly event?: InboxEvent | undefined;
  /** The user asked for this subscription (checkout, link): when active it takes the place of any other. */
  readonly takeSlot?: boolean | undefined;
  /** Runs in the transaction, after the user's lock and before the facts (linking the provider account); may throw. */
  readonly prepare?: ((trx: Knex.Transaction) => Promise<void>) | undefined;
}

export interface LedgerOutcome {
  readonly duplicate: boolean;
  /** What happened, one word per fact: subscription_active, ignored_stale_subscription, payment_succeeded … */
  readonly applied: readonly string[];
}

/** Facts that cannot be applied as they are (a plan that does not exist, an id that belongs to another user). */
export class LedgerError extends Error {
  override name = 'LedgerError';
  constructor(
    readonly code: 'unknown_plan' | 'unknown_user' | 'other_user',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Facts that depend on what is stored (a Lightning period that follows the current one): computed in the ledger's
 * transaction, under the user's lock, so two of them for one user are computed one after the other.
 */
type DerivedFacts = (trx: Knex.Transaction) => Promise<BillingFacts>;

export interface BillingLedger {
  record(userId: string, facts: BillingFacts | DerivedFacts, opts: RecordOptions): Promise<LedgerOutcome>;
}

const sameTime = (a: Date | null | undefined, b: Date | null | undefined) =>
  (a?.getTime() ?? null) === (b?.getTime() ?? null);

function describe(s: SubscriptionRecord) {
  return {
    id: s.id,
    plan: s.planCode,
    status: s.status,
    current_period_end: s.currentPeriodEnd?.toISOString() ?? null,
    ends_at: s.endsAt?.toISOString() ?? null,
  };
}

export function createBillingLedger(deps: LedgerDeps): BillingLedger {
  const { db } = deps;

  async function planIdOf(code: string): Promise<string> {
    const plan = await deps.plans.byCode(code);
    if (!plan) throw new LedgerError('unknown_plan', `there is no plan "${code}"`);
    return plan.id;
  }

  /** Cancels the user's active subscription in favour of `byId`; the replaced row is frozen (replaced_by). */
  async function replace(
    trx: Knex.Transaction,
    holder: SubscriptionRecord,
    byId: string,
    f: SubscriptionFact,
    actor: string,
    now: Date,
  ): Promise<void> {
    await updateSubscription(trx, holder.id, { status: 'canceled', canceledAt: now, endsAt: now, replacedBy: byId });
    await writeAudit(trx, {
      table: 'user_subscriptions',
      operation: 'UPDATE',
      userId: f.userId,
      oldValues: describe(holder),
      newValues: {
        id: holder.id,
        status: 'canceled',
        replaced_by: byId,
        reason: `replaced by ${f.provider} subscription`,
      },
      actor,
    });
  }

  async function holderOtherThan(
    trx: Knex.Transaction,
    userId: string,
    id: string | undefined,
  ): Promise<SubscriptionRecord | undefined> {
    const active = await activeSubscription(trx, userId);
    if (!active || active.id === id) return undefined;
    return getSubscription(trx, active.id);
  }

  /** The columns a fact sets, the same for a new row and an update. */
  function stateOf(f: SubscriptionFact, planId: string) {
    return {
      planId,
      status: f.status,
      billingCycle: f.billingCycle,
      amount: f.amount,
      currency: f.currency,
      currentPeriodStart: f.periodStart,
      currentPeriodEnd: f.periodEnd,
      endsAt: f.endsAt,
      canceledAt: f.canceledAt,
      providerStateAt: f.observedAt,
    };
  }

  async function insertNew(
    trx: Knex.Transaction,
    f: SubscriptionFact,
    planId: string,
    opts: RecordOptions,
    takeSlot: boolean,
  ): Promise<string> {
    const now = new Date();
    const holder = f.status === 'active' ? await holderOtherThan(trx, f.userId, undefined) : undefined;
    if (holder && !takeSlot) return 'ignored_place_taken';
    // The holder leaves first: the partial unique index allows one active row at any instant.
    if (holder) await updateSubscription(trx, holder.id, { status: 'canceled' });
    const id = await insertSubscriptionState(trx, {
      userId: f.userId,
      provider: f.provider,
      providerId: f.providerSubscriptionId,
      ...stateOf(f, planId),
    });
    if (holder) await replace(trx, holder, id, f, opts.actor, now);
    await writeAudit(trx, {
      table: 'user_subscriptions',
      operation: 'INSERT',
      userId: f.userId,
      newValues: {
        id,
        plan: f.planCode,
        status: f.status,
        provider: f.provider,
        provider_subscription_id: f.providerSubscriptionId,
        current_period_end: f.periodEnd?.toISOString() ?? null,
      },
      actor: opts.actor,
    });
    return `subscription_${f.status}`;
  }

  async function applySubscription(trx: Knex.Transaction, f: SubscriptionFact, opts: RecordOptions): Promise<string> {
    const row = await findProviderSubscription(trx, f.provider, f.providerSubscriptionId);
    if (row && row.userId !== f.userId)
      throw new LedgerError(
        'other_user',
        `${f.provider} subscription ${f.providerSubscriptionId} belongs to another user`,
      );
    if (row?.providerStateAt && f.observedAt < row.providerStateAt) return 'ignored_stale_subscription';
    if (row?.replacedBy) return 'ignored_replaced_subscription';
    const planId = await planIdOf(f.planCode);
    // New to us: it takes the place. A canceled one coming back (an ExtPay user who paid again): a new row, and the
    // place only on the user's request, so a sync never takes it from a subscription the user chose since.
    if (!row) return insertNew(trx, f, planId, opts, true);
    if (row.status === 'canceled' && f.status !== 'canceled')
      return insertNew(trx, f, planId, opts, opts.takeSlot === true);
    // Canceled is final for a row: a later read of the same end (ExtPay repeats it at every sync) changes nothing.
    if (row.status === 'canceled') {
      await updateSubscription(trx, row.id, { providerStateAt: f.observedAt });
      return 'subscription_unchanged';
    }

    const change: SubscriptionChange = stateOf(f, planId);
    const same =
      row.planId === planId &&
      row.status === f.status &&
      row.billingCycle === f.billingCycle &&
      Number(row.amount) === Number(f.amount) &&
      row.currency === f.currency &&
      sameTime(row.currentPeriodStart, f.periodStart) &&
      sameTime(row.currentPeriodEnd, f.periodEnd) &&
      sameTime(row.endsAt, f.endsAt) &&
      sameTime(row.canceledAt, f.canceledAt);
    if (same) {
      await updateSubscription(trx, row.id, { providerStateAt: f.observedAt });
      return 'subscription_unchanged';
    }
    if (f.status === 'active' && row.status !== 'active') {
      const holder = await holderOtherThan(trx, f.userId, row.id);
      if (holder && !opts.takeSlot) {
        await updateSubscription(trx, row.id, { providerStateAt: f.observedAt });
        return 'ignored_place_taken';
      }
      if (holder) {
        await updateSubscription(trx, holder.id, { status: 'canceled' });
        await replace(trx, holder, row.id, f, opts.actor, new Date());
      }
    }
    await updateSubscription(trx, row.id, change);
    await writeAudit(trx, {
      table: 'user_subscriptions',
      operation: 'UPDATE',
      userId: f.userId,
      oldValues: describe(row),
      newValues: {
        id: row.id,
        plan: f.planCode,
        status: f.status,
        current_period_end: f.periodEnd?.toISOString() ?? null,
        ends_at: f.endsAt?.toISOString() ?? null,
      },
      actor: opts.actor,
    });
    return `subscription_${f.status}`;
  }

  async function end(trx: Knex.Transaction, userId: string, e: SubscriptionEnd, actor: string): Promise<string> {
    const row = await findProviderSubscription(trx, e.provider, e.providerSubscriptionId);
    if (!row || row.userId !== userId || row.status === 'canceled') return 'subscription_unchanged';
    await updateSubscription(trx, row.id, { status: 'canceled', canceledAt: e.at, endsAt: e.at });
    await writeAudit(trx, {
      table: 'user_subscriptions',
      operation: 'UPDATE',
      userId,
      oldValues: describe(row),
      newValues: { id: row.id, status: 'canceled', reason: `${e.provider} account unlinked` },
      actor,
    });
    return 'subscription_canceled';
  }

  async function applyPayment(trx: Knex.Transaction, p: PaymentFact): Promise<string> {
    const known = await findPayment(trx, p.providerPaymentId);
    if (known && known.userId !== p.userId)
      throw new LedgerError('other_user', `payment ${p.providerPaymentId} belongs to another user`);
    if (known && paymentStatusRank[p.status] < paymentStatusRank[known.status]) return 'ignored_stale_payment';
    const subscription = p.providerSubscriptionId
      ? await findProviderSubscription(trx, p.provider, p.providerSubscriptionId)
      : undefined;
    await upsertPayment(trx, {
      userId: p.userId,
      providerPaymentId: p.providerPaymentId,
      provider: p.provider,
      status: p.status,
      subscriptionId: subscription && subscription.userId === p.userId ? subscription.id : undefined,
      amount: p.amount,
      currency: p.currency,
      providerCustomerId: p.providerCustomerId,
      paymentMethod: p.paymentMethod,
      lastFourDigits: p.lastFourDigits,
      processedAt: p.processedAt,
      failedAt: p.failedAt,
      failureReason: p.failureReason,
      invoiceUrl: p.invoiceUrl,
      receiptUrl: p.receiptUrl,
    });
    return known?.status === p.status ? 'payment_unchanged' : `payment_${p.status}`;
  }

  return {
    async record(userId, given, opts) {
      const checkOwner = (facts: BillingFacts) => {
        for (const f of [facts.subscription, ...(facts.payments ?? [])]) {
          if (f && f.userId !== userId) throw new Error(`a fact for user ${f.userId} was recorded for user ${userId}`);
        }
      };
      if (typeof given !== 'function') checkOwner(given);
      const result = await db.transaction(async (trx): Promise<LedgerOutcome> => {
        if (opts.event && !(await recordWebhookEvent(trx, opts.event))) return { duplicate: true, applied: [] };
        if (!(await lockUser(trx, userId))) throw new LedgerError('unknown_user', `there is no user ${userId}`);
        await opts.prepare?.(trx);
        const facts = typeof given === 'function' ? await given(trx) : given;
        if (typeof given === 'function') checkOwner(facts);
        const applied: string[] = [];
        for (const e of facts.ends ?? []) applied.push(await end(trx, userId, e, opts.actor));
        if (facts.subscription) applied.push(await applySubscription(trx, facts.subscription, opts));
        for (const p of facts.payments ?? []) applied.push(await applyPayment(trx, p));
        return { duplicate: false, applied };
      });
      if (result.applied.some((a) => a.startsWith('subscription_') && a !== 'subscription_unchanged'))
        deps.invalidation.user(userId);
      return result;
    },
  };
}
