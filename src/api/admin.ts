// Admin routes (NIP-98 by a pubkey in ADMIN_PUBKEYS; 403 for anyone else): the users, filtered and paginated;
// changing a user's plan or status (core/accounts/account-admin.ts, audited); and the founding document's reports.
import type { FastifyInstance } from 'fastify';
import { AccountAdminError, changePlan, setUserStatus } from '../core/accounts/index.js';
import type { UserSummary } from '../core/accounts/index.js';
import { callerOf } from './auth.js';
import { apiError } from './errors.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { ApiServices } from './services.js';
import { hex64, pageQuery, successRate, uuid } from './schemas.js';
import { dateQueryIn, rangeOrThrow } from './stats.js';
import { utcToday } from '../core/ops/index.js';

type UserStatus = UserSummary['status'];
const statuses = ['active', 'suspended', 'deleted', 'pending_verification'] as const;

const adminUserSchema = {
  $id: 'AdminUser',
  type: 'object',
  required: ['id', 'pubkey', 'status', 'plan', 'created_at'],
  properties: {
    id: uuid,
    pubkey: hex64,
    status: { type: 'string', enum: statuses },
    plan: { type: 'string' },
    display_name: { type: ['string', 'null'] },
    email: { type: ['string', 'null'] },
    created_at: { type: 'string', format: 'date-time' },
    last_active_at: { type: 'string', format: 'date-time' },
  },
} as const;

function userView(u: UserSummary) {
  return {
    id: u.id,
    pubkey: u.pubkey,
    status: u.status,
    plan: u.plan,
    display_name: u.displayName,
    email: u.email,
    created_at: u.createdAt,
    last_active_at: u.lastActiveAt,
  };
}

const userParams = { type: 'object', required: ['id'], properties: { id: uuid } } as const;
const rangeQuery = { type: 'object', additionalProperties: false, properties: dateQueryIn('UTC') } as const;
const report = (items: Record<string, unknown>) =>
  ({
    200: {
      type: 'object',
      required: ['from', 'to', 'rows'],
      properties: {
        from: { type: 'string', format: 'date' },
        to: { type: 'string', format: 'date' },
        rows: { type: 'array', items: { type: 'object', properties: items } },
      },
    },
  }) as const;

function adminFailure(err: unknown): never {
  if (err instanceof AccountAdminError) {
    if (err.code === 'unknown_user') throw apiError('user_not_found', err.message);
    if (err.code === 'unknown_plan') throw apiError('plan_not_found', err.message, { field: 'plan', location: 'body' });
    throw apiError('validation_failed', err.message, {
      field: err.code === 'inactive_plan' ? 'plan' : 'status',
      location: 'body',
    });
  }
  throw err;
}

