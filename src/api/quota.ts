// GET /v1/me/quota: the caller's plan and, for the day (their timezone) and the month, what is used, the limit,
// what remains and when it resets: the same figures admission decides with.
import type { FastifyInstance } from 'fastify';
import { quotaStatus } from '../core/accounts/index.js';
import { callerOf } from './auth.js';
import type { ApiServices } from './services.js';

export function registerQuotaRoutes(http: FastifyInstance, deps: ApiServices): void {
  http.get(
    '/v1/me/quota',
    deps.access('user', {
      tags: ['account'],
      summary: 'Your quota: plan, used, limit, remaining and resets_at, daily and monthly',
      response: {
        200: {
          type: 'object',
          required: ['plan', 'daily', 'monthly'],
          properties: {
            plan: { type: 'string' },
            daily: { $ref: 'QuotaPeriod#' },
            monthly: {
              anyOf: [{ $ref: 'QuotaPeriod#' }, { type: 'null' }],
              description: 'null when the plan has no monthly limit',
            },
          },
        },
      },
    }),
    async (req) => quotaStatus(deps.accountAdmin, callerOf(req).user),
  );
}
