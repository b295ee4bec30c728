// Read-only figures: a user's daily stats (GET /v1/stats) and the founding document's three reports (revenue by
// day and plan, engagement by plan, relay performance) for the admin API. Date ranges are inclusive calendar days
// in UTC ('YYYY-MM-DD'). Differences from the founding document's queries are marked REPAIR.
import type { Knex } from 'knex';

export interface DateRange {
  /** First day, YYYY-MM-DD (UTC). */
  readonly from: string;
  /** Last day, YYYY-MM-DD (UTC), inclusive. */
  readonly to: string;
}

const num = (v: unknown): number => Number(v ?? 0);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
/** The instant after the last day of the range: ranges are filtered as [from, to + 1 day). */
const endOf = (r: DateRange) => new Date(Date.parse(`${r.to}T00:00:00Z`) + 86_400_000);
const startOf = (r: DateRange) => new Date(`${r.from}T00:00:00Z`);
const dateText = (v: unknown): string => (v instanceof Date ? v.toISOString().slice(0, 10) : String(v).slice(0, 10));

export interface DailyStat {
  readonly date: string;
  readonly totalPosts: number;
  readonly successfulPosts: number;
  readonly failedPosts: number;
  readonly uniqueRelaysUsed: number;
  readonly totalRelayAttempts: number;
  readonly successfulRelayPublishes: number;
  readonly avgPublishTimeMs: number | null;
  readonly maxPublishTimeMs: number | null;
  readonly minPublishTimeMs: number | null;
  readonly twitterPosts: number;
  readonly xComPosts: number;
}

/** daily_usage_stats of one user in the range (stat_date is the user's local date), oldest first. */
export async function userDailyStats(db: Knex, userId: string, range: DateRange): Promise<DailyStat[]> {
  const rows = (await db('daily_usage_stats')
    .where({ user_id: userId })
    .whereBetween('stat_date', [range.from, range.to])
    .orderBy('stat_date')
    .select('*', db.raw('stat_date::text AS day'))) as Record<string, unknown>[];
  return rows.map((r) => ({
    date: dateText(r.day),
    totalPosts: num(r.total_posts),
    successfulPosts: num(r.successful_posts),
    failedPosts: num(r.failed_posts),
    uniqueRelaysUsed: num(r.unique_relays_used),
    totalRelayAttempts: num(r.total_relay_attempts),
    successfulRelayPublishes: num(r.successful_relay_publishes),
    avgPublishTimeMs: numOrNull(r.avg_publish_time_ms),
    maxPublishTimeMs: numOrNull(r.max_publish_time_ms),
    minPublishTimeMs: numOrNull(r.min_publish_time_ms),
    twitterPosts: num(r.twitter_posts),
    xComPosts: num(r.x_com_posts),
  }));
}

export interface RevenueRow {
  readonly date: string;
  readonly plan: string;
  readonly currency: string;
  readonly payments: number;
  readonly revenue: string;
  readonly averagePayment: string;
}

/**
 * Succeeded payments per UTC day, plan and currency, newest day first.
 * REPAIR: grouped by currency too (sums of different currencies mean nothing); days are UTC dates, not the
 * session time zone's; payments without a subscription are kept, under plan 'unassigned' (an inner join dropped them).
 */
export async function revenueByDayAndPlan(db: Knex, range: DateRange): Promise<RevenueRow[]> {
  const rows = (await db('payments as p')
    .leftJoin('user_subscriptions as us', 'us.id', 'p.subscription_id')
    .leftJoin('subscription_plans as sp', 'sp.id', 'us.plan_id')
    .where('p.status', 'succeeded')
    .where('p.created_at', '>=', startOf(range))
    .where('p.created_at', '<', endOf(range))
    .groupByRaw('1, 2, 3')
    .orderByRaw('1 DESC, 2, 3')
    .select(
      db.raw(`((p.created_at AT TIME ZONE 'UTC')::date)::text AS day`),
      db.raw(`COALESCE(sp.plan_code, 'unassigned') AS plan_code`),
      'p.currency',
      db.raw('COUNT(*) AS payment_count'),
      db.raw('SUM(p.amount)::text AS total_revenue'),
      db.raw('ROUND(AVG(p.amount), 2)::text AS avg_payment'),
    )) as {
    day: string;
    plan_code: string;
    currency: string;
    payment_count: string;
    total_revenue: string;
    avg_payment: string;
  }[];
  return rows.map((r) => ({
    date: dateText(r.day),
    plan: r.plan_code,
    currency: r.currency,
    payments: num(r.payment_count),
    revenue: r.total_revenue,
    averagePayment: r.avg_payment,
  }));
}

export interface EngagementRow {
  readonly plan: string;
  readonly activeUsers: number;
  readonly userDays: number;
  readonly totalPosts: number;
  readonly successfulPosts: number;
  readonly avgPostsPerUserDay: number;
  /** Percent (0–100, two decimals) of the range's posts that were published; null without posts. */
  readonly successRate: number | null;
}

