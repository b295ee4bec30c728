// Publishing through the API: POST /v1/events runs the event through the one admission function (the relay's
// answer, as an HTTP status: api/errors.ts `admissionErrors`), then GET /v1/events and GET /v1/events/:id show
// the caller's events with each upstream relay's outcome and timings. Only the author sees a record.
import type { FastifyInstance } from 'fastify';
import type { SourceMeta } from '../core/admission/index.js';
import type { EventRecord, EventStatus } from '../core/events/index.js';
import { callerOf } from './auth.js';
import { admissionErrors, apiError } from './errors.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { ApiServices } from './services.js';
import { hex64, pageQuery } from './schemas.js';

interface PublishBody {
  event: { pubkey: string; [k: string]: unknown };
  source?: { platform?: string; tweet_id?: string; tweet_url?: string; tweet_text?: string; username?: string };
}

interface ListQuery {
  status?: EventStatus;
  kind?: number;
  from?: string;
  to?: string;
  limit: number;
  cursor?: string;
}

const statuses = ['pending', 'signing', 'publishing', 'published', 'failed', 'partial', 'not_forwarded'] as const;

function recordView(r: EventRecord) {
  return {
    id: r.event.id,
    kind: r.event.kind,
    created_at: r.event.created_at,
    status: r.status,
    received_at: r.receivedAt,
    published_at: r.publishedAt,
    failure_reason: r.failureReason,
    total_relays: r.totalRelays,
    successful_relays: r.successfulRelays,
    failed_relays: r.failedRelays,
    publish_duration_ms: r.publishDurationMs,
    removed_at: r.removedAt,
    removed_reason: r.removedReason,
    source: {
      platform: r.source.platform,
      tweet_id: r.source.tweetId,
      tweet_url: r.source.tweetUrl,
      tweet_text: r.source.tweetText,
      username: r.source.username,
    },
    event: r.event,
    relays: r.relays.map((o) => ({
      relay_url: o.relayUrl,
      status: o.status,
      attempts: o.attempts,
      attempted_at: o.attemptedAt,
      completed_at: o.completedAt,
      next_attempt_at: o.nextAttemptAt,
      connection_time_ms: o.connectionTimeMs,
      publish_time_ms: o.publishTimeMs,
      total_time_ms: o.totalTimeMs,
      relay_response: o.relayResponse,
      error_code: o.errorCode,
      error_message: o.errorMessage,
    })),
  };
}

function sourceMeta(s: PublishBody['source']): SourceMeta | undefined {
  if (!s) return undefined;
  return {
    platform: s.platform,
    tweetId: s.tweet_id,
    tweetUrl: s.tweet_url,
    tweetText: s.tweet_text,
    username: s.username,
  };
}

const publishResult = {
  type: 'object',
  required: ['result', 'event_id', 'message', 'event'],
  properties: {
    result: { type: 'string', enum: ['accepted', 'duplicate'] },
    event_id: hex64,
    message: { type: 'string', description: 'The NIP-01 OK message the relay would send ("" when accepted)' },
    event: {
      anyOf: [{ $ref: 'EventRecord#' }, { type: 'null' }],
      description: 'null for ephemeral events, which are not stored',
    },
  },
} as const;

export function registerEventRoutes(http: FastifyInstance, deps: ApiServices): void {
  const { access, records } = deps;

  http.post<{ Body: PublishBody }>(
    '/v1/events',
    access('user', {
      tags: ['events'],
      summary: 'Publish a signed event (admitted exactly as on the relay, charged to your quota, then forwarded)',
      body: {
        type: 'object',
        required: ['event'],
        additionalProperties: false,
        properties: {
          event: { $ref: 'NostrEvent#' },
          source: {
            type: 'object',
            additionalProperties: false,
            description: 'Where the post came from (the extension sends the tweet it cross-posts)',
            properties: {
              platform: { type: 'string', maxLength: 50 },
              tweet_id: { type: 'string', maxLength: 50 },
              tweet_url: { type: 'string', maxLength: 2048 },
              tweet_text: { type: 'string', maxLength: 100000 },
              username: { type: 'string', maxLength: 100 },
            },
          },
        },
      },
      response: { 202: publishResult, 200: publishResult },
    }),
    async (req, reply) => {
      const caller = callerOf(req);
      const { event, source } = req.body;
      if (event.pubkey !== caller.pubkey)
        throw apiError('not_author', 'the event is signed by another pubkey than the one you authenticated with');
      const outcome = await deps.admit(event, {
        via: 'api',
        authed: new Set([caller.pubkey]),
        ip: req.ip,
        source: sourceMeta(source),
      });
      if (outcome.status === 'rejected') {
        const r = outcome.rejection;
        const q = outcome.quota;
        const code = admissionErrors[r.prefix === 'duplicate' ? 'invalid' : r.prefix];
        const retryAfter = q ? Math.max(1, Math.ceil((Date.parse(q.resetsAt) - deps.now() * 1000) / 1000)) : undefined;
        throw apiError(
          code,
          r.message,
          q ? { quota: { plan: q.plan, period: q.period, limit: q.limit, used: q.used, resets_at: q.resetsAt } } : {},
          retryAfter ? { 'Retry-After': String(retryAfter) } : {},
        );
      }
      const own = await records.own(caller.user.id, outcome.eventId);
      return reply.code(outcome.status === 'accepted' ? 202 : 200).send({
        result: outcome.status,
        event_id: outcome.eventId,
        message: outcome.message,
        event: own.found ? recordView(own.record) : null,
      });
    },
  );

  http.get<{ Querystring: ListQuery }>(
    '/v1/events',
    access('user', {
      tags: ['events'],
      summary: 'Your published events, newest first, with their forwarding outcome',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          status: { type: 'string', enum: statuses },
          kind: { type: 'integer', minimum: 0, maximum: 65535 },
          from: { type: 'string', format: 'date-time', description: 'Received at or after this instant' },
          to: { type: 'string', format: 'date-time', description: 'Received before this instant' },
          ...pageQuery,
        },
      },
      response: {
        200: {
          type: 'object',
          required: ['events', 'next_cursor'],
          properties: {
            events: { type: 'array', items: { $ref: 'EventRecord#' } },
            next_cursor: { type: ['string', 'null'] },
          },
        },
      },
    }),
    async (req) => {
      const caller = callerOf(req);
      const q = req.query;
      const page = await records.list(caller.user.id, {
        status: q.status,
        kind: q.kind,
        from: q.from ? new Date(q.from) : undefined,
        to: q.to ? new Date(q.to) : undefined,
        after: q.cursor ? decodeCursor(q.cursor) : undefined,
        limit: q.limit,
      });
      const last = page.at(-1);
      return {
        events: page.map(recordView),
        next_cursor: page.length === q.limit && last ? encodeCursor(last.rowId) : null,
      };
    },
  );

  http.get<{ Params: { id: string } }>(
    '/v1/events/:id',
    access('user', {
      tags: ['events'],
      summary: "One of your events with each upstream relay's outcome and timings",
      params: { type: 'object', required: ['id'], properties: { id: hex64 } },
      response: { 200: { $ref: 'EventRecord#' } },
    }),
    async (req) => {
      const own = await records.own(callerOf(req).user.id, req.params.id);
      if (own.found) return recordView(own.record);
      throw own.reason === 'not_yours' ? apiError('not_your_event') : apiError('event_not_found');
    },
  );
}
