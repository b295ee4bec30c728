// usage_events (partitioned by month) and daily_usage_stats, written in batches: one multi-row INSERT for the
// events and one multi-row upsert for the stats per flush (core/ops/usage-recorder.ts buffers them).
import type { Knex } from 'knex';
import { arrayColumns, preparedColumns } from './array-columns.js';
import { numbered, queryPrepared } from './db.js';
import { partitionNameAt, partitionNames } from './partitions.js';

type UsageEventType =
  'quota_usage' | 'quota_exceeded' | 'quota_reset' | 'tier_change' | 'post_success' | 'post_failure' | 'relay_error';

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

/** PostgreSQL's "no partition of relation … found for row": SQLSTATE 23514 (check_violation), told apart by its text. */
function isNoPartition(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return e.code === '23514' && typeof e.message === 'string' && e.message.includes('no partition of relation');
}

const EVENT_COLUMNS =
  'user_id, event_type, event_action, occurred_at, source_platform, posts_used_before, posts_used_after, quota_limit, event_data, ip_address, timezone';

/**
 * Usage is buffered for up to a second (core/ops/usage-recorder.ts), in every process: what arrives after an account
 * was erased (status 'deleted', its rows gone) must not bring its usage back. A condition on the rows named `alias`.
 */
export const notErased = (alias: string): string =>
  `EXISTS (SELECT 1 FROM users u WHERE u.id = ${alias}.user_id AND u.status <> 'deleted')`;

// One array a column, prepared once per connection: PostgreSQL parses each value once, as its column's type. The
// rows were sent as one JSON document before (jsonb_populate_recordset), which it parsed whole and then again field
// by field: 7–8 % of its CPU at saturation. The enum goes as text (PGlite sends an array of a type it does not know as
// one string).
const INSERT_USAGE_EVENTS = numbered(`INSERT INTO usage_events (${EVENT_COLUMNS})
  SELECT r.user_id, CAST(r.event_type AS usage_event_type_enum), r.event_action, r.occurred_at, r.source_platform, r.posts_used_before,
    r.posts_used_after, r.quota_limit, CAST(r.event_data AS jsonb), r.ip_address, r.timezone
  FROM unnest(CAST(? AS uuid[]), CAST(? AS text[]), CAST(? AS text[]), CAST(? AS timestamptz[]),
    CAST(? AS text[]), CAST(? AS integer[]), CAST(? AS integer[]), CAST(? AS integer[]), CAST(? AS text[]),
    CAST(? AS inet[]), CAST(? AS text[])) AS r (${EVENT_COLUMNS})
  WHERE ${notErased('r')}`);

function insertValues(rows: readonly UsageEventRow[]): unknown[] {
  const col = preparedColumns(rows);
  return [
    col((r) => r.userId),
    col((r) => r.type),
    col((r) => r.action),
    col((r) => r.occurredAt.toISOString()),
    col((r) => r.sourcePlatform ?? null),
    col((r) => r.postsUsedBefore ?? null),
    col((r) => r.postsUsedAfter ?? null),
    col((r) => r.quotaLimit ?? null),
    col((r) => (r.data === undefined ? null : JSON.stringify(r.data))),
    col((r) => r.ip ?? null),
    col((r) => r.timezone ?? null),
  ];
}

/**
 * Inserts the rows in one statement, and returns the rows left out because their month has no partition. Partitions
 * are created ahead by maintenance (store/partitions.ts), never here: this runs while events are written, and
 * partition DDL on a write path is what deadlocked with the group commit (issue 18). A row outside the created
 * months means a clock far off or maintenance that stopped; the other rows are written, those are the caller's to
 * report.
 */
export async function insertUsageEvents(db: Knex, rows: readonly UsageEventRow[]): Promise<UsageEventRow[]> {
  if (rows.length === 0) return [];
  const insert = (some: readonly UsageEventRow[]) =>
    queryPrepared(db, 'nostrx_usage_events', INSERT_USAGE_EVENTS, insertValues(some));
  try {
    await insert(rows);
    return [];
  } catch (err) {
    if (!isNoPartition(err)) throw err;
  }
  const existing = await partitionNames(db, 'usage_events');
  const placed = rows.filter((r) => existing.has(partitionNameAt('usage_events', r.occurredAt)));
  if (placed.length > 0) await insert(placed);
  return rows.filter((r) => !existing.has(partitionNameAt('usage_events', r.occurredAt)));
}

/** Adds the deltas to daily_usage_stats in one upsert; an erased account's deltas are dropped (notErased). */
export async function addDailyStats(db: Knex, deltas: readonly DailyStatsDelta[]): Promise<void> {
  if (deltas.length === 0) return;
  const col = arrayColumns(db, deltas);
  await db.raw(
    `INSERT INTO daily_usage_stats AS d (user_id, stat_date, total_posts, successful_posts, failed_posts, twitter_posts, x_com_posts)
     SELECT r.user_id, r.stat_date, r.total_posts, r.successful_posts, r.failed_posts, r.twitter_posts, r.x_com_posts
     FROM unnest(CAST(:users AS uuid[]), CAST(:dates AS date[]), CAST(:total AS integer[]), CAST(:ok AS integer[]),
       CAST(:failed AS integer[]), CAST(:twitter AS integer[]), CAST(:xcom AS integer[]))
       AS r (user_id, stat_date, total_posts, successful_posts, failed_posts, twitter_posts, x_com_posts)
     WHERE ${notErased('r')}
     ON CONFLICT (user_id, stat_date) DO UPDATE SET
       total_posts = d.total_posts + EXCLUDED.total_posts,
       successful_posts = d.successful_posts + EXCLUDED.successful_posts,
       failed_posts = d.failed_posts + EXCLUDED.failed_posts,
       twitter_posts = d.twitter_posts + EXCLUDED.twitter_posts,
       x_com_posts = d.x_com_posts + EXCLUDED.x_com_posts,
       updated_at = now()`,
    {
      users: col((d) => d.userId),
      dates: col((d) => d.date),
      total: col((d) => d.totalPosts),
      ok: col((d) => d.successfulPosts),
      failed: col((d) => d.failedPosts),
      twitter: col((d) => d.twitterPosts),
      xcom: col((d) => d.xComPosts),
    },
  );
}