/**
 * Users with stats in the range, by their current plan.
 * REPAIR: users without an active subscription are counted under 'basic' (the founding query's inner join left
 * the whole free tier out); the success rate is the ratio of the sums, not the mean of daily ratios (a day with
 * one post weighed as much as a day with a hundred).
 */
export async function engagementByPlan(db: Knex, range: DateRange): Promise<EngagementRow[]> {
  const rows = (await db('daily_usage_stats as d')
    .leftJoin('user_subscriptions as us', function joinActive() {
      this.on('us.user_id', '=', 'd.user_id').andOn('us.status', '=', db.raw('?', ['active']));
    })
    .leftJoin('subscription_plans as sp', 'sp.id', 'us.plan_id')
    .whereBetween('d.stat_date', [range.from, range.to])
    .groupByRaw('1')
    .orderByRaw('1')
    .select(
      db.raw(`COALESCE(sp.plan_code, 'basic') AS plan_code`),
      db.raw('COUNT(DISTINCT d.user_id) AS active_users'),
      db.raw('COUNT(*) AS user_days'),
      db.raw('SUM(d.total_posts) AS total_posts'),
      db.raw('SUM(d.successful_posts) AS successful_posts'),
      db.raw('ROUND(AVG(d.total_posts), 2)::text AS avg_posts'),
      db.raw('ROUND(100.0 * SUM(d.successful_posts) / NULLIF(SUM(d.total_posts), 0), 2)::text AS success_rate'),
    )) as Record<string, unknown>[];
  return rows.map((r) => ({
    plan: String(r.plan_code),
    activeUsers: num(r.active_users),
    userDays: num(r.user_days),
    totalPosts: num(r.total_posts),
    successfulPosts: num(r.successful_posts),
    avgPostsPerUserDay: num(r.avg_posts),
    successRate: numOrNull(r.success_rate),
  }));
}

export interface RelayPerformanceRow {
  readonly relayUrl: string;
  readonly publishes: number;
  readonly published: number;
  readonly rejected: number;
  readonly failed: number;
  readonly timedOut: number;
  readonly unfinished: number;
  /** Percent of finished publishes the relay took; null when none finished. */
  readonly successRate: number | null;
  readonly avgPublishTimeMs: number | null;
  readonly p95PublishTimeMs: number | null;
}

/**
 * Forwarding results per upstream relay over publishes queued in the range, best first.
 * REPAIR: grouped by relay URL over relay_publishes, so the operator's default relays (and relays users removed)
 * are measured too, not only active user_relays rows; filtered on created_at (the partition key), not
 * attempted_at, so the query reads only the months of the range.
 */
export async function relayPerformance(db: Knex, range: DateRange): Promise<RelayPerformanceRow[]> {
  const rows = (await db('relay_publishes as rp')
    .where('rp.created_at', '>=', startOf(range))
    .where('rp.created_at', '<', endOf(range))
    .groupBy('rp.relay_url')
    .orderByRaw('success_rate DESC NULLS LAST, avg_ms ASC NULLS LAST, rp.relay_url')
    .select(
      'rp.relay_url',
      db.raw('COUNT(*) AS publishes'),
      db.raw(`COUNT(*) FILTER (WHERE rp.status = 'published') AS published`),
      db.raw(`COUNT(*) FILTER (WHERE rp.status = 'rejected') AS rejected`),
      db.raw(`COUNT(*) FILTER (WHERE rp.status = 'failed') AS failed`),
      db.raw(`COUNT(*) FILTER (WHERE rp.status = 'timeout') AS timed_out`),
      db.raw(`COUNT(*) FILTER (WHERE rp.status NOT IN ('published', 'rejected', 'failed', 'timeout')) AS unfinished`),
      db.raw(
        `ROUND(100.0 * COUNT(*) FILTER (WHERE rp.status = 'published') / NULLIF(COUNT(*) FILTER (WHERE rp.status IN ('published', 'rejected', 'failed', 'timeout')), 0), 2) AS success_rate`,
      ),
      db.raw(`ROUND(AVG(rp.total_time_ms) FILTER (WHERE rp.status = 'published')) AS avg_ms`),
      db.raw(
        `ROUND(percentile_cont(0.95) WITHIN GROUP (ORDER BY rp.total_time_ms) FILTER (WHERE rp.status = 'published')) AS p95_ms`,
      ),
    )) as Record<string, unknown>[];
  return rows.map((r) => ({
    relayUrl: String(r.relay_url),
    publishes: num(r.publishes),
    published: num(r.published),
    rejected: num(r.rejected),
    failed: num(r.failed),
    timedOut: num(r.timed_out),
    unfinished: num(r.unfinished),
    successRate: numOrNull(r.success_rate),
    avgPublishTimeMs: numOrNull(r.avg_ms),
    p95PublishTimeMs: numOrNull(r.p95_ms),
  }));
}