export function registerAdminRoutes(http: FastifyInstance, deps: ApiServices): void {
  const { access, directory, reports } = deps;
  http.addSchema(adminUserSchema);

  const current = async (id: string) => {
    const u = await directory.get(id);
    if (!u) throw apiError('user_not_found');
    return userView(u);
  };

  http.get<{
    Querystring: { status?: UserStatus; plan?: string; pubkey?: string; q?: string; limit: number; cursor?: string };
  }>(
    '/v1/admin/users',
    access('admin', {
      tags: ['admin'],
      summary: 'Users, newest first, filtered by status, plan, pubkey or a part of their email or display name',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          status: { type: 'string', enum: statuses },
          plan: { type: 'string', minLength: 1, maxLength: 50 },
          pubkey: hex64,
          q: { type: 'string', minLength: 1, maxLength: 100 },
          ...pageQuery,
        },
      },
      response: {
        200: {
          type: 'object',
          required: ['users', 'next_cursor'],
          properties: {
            users: { type: 'array', items: { $ref: 'AdminUser#' } },
            next_cursor: { type: ['string', 'null'] },
          },
        },
      },
    }),
    async (req) => {
      const q = req.query;
      const after = q.cursor ? decodeCursor(q.cursor) : undefined;
      const users = await directory.list({
        status: q.status,
        plan: q.plan,
        pubkey: q.pubkey,
        q: q.q,
        after,
        limit: q.limit,
      });
      const last = users.at(-1);
      return {
        users: users.map(userView),
        next_cursor: users.length === q.limit && last ? encodeCursor(last.id) : null,
      };
    },
  );

  http.get<{ Params: { id: string } }>(
    '/v1/admin/users/:id',
    access('admin', {
      tags: ['admin'],
      summary: 'One user with their effective plan',
      params: userParams,
      response: { 200: { $ref: 'AdminUser#' } },
    }),
    async (req) => current(req.params.id),
  );

  http.put<{ Params: { id: string }; Body: { plan: string } }>(
    '/v1/admin/users/:id/plan',
    access('admin', {
      tags: ['admin'],
      summary: "Change a user's plan (their new limits apply to their next event; audited)",
      params: userParams,
      body: {
        type: 'object',
        required: ['plan'],
        additionalProperties: false,
        properties: { plan: { type: 'string', minLength: 1, maxLength: 50 } },
      },
      response: { 200: { $ref: 'AdminUser#' } },
    }),
    async (req) => {
      await changePlan(deps.accountAdmin, req.params.id, req.body.plan, callerOf(req).pubkey).catch(adminFailure);
      return current(req.params.id);
    },
  );

  http.put<{ Params: { id: string }; Body: { status: UserStatus } }>(
    '/v1/admin/users/:id/status',
    access('admin', {
      tags: ['admin'],
      summary: "Change a user's status (suspended and deleted users are refused from their next event on; audited)",
      params: userParams,
      body: {
        type: 'object',
        required: ['status'],
        additionalProperties: false,
        properties: { status: { type: 'string', enum: statuses } },
      },
      response: { 200: { $ref: 'AdminUser#' } },
    }),
    async (req) => {
      await setUserStatus(deps.accountAdmin, req.params.id, req.body.status, callerOf(req).pubkey).catch(adminFailure);
      return current(req.params.id);
    },
  );

  http.get<{ Querystring: { from?: string; to?: string } }>(
    '/v1/admin/reports/revenue',
    access('admin', {
      tags: ['admin'],
      summary: 'Revenue by day and plan: succeeded payments per UTC day, plan and currency (default: the last 30 days)',
      querystring: rangeQuery,
      response: report({
        date: { type: 'string', format: 'date' },
        plan: { type: 'string' },
        currency: { type: 'string' },
        payments: { type: 'integer' },
        revenue: { type: 'string' },
        average_payment: { type: 'string' },
      }),
    }),
    async (req) => {
      const range = rangeOrThrow(req.query, utcToday(deps.now()), 30);
      const rows = await reports.revenue(range);
      return {
        ...range,
        rows: rows.map((r) => ({
          date: r.date,
          plan: r.plan,
          currency: r.currency,
          payments: r.payments,
          revenue: r.revenue,
          average_payment: r.averagePayment,
        })),
      };
    },
  );

  http.get<{ Querystring: { from?: string; to?: string } }>(
    '/v1/admin/reports/engagement',
    access('admin', {
      tags: ['admin'],
      summary: 'Engagement by plan: active users, posts and success rate (default: the last 7 days)',
      querystring: rangeQuery,
      response: report({
        plan: { type: 'string' },
        active_users: { type: 'integer' },
        user_days: { type: 'integer' },
        total_posts: { type: 'integer' },
        successful_posts: { type: 'integer' },
        avg_posts_per_user_day: { type: 'number' },
        success_rate: successRate,
      }),
    }),
    async (req) => {
      const range = rangeOrThrow(req.query, utcToday(deps.now()), 7);
      const rows = await reports.engagement(range);
      return {
        ...range,
        rows: rows.map((r) => ({
          plan: r.plan,
          active_users: r.activeUsers,
          user_days: r.userDays,
          total_posts: r.totalPosts,
          successful_posts: r.successfulPosts,
          avg_posts_per_user_day: r.avgPostsPerUserDay,
          success_rate: r.successRate,
        })),
      };
    },
  );

  http.get<{ Querystring: { from?: string; to?: string } }>(
    '/v1/admin/reports/relays',
    access('admin', {
      tags: ['admin'],
      summary: 'Relay performance: forwarding outcomes and publish times per upstream relay (default: the last 7 days)',
      querystring: rangeQuery,
      response: report({
        relay_url: { type: 'string' },
        publishes: { type: 'integer' },
        published: { type: 'integer' },
        rejected: { type: 'integer' },
        failed: { type: 'integer' },
        timed_out: { type: 'integer' },
        unfinished: { type: 'integer' },
        success_rate: successRate,
        avg_publish_time_ms: { type: ['number', 'null'] },
        p95_publish_time_ms: { type: ['number', 'null'] },
      }),
    }),
    async (req) => {
      const range = rangeOrThrow(req.query, utcToday(deps.now()), 7);
      const rows = await reports.relays(range);
      return {
        ...range,
        rows: rows.map((r) => ({
          relay_url: r.relayUrl,
          publishes: r.publishes,
          published: r.published,
          rejected: r.rejected,
          failed: r.failed,
          timed_out: r.timedOut,
          unfinished: r.unfinished,
          success_rate: r.successRate,
          avg_publish_time_ms: r.avgPublishTimeMs,
          p95_publish_time_ms: r.p95PublishTimeMs,
        })),
      };
    },
  );
}
