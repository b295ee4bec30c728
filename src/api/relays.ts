// The caller's own upstream relays: GET/POST /v1/relays, PATCH/DELETE /v1/relays/:id. Only on plans with custom
// relays (403 naming the plan that has them); URLs must be ws(s):// and resolve to public addresses (SSRF guard);
// at most MAX_CUSTOM_RELAYS active. Another user's relay id answers 404, as an unknown one does.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkFeature, refusal } from '../core/quota/index.js';
import type { UserRelay } from '../core/forwarding/index.js';
import { reasonOf, type Rejection } from '../nips/result.js';
import { callerOf } from './auth.js';
import { apiError } from './errors.js';
import type { ApiServices } from './services.js';
import { uuid } from './schemas.js';

const relaySchema = {
  $id: 'Relay',
  type: 'object',
  required: ['id', 'url', 'source', 'is_active', 'read', 'write', 'added_at'],
  properties: {
    id: uuid,
    url: { type: 'string' },
    name: { type: ['string', 'null'] },
    source: {
      type: 'string',
      enum: ['api', 'nip65', 'default'],
      description: 'api: added here; nip65: from your kind-10002 relay list',
    },
    is_active: { type: 'boolean' },
    read: { type: 'boolean' },
    write: { type: 'boolean', description: 'Your events are forwarded to active write relays' },
    added_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
    supported_nips: { type: ['array', 'null'], items: { type: 'integer' } },
    stats: {
      type: 'object',
      properties: {
        total_publishes: { type: 'integer' },
        successful_publishes: { type: 'integer' },
        failed_publishes: { type: 'integer' },
        success_rate: { type: 'number', description: 'percent of finished publishes the relay took, 0–100' },
        avg_response_time_ms: { type: ['integer', 'null'] },
        last_publish_success: { type: ['string', 'null'], format: 'date-time' },
        last_publish_failure: { type: ['string', 'null'], format: 'date-time' },
        consecutive_failures: { type: 'integer' },
        paused_until: { type: ['string', 'null'], format: 'date-time' },
        acknowledged_then_missing: {
          type: 'integer',
          description:
            'Events this relay acknowledged (OK true) that a later NIP-77 reconciliation found it no longer holds (they were sent again)',
        },
        last_reconciled_at: { type: ['string', 'null'], format: 'date-time' },
      },
    },
  },
} as const;

function relayView(r: UserRelay) {
  return {
    id: r.id,
    url: r.url,
    name: r.name,
    source: r.source,
    is_active: r.isActive,
    read: r.read,
    write: r.write,
    added_at: r.addedAt,
    updated_at: r.updatedAt,
    supported_nips: r.supportedNips,
    stats: {
      total_publishes: r.stats.totalPublishes,
      successful_publishes: r.stats.successfulPublishes,
      failed_publishes: r.stats.failedPublishes,
      success_rate: r.stats.successRate,
      avg_response_time_ms: r.stats.avgResponseTimeMs,
      last_publish_success: r.stats.lastPublishSuccess,
      last_publish_failure: r.stats.lastPublishFailure,
      consecutive_failures: r.stats.consecutiveFailures,
      paused_until: r.stats.pausedUntil,
      acknowledged_then_missing: r.stats.acknowledgedMissing,
      last_reconciled_at: r.stats.lastReconciledAt,
    },
  };
}

function relayRefusal(r: Rejection, field: string): never {
  const text = reasonOf(r);
  if (r.prefix === 'restricted') throw apiError('relay_limit_reached', text);
  if (r.prefix === 'error') throw apiError('unavailable', text);
  throw apiError('relay_url_invalid', text, { field, location: 'body' });
}

const relayId = { type: 'object', required: ['id'], properties: { id: uuid } } as const;

export function registerRelayRoutes(http: FastifyInstance, deps: ApiServices): void {
  const { access, relaySettings } = deps;
  http.addSchema(relaySchema);

  /** The caller, once their plan is known to include relays of their own. */
  async function allowedCaller(req: FastifyRequest) {
    const caller = callerOf(req);
    const feature = await checkFeature(deps.plans, caller.user.id, 'customRelaysAllowed');
    if (!feature.allowed)
      throw apiError(
        'plan_required',
        refusal(feature, 'customRelaysAllowed'),
        feature.upgrade ? { plan: feature.upgrade.code } : {},
      );
    return caller;
  }

  http.get(
    '/v1/relays',
    access('user', {
      tags: ['relays'],
      summary: 'Your own upstream relays (plans with custom relays)',
      response: {
        200: {
          type: 'object',
          required: ['relays', 'max'],
          properties: { relays: { type: 'array', items: { $ref: 'Relay#' } }, max: { type: 'integer' } },
        },
      },
    }),
    async (req) => {
      const caller = await allowedCaller(req);
      return { relays: (await relaySettings.list(caller.user.id)).map(relayView), max: deps.config.maxCustomRelays };
    },
  );

  http.post<{ Body: { url: string; name?: string; read?: boolean; write?: boolean } }>(
    '/v1/relays',
    access('user', {
      tags: ['relays'],
      summary: 'Add a relay of your own (ws:// or wss://, public addresses only)',
      body: {
        type: 'object',
        required: ['url'],
        additionalProperties: false,
        properties: {
          url: { type: 'string', minLength: 6, maxLength: 2048 },
          name: { type: 'string', minLength: 1, maxLength: 100 },
          read: { type: 'boolean', default: true },
          write: { type: 'boolean', default: true },
        },
      },
      response: { 201: { $ref: 'Relay#' } },
    }),
    async (req, reply) => {
      const caller = await allowedCaller(req);
      const r = await relaySettings.add(caller.user.id, req.body);
      if (!r.ok) relayRefusal(r.rejection, 'url');
      if (r.value.status === 'exists')
        throw apiError('relay_exists', `${r.value.relay.url} is already one of your relays (id ${r.value.relay.id})`, {
          field: 'url',
          location: 'body',
        });
      return reply.code(201).send(relayView(r.value.relay));
    },
  );

  http.patch<{
    Params: { id: string };
    Body: { name?: string | null; is_active?: boolean; read?: boolean; write?: boolean };
  }>(
    '/v1/relays/:id',
    access('user', {
      tags: ['relays'],
      summary: 'Rename a relay of your own, switch it on or off, or change its read/write markers',
      params: relayId,
      body: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        properties: {
          name: { type: ['string', 'null'], minLength: 1, maxLength: 100 },
          is_active: { type: 'boolean' },
          read: { type: 'boolean' },
          write: { type: 'boolean' },
        },
      },
      response: { 200: { $ref: 'Relay#' } },
    }),
    async (req) => {
      const caller = await allowedCaller(req);
      const b = req.body;
      const r = await relaySettings.update(caller.user.id, req.params.id, {
        name: b.name,
        isActive: b.is_active,
        read: b.read,
        write: b.write,
      });
      if (!r.ok) relayRefusal(r.rejection, 'is_active');
      if (!r.value) throw apiError('relay_not_found');
      return relayView(r.value);
    },
  );

  http.delete<{ Params: { id: string } }>(
    '/v1/relays/:id',
    access('user', {
      tags: ['relays'],
      summary: 'Remove a relay of your own',
      params: relayId,
      response: { 204: { type: 'null' } },
    }),
    async (req, reply) => {
      const caller = await allowedCaller(req);
      if (!(await relaySettings.remove(caller.user.id, req.params.id))) throw apiError('relay_not_found');
      return reply.code(204).send();
    },
  );
}
