// Stripe, through the official `stripe` package: Checkout Sessions (mode subscription; cards, PayPal and bank
// transfers as the operator enables them in Stripe), the Billing Portal, and signed webhooks. A webhook is checked
// with stripe.webhooks.constructEvent on the raw body, then the subscription it concerns is read again from the API:
// what is applied is Stripe's state at the time of that read (observedAt), never the event's possibly stale copy, so
// events delivered late, twice or out of order cannot move a subscription back. The facts go to the ledger with the
// event id (applied once).
import type { Knex } from 'knex';
import Stripe from 'stripe';
import type { Logger } from '../../log.js';
import { findAccountByProviderId, findAccountOfUser, linkAccount } from '../../store/billing-accounts.js';
import { findPayment, listSubscriptions } from '../../store/payments.js';
import type { Metrics } from '../ops/index.js';
import { BillingError, notConfigured } from './errors.js';
import {
  fromMinorUnits,
  type BillingCycle,
  type BillingFacts,
  type PaymentFact,
  type PaymentStatus,
  type SubscriptionFact,
  type SubscriptionStatus,
} from './facts.js';
import { LedgerError, type BillingLedger } from './ledger.js';

const PROVIDER = 'stripe';
/** Stripe's default tolerance: a signature older than 5 minutes is refused (a captured request cannot be replayed). */
export const STRIPE_TOLERANCE_SECONDS = 300;
/** The events applied; subscribe the webhook endpoint to these (docs/billing.md). */
export const stripeEventTypes = [
  'checkout.session.completed',
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'invoice.paid',
  'invoice.payment_failed',
  'charge.refunded',
] as const;

interface StripeSettings {
  readonly secretKey: string;
  readonly webhookSecret: string;
  /** `plan:cycle=price_id` entries (STRIPE_PRICES). */
  readonly prices: readonly string[];
  readonly apiBase: string;
  readonly timeoutMs: number;
  /** Where Checkout and the portal send the user back (read per request: PUBLIC_URL may be known late). */
  readonly returnUrls: () => { success: string; cancel: string; portal: string };
}

export interface StripeDeps {
  readonly settings: StripeSettings;
  readonly db: Knex;
  readonly ledger: BillingLedger;
  readonly log: Logger;
  readonly metrics?: Pick<Metrics, 'billingProviderErrors' | 'billingWebhooks'> | undefined;
}

interface WebhookResult {
  readonly type: string;
  readonly duplicate: boolean;
  readonly applied: readonly string[];
}

export interface StripeBilling {
  missingSetting(): string | undefined;
  /** Plan code → the billing cycles Checkout can sell it for (empty when Stripe is not configured). */
  readonly sellable: ReadonlyMap<string, readonly BillingCycle[]>;
  checkout(userId: string, plan: string, cycle: string): Promise<{ id: string; url: string }>;
  portal(userId: string): Promise<{ url: string }>;
  webhook(rawBody: Buffer, signature: string | undefined): Promise<WebhookResult>;
  /** Re-reads the user's current Stripe subscription; undefined when they have none. */
  refresh(userId: string): Promise<'applied' | 'unavailable' | undefined>;
}

type Resolved =
  | {
      readonly userId: string;
      readonly facts: BillingFacts;
      readonly customer?: string | undefined;
      readonly takeSlot?: boolean;
    }
  | { readonly ignored: string };

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const idOf = (v: string | { id: string } | null | undefined): string | undefined =>
  typeof v === 'string' ? v : (v?.id ?? undefined);
/** A number field wherever the API version put it (periods moved from the subscription to its items in 2025). */
const numberAt = (o: unknown, key: string): number | undefined => {
  const v = (o as Record<string, unknown> | null | undefined)?.[key];
  return typeof v === 'number' ? v : undefined;
};
const at = (seconds: number | null | undefined) => (typeof seconds === 'number' ? new Date(seconds * 1000) : null);

