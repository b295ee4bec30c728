// POST /v1/me/relays/reconcile: a delivery audit of the caller's relays now (core/forwarding/delivery-audit.ts):
// each active write relay that supports NIP-77 is reconciled over the last RECONCILE_DAYS, and what it lacks of the
// events forwarded to it is sent again. Plans with relays of their own only (403 naming the plan that has them); one
// audit per user at a time (429 while one runs).
import type { FastifyInstance } from 'fastify';
import { checkFeature, refusal } from '../core/quota/index.js';
import type { AuditResult } from '../core/forwarding/index.js';
import { callerOf } from './auth.js';
import { apiError } from './errors.js';
import type { ApiServices } from './services.js';

const resultSchema = {
  type: 'object',
  required: ['url', 'supports_nip77', 'checked', 'missing', 'acknowledged_then_missing', 'queued'],
  properties: {
    url: { type: 'string' },
    supports_nip77: {
      type: 'boolean',
      description: 'Relays without NIP-77 (per their NIP-11 document) are not audited',
    },
    checked: {
      type: 'integer',
      description: 'Your events forwarded to this relay in the window (not on their way now)',
    },
    missing: { type: 'integer', description: 'Of those, the ones the relay does not hold' },
    acknowledged_then_missing: {
      type: 'integer',
      description: 'Of the missing ones, those the relay had acknowledged (OK true)',
    },
    queued: { type: 'integer', description: 'Events sent again (recorded as forwarding attempts)' },
    error: { type: 'string', description: 'Why this relay could not be reconciled' },
  },
} as const;

function resultView(r: AuditResult) {
  return {
    url: r.relay,
    supports_nip77: r.supportsNip77,
    checked: r.checked,
    missing: r.missing,
    acknowledged_then_missing: r.acknowledgedMissing,
    queued: r.queued,
    ...(r.error ? { error: r.error } : {}),
  };
}

export function registerReconcileRoutes(http: FastifyInstance, deps: ApiServices): void {
  const running = new Set<string>();
  http.post(
    '/v1/me/relays/reconcile',
    deps.access('user', {
      tags: ['relays'],
      summary: 'Audit delivery now: reconcile your relays (NIP-77) and send them what they lack',
      response: {
        200: {
          type: 'object',
          required: ['days', 'relays'],
          properties: { days: { type: 'integer' }, relays: { type: 'array', items: resultSchema } },
        },
      },
    }),
    async (req) => {
      const caller = callerOf(req);
      const feature = await checkFeature(deps.plans, caller.user.id, 'customRelaysAllowed');
      if (!feature.allowed)
        throw apiError(
          'plan_required',
          refusal(feature, 'customRelaysAllowed'),
          feature.upgrade ? { plan: feature.upgrade.code } : {},
        );
      if (running.has(caller.user.id))
        throw apiError('rate_limited', 'an audit of your relays is already running', undefined, { 'retry-after': '5' });
      running.add(caller.user.id);
      try {
        const results = await deps.deliveryAudit.reconcileUser(caller.user.id);
        return { days: deps.config.reconcileDays, relays: results.map(resultView) };
      } finally {
        running.delete(caller.user.id);
      }
    },
  );
}
