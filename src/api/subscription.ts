// GET /v1/subscription: the caller's effective plan, their active subscription, its history and their payments.
import type { FastifyInstance } from 'fastify';
import type { PaymentRecord, SubscriptionRecord } from '../core/billing/index.js';
import { callerOf } from './auth.js';
import type { ApiServices } from './services.js';
import { planView } from './plans.js';

function subscriptionView(s: SubscriptionRecord) {
  return {
    id: s.id,
    plan: s.planCode,
    status: s.status,
    billing_cycle: s.billingCycle,
    amount: s.amount,
    currency: s.currency,
    started_at: s.startedAt,
    current_period_start: s.currentPeriodStart,
    current_period_end: s.currentPeriodEnd,
    ends_at: s.endsAt,
    canceled_at: s.canceledAt,
    payment_provider: s.paymentProvider,
  };
}

function paymentView(p: PaymentRecord) {
  return {
    id: p.id,
    amount: p.amount,
    currency: p.currency,
    status: p.status,
    payment_provider: p.paymentProvider,
    payment_method: p.paymentMethod,
    last_four_digits: p.lastFourDigits,
    created_at: p.createdAt,
    processed_at: p.processedAt,
    failed_at: p.failedAt,
    failure_reason: p.failureReason,
    invoice_url: p.invoiceUrl,
    receipt_url: p.receiptUrl,
  };
}

export function registerSubscriptionRoutes(http: FastifyInstance, deps: ApiServices): void {
  http.get(
    '/v1/subscription',
    deps.access('user', {
      tags: ['payments'],
      summary: 'Your plan, your active subscription, its history and your payments',
      response: {
        200: {
          type: 'object',
          required: ['plan', 'subscription', 'history', 'payments'],
          properties: {
            plan: { $ref: 'Plan#' },
            subscription: { anyOf: [{ $ref: 'Subscription#' }, { type: 'null' }], description: 'null on the free plan' },
            history: { type: 'array', items: { $ref: 'Subscription#' } },
            payments: { type: 'array', items: { $ref: 'Payment#' } },
          },
        },
      },
    }),
    async (req) => {
      const caller = callerOf(req);
      const [plan, billing] = await Promise.all([deps.plans.effectivePlan(caller.user.id), deps.payments.billing(caller.user.id)]);
      return {
        plan: planView(plan, deps.config.maxCustomRelays),
        subscription: billing.active ? subscriptionView(billing.active) : null,
        history: billing.subscriptions.map(subscriptionView),
        payments: billing.payments.map(paymentView),
      };
    },
  );
}
