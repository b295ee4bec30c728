// usage_events (partitioned by month) and daily_usage_stats, written in batches: one multi-row INSERT for the
// events and one multi-row upsert for the stats per flush (core/usage-recorder.ts buffers them).
import type { Knex } from 'knex';
import { ensureMonthlyPartitions } from './partitions.js';

export type UsageEventType = 'quota_usage' | 'quota_exceeded' | 'quota_reset' | 'tier_change' | 'post_success' | 'post_failure' | 'relay_error';

export interface UsageEventRow {
  readonly userId: string;
  readonly type: UsageEventType;
  readonly action: string;
  readonly occurredAt: Date;
  readonly sourcePlatform?: string | undefined;
  readonly postsUsedBefore?: number | undefined;
  readonly postsUsedAfter?: number | undefined;
  readonly quotaLimit?: number | undefined;
  readonly data?: Record<string, unknown> | undefined;
  readonly ip?: string | undefined;
  readonly timezone?: string | undefined;
}

/** Increments of one user's row for one day; every field is added to what is stored. */
export interface DailyStatsDelta {
  readonly userId: string;
  /** YYYY-MM-DD, the user's local date */
  readonly date: string;
  totalPosts: number;
  successfulPosts: number;
  failedPosts: number;
  twitterPosts: number;
  xComPosts: number;
}

// 23514 check_violation is also what PostgreSQL raises for "no partition of relation found for row".
const NO_PARTITION = '23514';

function eventRecord(r: UsageEventRow): Record<string, unknown> {
  return {
    user_id: r.userId,
    event_type: r.type,
    event_action: r.action,
    occurred_at: r.occurredAt.toISOString(),
    source_platform: r.sourcePlatform ?? null,
    posts_used_before: r.postsUsedBefore ?? null,
    posts_used_after: r.postsUsedAfter ?? null,
    quota_limit: r.quotaLimit ?? null,
    event_data: r.data ? JSON.stringify(r.data) : null,
    ip_address: r.ip ?? null,
    timezone: r.timezone ?? null,
  };
}

/**
 * Inserts the rows in one statement. A row in a month whose partition does not exist yet (the clock crossed
 * into a month before maintenance created it) makes the statement fail; the partitions are then created and the
 * insert is tried once more.
 */
export async function insertUsageEvents(db: Knex, rows: readonly UsageEventRow[]): Promise<void> {
  if (rows.length === 0) return;
  const records = rows.map(eventRecord);
  try {
    await db('usage_events').insert(records);
  } catch (err) {
    if ((err as { code?: string }).code !== NO_PARTITION) throw err;
    const months = new Map<string, Date>();
    for (const r of rows) months.set(r.occurredAt.toISOString().slice(0, 7), r.occurredAt);
    for (const d of months.values()) await ensureMonthlyPartitions(db, d, 0);
    await db('usage_events').insert(records);
  }
}

/** Adds the deltas to daily_usage_stats in one upsert. */
export async function addDailyStats(db: Knex, deltas: readonly DailyStatsDelta[]): Promise<void> {
  if (deltas.length === 0) return;
  const add = (col: string) => db.raw('?? + excluded.??', [`daily_usage_stats.${col}`, col]);
  await db('daily_usage_stats')
    .insert(
      deltas.map((d) => ({
        user_id: d.userId,
        stat_date: d.date,
        total_posts: d.totalPosts,
        successful_posts: d.successfulPosts,
        failed_posts: d.failedPosts,
        twitter_posts: d.twitterPosts,
        x_com_posts: d.xComPosts,
      })),
    )
    .onConflict(['user_id', 'stat_date'])
    .merge({
      total_posts: add('total_posts'),
      successful_posts: add('successful_posts'),
      failed_posts: add('failed_posts'),
      twitter_posts: add('twitter_posts'),
      x_com_posts: add('x_com_posts'),
      updated_at: db.fn.now(),
    });
}
