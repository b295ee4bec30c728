// The few facts every payment provider's answer comes down to. Each provider module (stripe.ts, extensionpay.ts, a
// Lightning one later) turns what its provider says into these; ledger.ts alone applies them to user_subscriptions
// and payments. A provider module never writes a subscription or a payment itself.
import type { BillingCycle, PaymentStatus, SubscriptionStatus } from '../../store/payments.js';

export type { BillingCycle, PaymentStatus, SubscriptionStatus };

/** A subscription as its provider sees it at one moment. */
export interface SubscriptionFact {
  readonly provider: string;
  /** The provider's id of the subscription (Stripe sub_…, the ExtPay key's fingerprint, a Lightning order id). */
  readonly providerSubscriptionId: string;
  readonly userId: string;
  readonly planCode: string;
  readonly billingCycle: BillingCycle;
  readonly status: SubscriptionStatus;
  /** Price of one period, decimal string (4.99). */
  readonly amount: string;
  /** ISO 4217, upper case. */
  readonly currency: string;
  readonly periodStart: Date;
  /** null for lifetime. */
  readonly periodEnd: Date | null;
  /** When it ends without renewing (cancellation at period end, or the end of a canceled one); null: it renews. */
  readonly endsAt: Date | null;
  /** When the user (or the provider) canceled it. */
  readonly canceledAt: Date | null;
  /**
   * When the provider was in this state: the time of the provider's answer that was read. A fact observed before
   * the one already applied to the subscription is not applied (late webhooks, slow reads).
   */
  readonly observedAt: Date;
}

/** One payment (one invoice, one charge, one Lightning invoice), keyed by the provider's id of it. */
export interface PaymentFact {
  readonly provider: string;
  /** Unique over every provider (prefix it when the provider's ids could collide with another's). */
  readonly providerPaymentId: string;
  readonly userId: string;
  /** The subscription it pays, when the provider says. */
  readonly providerSubscriptionId?: string | undefined;
  readonly amount: string;
  readonly currency: string;
  readonly status: PaymentStatus;
  readonly providerCustomerId?: string | undefined;
  /** 'card', 'paypal', 'bank_transfer', 'lightning' … */
  readonly paymentMethod?: string | undefined;
  readonly lastFourDigits?: string | undefined;
  readonly invoiceUrl?: string | undefined;
  readonly receiptUrl?: string | undefined;
  readonly failureReason?: string | undefined;
  readonly processedAt?: Date | undefined;
  readonly failedAt?: Date | undefined;
}

export interface BillingFacts {
  readonly subscription?: SubscriptionFact | undefined;
  readonly payments?: readonly PaymentFact[] | undefined;
  /** Subscriptions of the same user that end now whatever their state (an ExtPay key replaced by another). */
  readonly ends?: readonly SubscriptionEnd[] | undefined;
}

export interface SubscriptionEnd {
  readonly provider: string;
  readonly providerSubscriptionId: string;
  readonly at: Date;
}

/**
 * Payment states in the order they can follow one another: a failed attempt may be followed by a success (a retry),
 * a success by a refund, never the reverse. A fact whose status ranks below the stored one is a late delivery.
 */
export const paymentStatusRank: Readonly<Record<PaymentStatus, number>> = {
  pending: 0,
  processing: 1,
  failed: 2,
  canceled: 2,
  succeeded: 3,
  refunded: 4,
};

/** Cents (or the currency's minor unit, two decimals) → the decimal string the tables store. */
export function fromMinorUnits(minor: number): string {
  return (minor / 100).toFixed(2);
}
