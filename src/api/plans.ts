// GET /v1/plans (public): the plans anyone can subscribe to, with prices and limits, and how each can be bought.
import type { FastifyInstance } from 'fastify';
import type { Plans } from '../core/quota/index.js';
import type { ApiServices } from './services.js';

type PlanRecord = Awaited<ReturnType<Plans['all']>>[number];

export function planView(p: PlanRecord, maxCustomRelays: number) {
  return {
    code: p.code,
    name: p.name,
    description: p.description,
    price_monthly: p.priceMonthly,
    price_yearly: p.priceYearly,
    currency: p.currency,
    daily_post_limit: p.dailyPostLimit,
    monthly_post_limit: p.monthlyPostLimit,
    custom_relays_allowed: p.customRelaysAllowed,
    max_custom_relays: p.customRelaysAllowed ? maxCustomRelays : null,
    analytics_enabled: p.analyticsEnabled,
    priority_support: p.prioritySupport,
    multiple_identities: p.multipleIdentities,
  };
}

export function registerPlanRoutes(http: FastifyInstance, deps: ApiServices): void {
  http.get(
    '/v1/plans',
    deps.access('public', {
      tags: ['plans'],
      summary: 'The public, active plans with their prices and limits',
      response: {
        200: {
          type: 'object',
          required: ['plans'],
          properties: { plans: { type: 'array', items: { $ref: 'Plan#' } } },
        },
      },
    }),
    async () => {
      const plans = (await deps.plans.all()).filter((p) => p.isActive && p.isPublic);
      return {
        plans: plans.map((p) => ({
          ...planView(p, deps.config.maxCustomRelays),
          providers: deps.billing.providersFor(p.code),
          checkout_cycles: [...(deps.billing.stripe.sellable.get(p.code) ?? [])],
          lightning_prices: Object.fromEntries(deps.billing.lightning.prices.get(p.code) ?? []),
        })),
      };
    },
  );
}
