// What the operator's console reads beyond the reports (admin only, NIP-98): GET /v1/admin/overview, the live
// figures of this process (core/ops/live-overview.ts), and GET /v1/admin/audit, the audit trail filtered by actor,
// table and user, newest first, a page at a time.
import type { FastifyInstance } from 'fastify';
import type { AuditLogEntry, Overview } from '../core/ops/index.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { ApiServices } from './services.js';
import { pageQuery, successRate, uuid } from './schemas.js';

const series = { type: 'array', items: { type: 'integer' } } as const;
const nullableNumber = { type: ['number', 'null'] } as const;

const overviewSchema = {
  type: 'object',
  required: ['at', 'sample_seconds', 'connections', 'subscriptions', 'admission', 'outbox', 'per_minute', 'relays'],
  properties: {
    at: { type: 'string', format: 'date-time' },
    sample_seconds: { type: 'number' },
    connections: { type: 'integer', description: 'Open WebSocket connections to this process' },
    subscriptions: { type: 'integer' },
    admission: {
      type: 'object',
      properties: {
        p99_ms: {
          ...nullableNumber,
          description:
            'Upper bound of the histogram bucket holding the 99th percentile; null without admissions or past the last bucket',
        },
        count: { type: 'integer' },
        window_seconds: { type: 'integer' },
      },
    },
    outbox: { type: 'object', properties: { depth: { type: 'integer' }, oldest_seconds: { type: 'integer' } } },
    per_minute: {
      type: 'object',
      description: 'Admissions per minute over the last hour, oldest first',
      properties: {
        minutes: { ...series, description: 'Start of each minute, unix seconds' },
        accepted: series,
        duplicate: series,
        refused: {
          type: 'object',
          additionalProperties: series,
          description: 'By NIP-01 prefix: invalid, blocked, rate-limited …',
        },
      },
    },
    relays: {
      type: 'object',
      properties: {
        window_seconds: { type: 'integer' },
        rows: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              url: {
                type: 'string',
                description: "An UPSTREAM_RELAYS URL, or 'custom' for users' own relays together",
              },
              attempts: { type: 'object', additionalProperties: { type: 'integer' } },
              success_rate: successRate,
              avg_latency_ms: nullableNumber,
              breaker: { type: ['string', 'null'], enum: ['closed', 'open', 'half-open', null] },
              paused_until: { type: ['string', 'null'], format: 'date-time' },
            },
          },
        },
      },
    },
  },
} as const;

function overviewView(o: Overview) {
  return {
    at: o.at,
    sample_seconds: o.sampleSeconds,
    connections: o.connections,
    subscriptions: o.subscriptions,
    admission: { p99_ms: o.admission.p99Ms, count: o.admission.count, window_seconds: o.admission.windowSeconds },
    outbox: { depth: o.outbox.depth, oldest_seconds: o.outbox.oldestSeconds },
    per_minute: o.perMinute,
    relays: {
      window_seconds: o.relays.windowSeconds,
      rows: o.relays.rows.map((r) => ({
        url: r.url,
        attempts: r.attempts,
        success_rate: r.successRate,
        avg_latency_ms: r.avgLatencyMs,
        breaker: r.breaker,
        paused_until: r.pausedUntil,
      })),
    },
  };
}

function auditView(e: AuditLogEntry) {
  return {
    id: e.id,
    table: e.table,
    operation: e.operation,
    user_id: e.userId,
    actor: e.actor,
    old_values: e.oldValues,
    new_values: e.newValues,
    created_at: e.createdAt,
  };
}

interface AuditQuery {
  actor?: string;
  table?: string;
  user_id?: string;
  limit: number;
  cursor?: string;
}

export function registerAdminConsoleRoutes(http: FastifyInstance, deps: ApiServices): void {
  const { access, overview, auditTrail } = deps;

  http.get(
    '/v1/admin/overview',
    access('admin', {
      tags: ['admin'],
      summary:
        "This process's live figures: admissions per minute, connections, admission p99, outbox backlog, upstream relays' health",
      response: { 200: overviewSchema },
    }),
    async () => overviewView(await overview.overview()),
  );

  http.get<{ Querystring: AuditQuery }>(
    '/v1/admin/audit',
    access('admin', {
      tags: ['admin'],
      summary:
        'The audit trail, newest first, filtered by actor (an admin pubkey, user, or a system name), table and user',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          actor: { type: 'string', minLength: 1, maxLength: 128 },
          table: { type: 'string', minLength: 1, maxLength: 50 },
          user_id: uuid,
          ...pageQuery,
        },
      },
      response: {
        200: {
          type: 'object',
          required: ['entries', 'tables', 'next_cursor'],
          properties: {
            entries: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  id: uuid,
                  table: { type: 'string' },
                  operation: { type: 'string' },
                  user_id: { anyOf: [uuid, { type: 'null' }] },
                  actor: { type: ['string', 'null'] },
                  old_values: {},
                  new_values: {},
                  created_at: { type: 'string', format: 'date-time' },
                },
              },
            },
            tables: { type: 'array', items: { type: 'string' }, description: 'Every table the trail has rows about' },
            next_cursor: { type: ['string', 'null'] },
          },
        },
      },
    }),
    async (req) => {
      const q = req.query;
      const after = q.cursor ? decodeCursor(q.cursor) : undefined;
      const [entries, tables] = await Promise.all([
        auditTrail.list({ actor: q.actor, table: q.table, userId: q.user_id, after, limit: q.limit }),
        auditTrail.tables(),
      ]);
      const last = entries.at(-1);
      return {
        entries: entries.map(auditView),
        tables,
        next_cursor: entries.length === q.limit && last ? encodeCursor(last.id) : null,
      };
    },
  );
}
