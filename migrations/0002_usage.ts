// Quotas and usage: user_quotas (the Postgres quota ledger that arbitrates admission), usage_events (partitioned
// by month) and daily_usage_stats. Source: spec §3, "Quota Rules", "Partitioning Strategy". The general rules
// (one statement per raw call, NOT NULL defaults, no index duplicating a UNIQUE) are in 0001_accounts.ts.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  // REPAIR: enum types before the tables that use them.
  `CREATE TYPE quota_type_enum AS ENUM ('daily', 'monthly', 'yearly')`,
  `CREATE TYPE usage_event_type_enum AS ENUM (
    'quota_usage', 'quota_exceeded', 'quota_reset', 'tier_change', 'post_success', 'post_failure', 'relay_error'
  )`,

  // REPAIR: the spec's `CHECK (posts_used <= posts_limit)` contradicts "-1 = unlimited" (every post on an
  // unlimited plan would violate it); it is `posts_limit = -1 OR posts_used <= posts_limit`.
  // REPAIR: the spec's `CHECK (quota_date <= CURRENT_DATE)` is not created: CHECKs must be immutable, and
  // CURRENT_DATE is not. It was also wrong: quota days are in the user's timezone, which can be a day ahead of the
  // server's CURRENT_DATE. The writer derives quota_date from the user's timezone.
  // REPAIR: posts_used and quota_type are NOT NULL. A NULL posts_used passes any CHECK and `posts_used + 1`
  // stays NULL, so the ledger would never refuse; a NULL quota_type or user_id would defeat the UNIQUE key.
  `CREATE TABLE user_quotas (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    quota_date DATE NOT NULL,
    quota_type quota_type_enum NOT NULL DEFAULT 'daily',
    posts_used INTEGER NOT NULL DEFAULT 0,
    posts_limit INTEGER NOT NULL,
    resets_at TIMESTAMPTZ NOT NULL,
    last_reset_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT unique_user_quota_date UNIQUE (user_id, quota_date, quota_type),
    CONSTRAINT usage_within_limit CHECK (posts_limit = -1 OR posts_used <= posts_limit),
    CONSTRAINT valid_quota_counts CHECK (posts_used >= 0 AND posts_limit >= -1)
  )`,
  // idx_quotas_user_date (user_id, quota_date) is not created: it is the leading prefix of unique_user_quota_date.
  // REPAIR: the spec's idx_quota_current_period (`WHERE quota_date >= CURRENT_DATE - INTERVAL '1 day'`) is not
  // allowed (index predicates must be immutable). Its plain form (user_id, quota_date) is, again, the prefix of
  // unique_user_quota_date, so nothing replaces it.
  `CREATE INDEX idx_quotas_resets_at ON user_quotas (resets_at)`,
  `CREATE INDEX idx_quotas_updated ON user_quotas (updated_at)`,

  // REPAIR: the spec declares partitions `PARTITION OF usage_events` but never makes the table partitioned; it is
  // `PARTITION BY RANGE (occurred_at)` here. A partitioned table's primary key must contain the partition key, so
  // the key is (id, occurred_at), and occurred_at is NOT NULL (a NULL key has no partition to go to).
  // REPAIR: the spec's `CHECK (user_id IS NOT NULL)` (valid_usage_user) is the column constraint NOT NULL.
  // Monthly partitions are created by src/store/partitions.ts (ensureMonthlyPartitions), first in 0004.
  // No DEFAULT partition: rows outside the created months fail loudly rather than pile up in a default partition
  // that would then block creating the month they belong to.
  `CREATE TABLE usage_events (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event_type usage_event_type_enum NOT NULL,
    event_action VARCHAR(50) NOT NULL,
    source_platform VARCHAR(50) DEFAULT 'twitter',
    extension_version VARCHAR(20),
    posts_used_before INTEGER,
    posts_used_after INTEGER,
    quota_limit INTEGER,
    event_data JSONB,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ DEFAULT now(),
    ip_address INET,
    country_code VARCHAR(2),
    timezone VARCHAR(50),
    PRIMARY KEY (id, occurred_at)
  ) PARTITION BY RANGE (occurred_at)`,
  // Indexes on the partitioned parent are created on every partition, present and future.
  `CREATE INDEX idx_usage_events_user_occurred ON usage_events (user_id, occurred_at)`,
  `CREATE INDEX idx_usage_events_type ON usage_events (event_type)`,
  `CREATE INDEX idx_usage_events_action ON usage_events (event_action)`,
  `CREATE INDEX idx_usage_events_data ON usage_events USING GIN (event_data)`,

  `CREATE TABLE daily_usage_stats (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stat_date DATE NOT NULL,
    total_posts INTEGER NOT NULL DEFAULT 0,
    successful_posts INTEGER NOT NULL DEFAULT 0,
    failed_posts INTEGER NOT NULL DEFAULT 0,
    unique_relays_used INTEGER NOT NULL DEFAULT 0,
    total_relay_attempts INTEGER NOT NULL DEFAULT 0,
    successful_relay_publishes INTEGER NOT NULL DEFAULT 0,
    avg_publish_time_ms INTEGER,
    max_publish_time_ms INTEGER,
    min_publish_time_ms INTEGER,
    twitter_posts INTEGER NOT NULL DEFAULT 0,
    x_com_posts INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT unique_user_stat_date UNIQUE (user_id, stat_date)
  )`,
  // idx_daily_stats_user_date (user_id, stat_date) is not created: unique_user_stat_date is that index.
  `CREATE INDEX idx_daily_stats_date ON daily_usage_stats (stat_date)`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error('forward-only: 0002_usage cannot be rolled back; restore a backup or write a new migration');
}
