// GET /v1/subscription: the caller's effective plan, their current subscription (the active one, else one that is
// past due or otherwise in trouble), its history, their payments with invoice and receipt links, and the payment
// provider accounts they linked. `?refresh=1` first re-reads each linked provider (ExtensionPay, Stripe).
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
    renews: s.status === 'active' && s.endsAt === null && s.billingCycle !== 'lifetime',
    cancel_at: s.status === 'canceled' ? null : s.endsAt,
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
  http.get<{ Querystring: { refresh?: string } }>(
    '/v1/subscription',
    deps.access('user', {
      tags: ['payments'],
      summary: 'Your plan, your current subscription, its history, your payments and linked payment accounts',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          refresh: {
            type: 'string',
            enum: ['0', '1'],
            description: '1: re-read your linked ExtensionPay and Stripe subscriptions first',
          },
        },
      },
      response: {
        200: {
          type: 'object',
          required: ['plan', 'subscription', 'history', 'payments', 'accounts'],
          properties: {
            plan: { $ref: 'Plan#' },
            subscription: {
              anyOf: [{ $ref: 'Subscription#' }, { type: 'null' }],
              description:
                'The active subscription, else the latest one not canceled (past_due, unpaid …, which give no plan); null on the free plan',
            },
            history: { type: 'array', items: { $ref: 'Subscription#' } },
            payments: { type: 'array', items: { $ref: 'Payment#' } },
            accounts: {
              type: 'array',
              description: 'Your linked payment provider accounts (no credential is ever shown)',
              items: {
                type: 'object',
                required: ['provider', 'linked_at'],
                properties: {
                  provider: { type: 'string' },
                  linked_at: { type: 'string', format: 'date-time' },
                  last_synced_at: { type: ['string', 'null'], format: 'date-time' },
                },
              },
            },
            refresh: {
              type: 'array',
              description:
                'With refresh=1: what each linked provider answered (applied, or unavailable: nothing changed)',
              items: {
                type: 'object',
                required: ['provider', 'outcome'],
                properties: { provider: { type: 'string' }, outcome: { type: 'string' } },
              },
            },
          },
        },
      },
    }),
    async (req) => {
      const caller = callerOf(req);
      const refresh = req.query.refresh === '1' ? await deps.billing.refresh(caller.user.id) : undefined;
      const [plan, billing, accounts] = await Promise.all([
        deps.plans.effectivePlan(caller.user.id),
        deps.payments.billing(caller.user.id),
        deps.billing.accounts(caller.user.id),
      ]);
      const current = billing.active ?? billing.subscriptions.find((s) => s.status !== 'canceled' && !s.replacedBy);
      return {
        plan: planView(plan, deps.config.maxCustomRelays),
        subscription: current ? subscriptionView(current) : null,
        history: billing.subscriptions.map(subscriptionView),
        payments: billing.payments.map(paymentView),
        accounts: accounts.map((a) => ({
          provider: a.provider,
          linked_at: a.createdAt,
          last_synced_at: a.lastSyncedAt,
        })),
        ...(refresh ? { refresh } : {}),
      };
    },
  );
}