/** Stripe's subscription status → the founding enum (its two extra states have no access either). */
export function statusOf(s: Stripe.Subscription.Status): SubscriptionStatus {
  switch (s) {
    case 'active':
    case 'past_due':
    case 'canceled':
    case 'unpaid':
    case 'incomplete':
    case 'trialing':
      return s as SubscriptionStatus;
    case 'incomplete_expired':
      return 'canceled';
    default:
      return 'unpaid'; // paused: no invoices, no access until it resumes
  }
}

function methodOf(charge: Stripe.Charge | undefined): string | undefined {
  const type = charge?.payment_method_details?.type;
  if (!type) return undefined;
  if (type === 'card' || type === 'paypal') return type;
  if (/(bank|debit|transfer|customer_balance)/.test(type)) return 'bank_transfer';
  return type.slice(0, 50);
}

function stripeFailure(err: unknown): BillingError | undefined {
  if (!(err instanceof Stripe.errors.StripeError)) return undefined;
  const reached = !(err instanceof Stripe.errors.StripeConnectionError);
  return new BillingError(
    'provider_unavailable',
    reached
      ? `Stripe refused the request: ${err.message}`
      : 'Stripe could not be reached; nothing was changed, try again later',
  );
}

export function createStripeBilling(deps: StripeDeps): StripeBilling {
  const s = deps.settings;
  const log = deps.log.child({ mod: 'stripe' });
  const base = s.apiBase ? new URL(s.apiBase) : undefined;
  const stripe = s.secretKey
    ? new Stripe(s.secretKey, {
        ...(base
          ? {
              host: base.hostname,
              port: base.port || (base.protocol === 'https:' ? 443 : 80),
              protocol: base.protocol === 'http:' ? 'http' : 'https',
            }
          : {}),
        timeout: s.timeoutMs,
        maxNetworkRetries: 2,
        telemetry: false,
        appInfo: { name: 'nostrx-relay' },
      })
    : undefined;

  const priceOf = new Map<string, string>();
  const byPrice = new Map<string, { plan: string; cycle: BillingCycle }>();
  const sellable = new Map<string, BillingCycle[]>();
  for (const entry of s.prices) {
    const [key = '', price = ''] = entry.split('=');
    const [plan = '', cycle = ''] = key.split(':');
    priceOf.set(key, price);
    byPrice.set(price, { plan, cycle: cycle as BillingCycle });
    if (stripe) sellable.set(plan, [...(sellable.get(plan) ?? []), cycle as BillingCycle]);
  }

  function client(): Stripe {
    if (!stripe) throw notConfigured('STRIPE_SECRET_KEY', 'Stripe');
    return stripe;
  }

  /** The user a subscription belongs to: our checkout put their id in its metadata; else its customer's link. */
  async function ownerOf(sub: Stripe.Subscription): Promise<string | undefined> {
    const fromMetadata = sub.metadata?.nostrx_user_id;
    if (fromMetadata && uuid.test(fromMetadata)) return fromMetadata;
    const customer = idOf(sub.customer);
    return customer ? (await findAccountByProviderId(deps.db, PROVIDER, customer))?.userId : undefined;
  }

  function subscriptionFact(
    sub: Stripe.Subscription,
    userId: string,
    observedAt: Date,
  ): SubscriptionFact | { unmapped: string } {
    const item = sub.items.data[0];
    const price = item?.price;
    const mapped = price ? byPrice.get(price.id) : undefined;
    if (!item || !price || !mapped) return { unmapped: price?.id ?? '(no item)' };
    const periodStart =
      at(numberAt(item, 'current_period_start') ?? numberAt(sub, 'current_period_start')) ??
      at(sub.start_date) ??
      observedAt;
    const periodEnd = at(numberAt(item, 'current_period_end') ?? numberAt(sub, 'current_period_end'));
    const status = statusOf(sub.status);
    const endsAt =
      status === 'canceled'
        ? (at(sub.ended_at) ?? at(sub.canceled_at) ?? observedAt)
        : (at(sub.cancel_at) ?? (sub.cancel_at_period_end ? periodEnd : null));
    return {
      provider: PROVIDER,
      providerSubscriptionId: sub.id,
      userId,
      planCode: mapped.plan,
      billingCycle: mapped.cycle,
      status,
      amount: fromMinorUnits(price.unit_amount ?? 0),
      currency: (price.currency || sub.currency).toUpperCase(),
      periodStart,
      periodEnd: periodEnd && periodEnd > periodStart ? periodEnd : null,
      endsAt,
      canceledAt: at(sub.canceled_at),
      observedAt,
    };
  }

  /** The subscription as Stripe has it now, with its owner. */
  async function readSubscription(
    id: string,
  ): Promise<{ fact: SubscriptionFact; customer: string | undefined } | { ignored: string }> {
    let sub: Stripe.Subscription;
    try {
      sub = await client().subscriptions.retrieve(id);
    } catch (err) {
      // Gone from Stripe (deleted test data): acknowledged, or Stripe would retry it for days.
      if (err instanceof Stripe.errors.StripeInvalidRequestError && err.code === 'resource_missing')
        return { ignored: 'ignored_unknown_subscription' };
      throw err;
    }
    const observedAt = new Date();
    const userId = await ownerOf(sub);
    if (!userId) return { ignored: 'ignored_unknown_customer' };
    const fact = subscriptionFact(sub, userId, observedAt);
    if ('unmapped' in fact) return { ignored: `ignored_unknown_price` };
    return { fact, customer: idOf(sub.customer) };
  }

  /** The charge that paid (or tried to pay) an invoice, for its receipt, method and card digits. */
  async function chargeOfInvoice(
    invoiceId: string,
  ): Promise<{ charge?: Stripe.Charge; intent?: Stripe.PaymentIntent }> {
    const list = await client().invoicePayments.list({
      invoice: invoiceId,
      limit: 3,
      expand: ['data.payment.payment_intent.latest_charge'],
    });
    for (const p of list.data) {
      const intent = p.payment.payment_intent;
      if (intent && typeof intent !== 'string') {
        const charge =
          intent.latest_charge && typeof intent.latest_charge !== 'string' ? intent.latest_charge : undefined;
        return { ...(charge ? { charge } : {}), intent };
      }
      if (p.payment.charge && typeof p.payment.charge !== 'string') return { charge: p.payment.charge };
    }
    return {};
  }

  const subscriptionIdOfInvoice = (inv: Stripe.Invoice): string | undefined =>
    idOf(inv.parent?.subscription_details?.subscription) ??
    idOf((inv as unknown as { subscription?: string | null }).subscription);

  async function fromInvoice(inv: Stripe.Invoice, status: PaymentStatus): Promise<Resolved> {
    const subId = subscriptionIdOfInvoice(inv);
    const read = subId ? await readSubscription(subId) : undefined;
    const customer = idOf(inv.customer) ?? undefined;
    const userId =
      read && 'fact' in read
        ? read.fact.userId
        : customer
          ? (await findAccountByProviderId(deps.db, PROVIDER, customer))?.userId
          : undefined;
    if (!userId || !inv.id) return { ignored: read && 'ignored' in read ? read.ignored : 'ignored_unknown_customer' };
    const { charge, intent } = await chargeOfInvoice(inv.id);
    const payment: PaymentFact = {
      provider: PROVIDER,
      providerPaymentId: inv.id,
      userId,
      providerSubscriptionId: subId,
      amount: fromMinorUnits(status === 'succeeded' ? inv.amount_paid : inv.amount_due),
      currency: inv.currency.toUpperCase(),
      status,
      providerCustomerId: customer,
      paymentMethod: methodOf(charge),
      lastFourDigits: charge?.payment_method_details?.card?.last4 ?? undefined,
      invoiceUrl: inv.hosted_invoice_url ?? undefined,
      receiptUrl: charge?.receipt_url ?? undefined,
      processedAt: status === 'succeeded' ? (at(inv.status_transitions?.paid_at) ?? new Date()) : undefined,
      failedAt: status === 'failed' ? new Date() : undefined,
      failureReason:
        status === 'failed'
          ? (intent?.last_payment_error?.message ?? charge?.failure_message ?? 'the payment failed')
          : undefined,
    };
    return {
      userId,
      customer,
      facts: { ...(read && 'fact' in read ? { subscription: read.fact } : {}), payments: [payment] },
    };
  }

  async function fromRefund(charge: Stripe.Charge): Promise<Resolved> {
    const intent = idOf(charge.payment_intent);
    if (!intent) return { ignored: 'ignored_charge_without_invoice' };
    const list = await client().invoicePayments.list({
      payment: { type: 'payment_intent', payment_intent: intent },
      limit: 1,
    });
    const invoiceId = idOf(list.data[0]?.invoice);
    if (!invoiceId) return { ignored: 'ignored_charge_without_invoice' };
    const known = await findPayment(deps.db, invoiceId);
    const customer = idOf(charge.customer) ?? undefined;
    const userId =
      known?.userId ?? (customer ? (await findAccountByProviderId(deps.db, PROVIDER, customer))?.userId : undefined);
    if (!userId) return { ignored: 'ignored_unknown_customer' };
    const payment: PaymentFact = {
      provider: PROVIDER,
      providerPaymentId: invoiceId,
      userId,
      amount: known?.amount ?? fromMinorUnits(charge.amount),
      currency: charge.currency.toUpperCase(),
      // A partial refund leaves the payment succeeded (the enum has no partial state); the full one refunds it.
      status: charge.refunded ? 'refunded' : 'succeeded',
      providerCustomerId: customer,
      paymentMethod: methodOf(charge),
      lastFourDigits: charge.payment_method_details?.card?.last4 ?? undefined,
      receiptUrl: charge.receipt_url ?? undefined,
    };
    return { userId, customer, facts: { payments: [payment] } };
  }

  async function resolve(event: Stripe.Event): Promise<Resolved> {
    switch (event.type) {
      case 'checkout.session.completed': {
        const session = event.data.object;
        const subId = idOf(session.subscription);
        if (session.mode !== 'subscription' || !subId) return { ignored: 'ignored_not_a_subscription' };
        const read = await readSubscription(subId);
        if ('ignored' in read) return read;
        return {
          userId: read.fact.userId,
          customer: idOf(session.customer) ?? read.customer,
          facts: { subscription: read.fact },
          takeSlot: true,
        };
      }
      case 'customer.subscription.created':
      case 'customer.subscription.updated':
      case 'customer.subscription.deleted': {
        const read = await readSubscription(event.data.object.id);
        if ('ignored' in read) return read;
        return { userId: read.fact.userId, customer: read.customer, facts: { subscription: read.fact } };
      }
      case 'invoice.paid':
        return fromInvoice(event.data.object, 'succeeded');
      case 'invoice.payment_failed':
        return fromInvoice(event.data.object, 'failed');
      case 'charge.refunded':
        return fromRefund(event.data.object);
      default:
        return { ignored: 'ignored_event_type' };
    }
  }

  /** Remembers the customer of the user (Checkout reuses it, the portal opens it); one customer, one user. */
  async function linkCustomer(trx: Knex.Transaction, userId: string, customer: string | undefined): Promise<void> {
    if (!customer) return;
    const linked = await linkAccount(trx, { userId, provider: PROVIDER, providerAccountId: customer });
    if (!linked.ok)
      log.error(
        { userId, customer, ownerId: linked.ownerId },
        'a Stripe customer is linked to another user; not relinked',
      );
  }

  async function apply(event: Stripe.Event): Promise<WebhookResult> {
    const resolved = await resolve(event);
    const inbox = { provider: PROVIDER, eventId: event.id, type: event.type, payload: event };
    if ('ignored' in resolved) {
      log.info(
        { event: event.id, type: event.type, why: resolved.ignored },
        'Stripe event acknowledged, nothing applied',
      );
      return { type: event.type, duplicate: false, applied: [resolved.ignored] };
    }
    try {
      const outcome = await deps.ledger.record(resolved.userId, resolved.facts, {
        actor: PROVIDER,
        event: inbox,
        takeSlot: resolved.takeSlot,
        prepare: (trx) => linkCustomer(trx, resolved.userId, resolved.customer),
      });
      return { type: event.type, ...outcome };
    } catch (err) {
      // Facts that can never apply (an unknown user id in metadata, another user's payment): acknowledged, so
      // Stripe stops retrying, and logged for the operator.
      if (!(err instanceof LedgerError)) throw err;
      log.error(
        { event: event.id, type: event.type, code: err.code, why: err.message },
        'Stripe event cannot be applied',
      );
      return { type: event.type, duplicate: false, applied: [`ignored_${err.code}`] };
    }
  }

  async function guarded<T>(operation: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      const failure = stripeFailure(err);
      if (!failure) throw err;
      deps.metrics?.billingProviderErrors.inc({
        provider: PROVIDER,
        operation,
        kind: err instanceof Stripe.errors.StripeConnectionError ? 'unavailable' : 'rejected',
      });
      log.warn({ operation, type: (err as Error).name, why: (err as Error).message }, 'Stripe request failed');
      throw failure;
    }
  }

  return {
    missingSetting: () => (stripe ? undefined : 'STRIPE_SECRET_KEY'),
    sellable,
    async checkout(userId, plan, cycle) {
      const api = client();
      const price = priceOf.get(`${plan}:${cycle}`);
      if (!price) {
        const offered = [...priceOf.keys()].join(', ') || 'none';
        throw new BillingError(
          'unknown_price',
          `plan "${plan}" is not sold by Stripe billed ${cycle} (offered: ${offered})`,
        );
      }
      const customer = await findAccountOfUser(deps.db, userId, PROVIDER);
      const session = await guarded('checkout', () =>
        api.checkout.sessions.create({
          mode: 'subscription',
          line_items: [{ price, quantity: 1 }],
          client_reference_id: userId,
          ...(customer ? { customer: customer.providerAccountId } : {}),
          subscription_data: { metadata: { nostrx_user_id: userId } },
          metadata: { nostrx_user_id: userId, plan, billing_cycle: cycle },
          success_url: s.returnUrls().success,
          cancel_url: s.returnUrls().cancel,
        }),
      );
      if (!session.url)
        throw new BillingError('provider_unavailable', 'Stripe created a Checkout Session without a URL');
      return { id: session.id, url: session.url };
    },
    async portal(userId) {
      const api = client();
      const customer = await findAccountOfUser(deps.db, userId, PROVIDER);
      if (!customer)
        throw new BillingError('no_customer', 'you have no Stripe customer yet: buy a plan through checkout first');
      const session = await guarded('portal', () =>
        api.billingPortal.sessions.create({ customer: customer.providerAccountId, return_url: s.returnUrls().portal }),
      );
      return { url: session.url };
    },
    async webhook(rawBody, signature) {
      if (!s.webhookSecret) throw notConfigured('STRIPE_WEBHOOK_SECRET', 'Stripe webhooks');
      let event: Stripe.Event;
      try {
        event = Stripe.webhooks.constructEvent(rawBody, signature ?? '', s.webhookSecret, STRIPE_TOLERANCE_SECONDS);
      } catch (err) {
        deps.metrics?.billingWebhooks.inc({ provider: PROVIDER, outcome: 'refused' });
        throw new BillingError(
          'signature_invalid',
          `the Stripe-Signature header does not verify: ${(err as Error).message}`,
        );
      }
      client();
      const result = await guarded('webhook', () => apply(event));
      const outcome = result.duplicate
        ? 'duplicate'
        : result.applied.every((a) => a.startsWith('ignored_'))
          ? 'ignored'
          : 'applied';
      deps.metrics?.billingWebhooks.inc({ provider: PROVIDER, outcome });
      return result;
    },
    async refresh(userId) {
      if (!stripe) return undefined;
      const current = (await listSubscriptions(deps.db, userId, 10)).find(
        (r) => r.paymentProvider === PROVIDER && r.status !== 'canceled' && !r.replacedBy && r.paymentProviderId,
      );
      if (!current?.paymentProviderId) return undefined;
      const id = current.paymentProviderId;
      try {
        const read = await guarded('refresh', () => readSubscription(id));
        if ('ignored' in read) return 'applied';
        await deps.ledger.record(userId, { subscription: read.fact }, { actor: PROVIDER });
        return 'applied';
      } catch (err) {
        if (err instanceof BillingError) return 'unavailable';
        throw err;
      }
    },
  };
}
