// GET /v1/stats?from&to: the caller's daily stats, on plans with analytics (403 naming the plan that has them). Its
// days are the caller's own (users.timezone), as the stats are kept: without `to`, the range ends on their today.
import type { FastifyInstance } from 'fastify';
import { checkFeature, periodsAt, refusal } from '../core/quota/index.js';
import { dateRange, type DailyStat } from '../core/ops/index.js';
import { callerOf } from './auth.js';
import { apiError } from './errors.js';
import { reasonOf } from '../nips/result.js';
import type { ApiServices } from './services.js';

/**
 * The `from` and `to` of a range query, dates in `whose` days: UTC for the reports, the caller's time zone for
 * their own stats (daily_usage_stats.stat_date is the user's local date).
 */
export function dateQueryIn(whose: string) {
  return {
    from: {
      type: 'string',
      format: 'date',
      description: `First day (YYYY-MM-DD, ${whose}); default: the route's number of days before \`to\``,
    },
    to: { type: 'string', format: 'date', description: `Last day, inclusive (YYYY-MM-DD, ${whose}); default: today` },
  } as const;
}

const statColumns = {
  total_posts: { type: 'integer' },
  successful_posts: { type: 'integer' },
  failed_posts: { type: 'integer' },
  unique_relays_used: { type: 'integer' },
  total_relay_attempts: { type: 'integer' },
  successful_relay_publishes: { type: 'integer' },
  avg_publish_time_ms: { type: ['integer', 'null'] },
  max_publish_time_ms: { type: ['integer', 'null'] },
  min_publish_time_ms: { type: ['integer', 'null'] },
  twitter_posts: { type: 'integer' },
  x_com_posts: { type: 'integer' },
} as const;

function dayView(d: DailyStat) {
  return {
    date: d.date,
    total_posts: d.totalPosts,
    successful_posts: d.successfulPosts,
    failed_posts: d.failedPosts,
    unique_relays_used: d.uniqueRelaysUsed,
    total_relay_attempts: d.totalRelayAttempts,
    successful_relay_publishes: d.successfulRelayPublishes,
    avg_publish_time_ms: d.avgPublishTimeMs,
    max_publish_time_ms: d.maxPublishTimeMs,
    min_publish_time_ms: d.minPublishTimeMs,
    twitter_posts: d.twitterPosts,
    x_com_posts: d.xComPosts,
  };
}

/** The range of a report query, or a 400 naming the field. */
export function rangeOrThrow(q: { from?: string; to?: string }, today: string, defaultDays: number) {
  const r = dateRange(q, today, defaultDays);
  if (!r.ok)
    throw apiError('validation_failed', `querystring.${r.field ?? 'from'}: ${reasonOf(r.rejection)}`, {
      field: r.field ?? 'from',
      location: 'querystring',
    });
  return r.value;
}

export function registerStatsRoutes(http: FastifyInstance, deps: ApiServices): void {
  http.get<{ Querystring: { from?: string; to?: string } }>(
    '/v1/stats',
    deps.access('user', {
      tags: ['stats'],
      summary: 'Your daily stats (plans with analytics)',
      querystring: { type: 'object', additionalProperties: false, properties: dateQueryIn('your time zone') },
      response: {
        200: {
          type: 'object',
          required: ['from', 'to', 'days', 'totals'],
          properties: {
            from: { type: 'string', format: 'date' },
            to: { type: 'string', format: 'date' },
            days: {
              type: 'array',
              items: { type: 'object', properties: { date: { type: 'string', format: 'date' }, ...statColumns } },
            },
            totals: {
              type: 'object',
              properties: {
                total_posts: { type: 'integer' },
                successful_posts: { type: 'integer' },
                failed_posts: { type: 'integer' },
                total_relay_attempts: { type: 'integer' },
                successful_relay_publishes: { type: 'integer' },
              },
            },
          },
        },
      },
    }),
    async (req) => {
      const caller = callerOf(req);
      const feature = await checkFeature(deps.plans, caller.user.id, 'analyticsEnabled');
      if (!feature.allowed)
        throw apiError(
          'plan_required',
          refusal(feature, 'analyticsEnabled'),
          feature.upgrade ? { plan: feature.upgrade.code } : {},
        );
      const today = periodsAt(deps.now() * 1000, caller.user.timezone).daily.date;
      const range = rangeOrThrow(req.query, today, 30);
      const days = await deps.reports.userStats(caller.user.id, range);
      const sum = (f: (d: DailyStat) => number) => days.reduce((n, d) => n + f(d), 0);
      return {
        ...range,
        days: days.map(dayView),
        totals: {
          total_posts: sum((d) => d.totalPosts),
          successful_posts: sum((d) => d.successfulPosts),
          failed_posts: sum((d) => d.failedPosts),
          total_relay_attempts: sum((d) => d.totalRelayAttempts),
          successful_relay_publishes: sum((d) => d.successfulRelayPublishes),
        },
      };
    },
  );
}
