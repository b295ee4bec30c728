// Buying a plan (core/billing/): link an ExtensionPay user, open a Stripe Checkout or Billing Portal session, and
// Stripe's signed webhook. The service verifies everything with the provider itself; the client's word is never
// taken for a payment. GET /v1/subscription (subscription.ts) shows the result.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BillingError, LedgerError, STRIPE_TOLERANCE_SECONDS, stripeEventTypes } from '../core/billing/index.js';
import { callerOf } from './auth.js';
import { apiError, errorResponses, type ApiError, type ErrorCode } from './errors.js';
import type { ApiServices } from './services.js';
import { planPurchaseBody, type PlanPurchase } from './schemas.js';

const codes: Record<BillingError['code'], ErrorCode> = {
  not_configured: 'billing_not_configured',
  provider_unavailable: 'payment_provider_unavailable',
  unknown_price: 'plan_not_sold',
  key_invalid: 'extensionpay_key_invalid',
  plan_unmapped: 'extensionpay_plan_unmapped',
  linked_elsewhere: 'billing_account_linked_elsewhere',
  no_customer: 'billing_customer_not_found',
  signature_invalid: 'webhook_signature_invalid',
};

/** A billing failure as the API's error; anything else is rethrown (a 500, logged). */
export function billingApiError(err: unknown): ApiError {
  if (err instanceof BillingError)
    return apiError(codes[err.code], err.message, err.setting ? { setting: err.setting } : {});
  // EXTENSIONPAY_PLANS names a plan code that is not in subscription_plans: the operator's setting is wrong.
  if (err instanceof LedgerError && err.code === 'unknown_plan')
    return apiError('extensionpay_plan_unmapped', `${err.message} (EXTENSIONPAY_PLANS)`);
  throw err;
}

async function mapped<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw billingApiError(err);
  }
}

const urlReply = {
  200: { type: 'object', required: ['url'], properties: { id: { type: 'string' }, url: { type: 'string' } } },
} as const;

export function registerBillingRoutes(http: FastifyInstance, deps: ApiServices): void {
  const { billing } = deps;

  http.post<{ Body: { api_key: string } }>(
    '/v1/subscription/extensionpay',
    deps.access('user', {
      tags: ['payments'],
      summary: 'Link your ExtensionPay user: the service reads your paid status from ExtensionPay and applies it',
      description:
        'The key is the one ExtPay.js keeps in the extension (`extensionpay_api_key`). It is stored encrypted and never shown again. ' +
        'The plan paid for at ExtensionPay applies at once, and the service re-reads it on a schedule (EXTENSIONPAY_SYNC_HOURS). ' +
        '409 when that ExtensionPay user is linked to another account; 503 naming the missing setting when ExtensionPay is not configured.',
      body: {
        type: 'object',
        required: ['api_key'],
        additionalProperties: false,
        properties: { api_key: { type: 'string', minLength: 8, maxLength: 200, pattern: '^[A-Za-z0-9_.-]+$' } },
      },
      response: {
        200: {
          type: 'object',
          required: ['linked', 'paid', 'plan', 'applied'],
          properties: {
            linked: { type: 'boolean' },
            paid: {
              type: 'boolean',
              description: 'false when this ExtPay user has not paid (yet): linked, and read again later',
            },
            plan: { type: 'string', description: 'Your effective plan now' },
            applied: { type: 'array', items: { type: 'string' } },
          },
        },
      },
    }),
    async (req) => {
      const caller = callerOf(req);
      const result = await mapped(() => billing.extensionpay.link(caller.user.id, req.body.api_key));
      const plan = await deps.plans.effectivePlan(caller.user.id);
      return { linked: true, paid: result.paid, plan: plan.code, applied: result.outcome.applied };
    },
  );

  http.post<{ Body: PlanPurchase }>(
    '/v1/subscription/checkout',
    deps.access('user', {
      tags: ['payments'],
      summary: 'Start buying a plan with Stripe Checkout: answers the URL to send the buyer to',
      description:
        'The plan applies when Stripe confirms the payment (webhook), not before. 400 for a plan or cycle not sold through Stripe; 502 when Stripe cannot be reached.',
      body: planPurchaseBody,
      response: urlReply,
    }),
    async (req) => {
      const caller = callerOf(req);
      return mapped(() => billing.stripe.checkout(caller.user.id, req.body.plan, req.body.billing_cycle));
    },
  );

  http.post(
    '/v1/subscription/portal',
    deps.access('user', {
      tags: ['payments'],
      summary: 'Open the Stripe Billing Portal (change card, cancel, invoices): answers its URL',
      response: urlReply,
    }),
    async (req) => {
      const caller = callerOf(req);
      return mapped(() => billing.stripe.portal(caller.user.id));
    },
  );

  http.post(
    '/v1/webhooks/stripe',
    {
      schema: {
        tags: ['payments'],
        summary: 'Stripe webhook endpoint (signed with STRIPE_WEBHOOK_SECRET)',
        description:
          `Verified with stripe.webhooks.constructEvent on the raw body (tolerance ${STRIPE_TOLERANCE_SECONDS} s); a missing, wrong or stale signature is a 400 that changes nothing. ` +
          `Applied once per event id. Events used: ${stripeEventTypes.join(', ')}; others are acknowledged.`,
        headers: { type: 'object', properties: { 'stripe-signature': { type: 'string' } } },
        response: {
          200: {
            type: 'object',
            required: ['received', 'duplicate', 'applied'],
            properties: {
              received: { type: 'boolean' },
              duplicate: { type: 'boolean' },
              applied: { type: 'array', items: { type: 'string' } },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req: FastifyRequest) => {
      const header = req.headers['stripe-signature'];
      const result = await mapped(() =>
        billing.stripe.webhook(req.rawBody ?? Buffer.alloc(0), Array.isArray(header) ? header[0] : header),
      );
      return { received: true, duplicate: result.duplicate, applied: result.applied };
    },
  );
}
