// Nostr data: nostr_events (the relay's event store), nostr_event_tags (single-letter tag index for NIP-01
// `#x` filters), user_relays, relay_publishes (the forwarding outbox, partitioned by month) and relay_bans (NIP-86).
// Source: spec §4, "Nostr Rules", "Additional Performance Indexes", "Partitioning Strategy"; the EXTENSIONs let the
// relay serve events back exactly as they were signed and answer NIP-01 filters from indexes. The general rules
// (one statement per raw call, NOT NULL defaults, no index duplicating a UNIQUE) are in 0001_accounts.ts.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  // REPAIR: enum types before the tables that use them.
  `CREATE TYPE event_status_enum AS ENUM ('pending', 'signing', 'publishing', 'published', 'failed', 'partial')`,
  `CREATE TYPE relay_publish_status_enum AS ENUM (
    'pending', 'connecting', 'connected', 'publishing', 'published', 'failed', 'timeout', 'rejected'
  )`,

  // Every founding column is kept. EXTENSIONs: pubkey, tags and sig, so the stored row *is* the signed event
  // (id, pubkey, created_at_nostr, kind, tags, content, sig); d_tag, the replace key (NULL for regular kinds, ''
  // for replaceable kinds, the `d` value for addressable kinds); expires_at (NIP-40, unix seconds); removed_at and
  // removed_reason, so deletion (NIP-09), replacement, expiry, bans and NIP-62 are soft and keep the row for
  // `duplicate:` answers; source_platform.
  // REPAIR: created_at_nostr is BIGINT, not INTEGER: a 32-bit unix time overflows in January 2038, and NIP-01
  // does not bound created_at. expires_at is BIGINT for the same reason.
  // REPAIR: the spec checks event_id twice (LENGTH = 64 and `~* '^[a-f0-9]{64}$'`, case-insensitive, so
  // uppercase passed). One CHECK, lowercase hex only, as NIP-01 defines ids; the same for pubkey and sig.
  // REPAIR: event_kind has no DEFAULT 1: the kind of a signed event is part of what was signed and must always be
  // supplied; a default could only store a wrong kind silently.
  `CREATE TABLE nostr_events (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event_id VARCHAR(64) NOT NULL,
    pubkey VARCHAR(64) NOT NULL,
    event_kind INTEGER NOT NULL,
    created_at_nostr BIGINT NOT NULL,
    content TEXT NOT NULL,
    tags JSONB NOT NULL DEFAULT '[]',
    sig VARCHAR(128) NOT NULL,
    d_tag TEXT,
    expires_at BIGINT,
    removed_at TIMESTAMPTZ,
    removed_reason TEXT,
    source_platform VARCHAR(50),
    original_tweet_id VARCHAR(50),
    original_tweet_url TEXT,
    original_tweet_text TEXT,
    original_username VARCHAR(100),
    status event_status_enum NOT NULL DEFAULT 'pending',
    published_at TIMESTAMPTZ,
    failed_at TIMESTAMPTZ,
    failure_reason TEXT,
    total_relays INTEGER NOT NULL DEFAULT 0,
    successful_relays INTEGER NOT NULL DEFAULT 0,
    failed_relays INTEGER NOT NULL DEFAULT 0,
    publish_duration_ms INTEGER,
    signature_duration_ms INTEGER,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT nostr_events_event_id_key UNIQUE (event_id),
    CONSTRAINT valid_event_id_format CHECK (event_id ~ '^[0-9a-f]{64}$'),
    CONSTRAINT valid_event_pubkey CHECK (pubkey ~ '^[0-9a-f]{64}$'),
    CONSTRAINT valid_event_sig CHECK (sig ~ '^[0-9a-f]{128}$'),
    CONSTRAINT valid_event_kind CHECK (event_kind BETWEEN 0 AND 65535),
    CONSTRAINT valid_event_created_at CHECK (created_at_nostr >= 0),
    CONSTRAINT valid_event_tags CHECK (jsonb_typeof(tags) = 'array'),
    CONSTRAINT valid_removed_reason CHECK (removed_reason IN ('deleted', 'replaced', 'expired', 'banned', 'vanished')),
    CONSTRAINT removed_reason_needs_removed_at CHECK (removed_reason IS NULL OR removed_at IS NOT NULL),
    CONSTRAINT valid_relay_counts CHECK (total_relays >= 0 AND successful_relays >= 0 AND failed_relays >= 0)
  )`,
  // NIP-01 filters over live rows (newest first, ties by lowest id): no filter, authors, kinds, authors+kinds.
  `CREATE INDEX idx_nostr_events_live_created ON nostr_events (created_at_nostr DESC, event_id) WHERE removed_at IS NULL`,
  `CREATE INDEX idx_nostr_events_live_pubkey ON nostr_events (pubkey, created_at_nostr DESC) WHERE removed_at IS NULL`,
  `CREATE INDEX idx_nostr_events_live_kind ON nostr_events (event_kind, created_at_nostr DESC) WHERE removed_at IS NULL`,
  `CREATE INDEX idx_nostr_events_live_pubkey_kind ON nostr_events (pubkey, event_kind, created_at_nostr DESC) WHERE removed_at IS NULL`,
  // One live version of each replaceable/addressable event; older versions are kept with removed_reason 'replaced'.
  `CREATE UNIQUE INDEX idx_nostr_events_live_replaceable ON nostr_events (pubkey, event_kind, d_tag) WHERE d_tag IS NOT NULL AND removed_at IS NULL`,
  // NIP-40 sweeper: live events that carry an expiration.
  `CREATE INDEX idx_nostr_events_expires ON nostr_events (expires_at) WHERE expires_at IS NOT NULL AND removed_at IS NULL`,
  // Founding indexes. idx_nostr_events_event_id is not created: nostr_events_event_id_key (UNIQUE) is that index.
  // REPAIR: the spec's idx_events_recent (user_id, created_at) `WHERE created_at >= CURRENT_DATE - INTERVAL
  // '30 days'` is not allowed (index predicates must be immutable); it becomes the plain index below, which also
  // replaces idx_nostr_events_user_id (user_id), its leading prefix.
  `CREATE INDEX idx_nostr_events_user_created ON nostr_events (user_id, created_at)`,
  `CREATE INDEX idx_nostr_events_status ON nostr_events (status)`,
  `CREATE INDEX idx_nostr_events_created ON nostr_events (created_at)`,
  // Partial: most events stored by a relay come from no tweet, and the lookup is always by a given tweet id.
  `CREATE INDEX idx_nostr_events_tweet_id ON nostr_events (original_tweet_id) WHERE original_tweet_id IS NOT NULL`,

  // EXTENSION: single-letter tag index, one row per distinct (name, value) of an event, for `#x` filters. The
  // kind and created_at are copied so a tag filter can be ordered and narrowed without touching nostr_events.
  `CREATE TABLE nostr_event_tags (
    event_row_id UUID NOT NULL REFERENCES nostr_events (id) ON DELETE CASCADE,
    name VARCHAR(1) NOT NULL,
    value TEXT NOT NULL,
    created_at_nostr BIGINT NOT NULL,
    event_kind INTEGER NOT NULL,
    PRIMARY KEY (name, value, event_row_id),
    CONSTRAINT valid_tag_name CHECK (name ~ '^[A-Za-z]$')
  )`,
  `CREATE INDEX idx_nostr_event_tags_value_created ON nostr_event_tags (name, value, created_at_nostr DESC)`,
  `CREATE INDEX idx_nostr_event_tags_event ON nostr_event_tags (event_row_id)`,

  // EXTENSIONs: write/read markers and source (NIP-65 relay lists, API, operator defaults); paused_until and
  // consecutive_failures for the forwarder's circuit breaker.
  // REPAIR: the spec's second URL CHECK (valid_relay_protocol, ws or wss followed by ://) is implied by
  // valid_relay_url and is not created. The spec's pattern '^wss?://.+' is written '^(ws|wss)://.+' (same
  // language) because knex.raw rewrites `?` (see 0001_accounts.ts).
  `CREATE TABLE user_relays (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    relay_url TEXT NOT NULL,
    relay_name VARCHAR(100),
    is_default BOOLEAN NOT NULL DEFAULT false,
    is_active BOOLEAN NOT NULL DEFAULT true,
    last_connected_at TIMESTAMPTZ,
    last_publish_success TIMESTAMPTZ,
    last_publish_failure TIMESTAMPTZ,
    success_rate DECIMAL(5, 2) NOT NULL DEFAULT 0.00,
    avg_response_time_ms INTEGER,
    total_publishes INTEGER NOT NULL DEFAULT 0,
    successful_publishes INTEGER NOT NULL DEFAULT 0,
    failed_publishes INTEGER NOT NULL DEFAULT 0,
    supported_nips INTEGER[],
    relay_info JSONB,
    write BOOLEAN NOT NULL DEFAULT true,
    read BOOLEAN NOT NULL DEFAULT true,
    source VARCHAR(20) NOT NULL DEFAULT 'api',
    paused_until TIMESTAMPTZ,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    added_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT unique_user_relay UNIQUE (user_id, relay_url),
    CONSTRAINT valid_relay_url CHECK (relay_url ~* '^(ws|wss)://.+'),
    CONSTRAINT valid_success_rate CHECK (success_rate >= 0 AND success_rate <= 100),
    CONSTRAINT valid_relay_source CHECK (source IN ('api', 'nip65', 'default')),
    CONSTRAINT valid_consecutive_failures CHECK (consecutive_failures >= 0)
  )`,
  // idx_user_relays_user_id is not created: (user_id) is the leading prefix of unique_user_relay.
  `CREATE INDEX idx_user_relays_url ON user_relays (relay_url)`,
  `CREATE INDEX idx_user_relays_active ON user_relays (is_active)`,
  `CREATE INDEX idx_user_relays_performance ON user_relays (success_rate, avg_response_time_ms)`,
  `CREATE INDEX idx_relays_active_performance ON user_relays (success_rate, avg_response_time_ms) WHERE is_active = true`,

  // The forwarding outbox: one row per (event, target relay), claimed by forwarder workers with
  // FOR UPDATE SKIP LOCKED.
  // REPAIR: partitioned by RANGE (created_at), not by attempted_at as the spec's partitioning section says:
  // attempted_at changes on every retry, so each retry would move the row to another partition (a DELETE plus an
  // INSERT) or fail when that month's partition does not exist. created_at is set once, when the row is queued.
  // REPAIR: the primary key contains the partition key: (id, created_at).
  // REPAIR: attempted_at is NULL-able without a default: NULL means "not attempted yet" (the spec's DEFAULT now()
  // claimed an attempt at queue time). valid_times is kept; with attempted_at NULL it holds trivially.
  // user_relay_id is NULL for the operator's default relays (they have no user_relays row) and is set NULL when
  // the user removes the relay; relay_url keeps the target either way.
  // EXTENSIONs: relay_url, created_at, attempts, next_attempt_at (backoff), claimed_by/claimed_until (a worker's
  // lease), attempt_log (status transitions per attempt).
  // UNIQUE (event_id, relay_url, created_at): a unique key on a partitioned table must contain the partition key,
  // so the database can only refuse a second row for the same target with the same created_at. Admission queues
  // all targets of an event in the transaction that stores it, with created_at = now() (the transaction time) for
  // every row, and that is what makes `ON CONFLICT (event_id, relay_url, created_at) DO NOTHING` idempotent.
  `CREATE TABLE relay_publishes (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    event_id UUID NOT NULL REFERENCES nostr_events (id) ON DELETE CASCADE,
    user_relay_id UUID REFERENCES user_relays (id) ON DELETE SET NULL,
    relay_url TEXT NOT NULL,
    status relay_publish_status_enum NOT NULL DEFAULT 'pending',
    attempted_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    connection_time_ms INTEGER,
    publish_time_ms INTEGER,
    total_time_ms INTEGER,
    relay_response JSONB,
    error_message TEXT,
    error_code VARCHAR(50),
    ip_address INET,
    connection_type VARCHAR(20),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_by TEXT,
    claimed_until TIMESTAMPTZ,
    attempt_log JSONB NOT NULL DEFAULT '[]',
    PRIMARY KEY (id, created_at),
    CONSTRAINT relay_publishes_event_relay_key UNIQUE (event_id, relay_url, created_at),
    CONSTRAINT valid_times CHECK (
      (completed_at IS NULL OR completed_at >= attempted_at) AND (total_time_ms IS NULL OR total_time_ms >= 0)
    ),
    CONSTRAINT valid_publish_relay_url CHECK (relay_url ~* '^(ws|wss)://.+'),
    CONSTRAINT valid_publish_attempts CHECK (attempts >= 0),
    CONSTRAINT valid_attempt_log CHECK (jsonb_typeof(attempt_log) = 'array')
  ) PARTITION BY RANGE (created_at)`,
  // idx_relay_publishes_event (event_id) is not created: it is the leading prefix of relay_publishes_event_relay_key,
  // which also serves the ON DELETE CASCADE from nostr_events.
  `CREATE INDEX idx_relay_publishes_relay ON relay_publishes (user_relay_id)`,
  `CREATE INDEX idx_relay_publishes_status ON relay_publishes (status)`,
  `CREATE INDEX idx_relay_publishes_attempted ON relay_publishes (attempted_at)`,
  // The forwarder's claim: unfinished rows in order of when they are due.
  `CREATE INDEX idx_relay_publishes_due ON relay_publishes (next_attempt_at) WHERE status IN ('pending', 'connecting', 'connected', 'publishing')`,

  // EXTENSION: NIP-86 relay management. kind 'pubkey' and 'event' are bans, 'allow' is an allowed pubkey; each
  // value is a 64-char lowercase hex pubkey or event id.
  `CREATE TABLE relay_bans (
    kind VARCHAR(10) NOT NULL,
    value VARCHAR(64) NOT NULL,
    reason TEXT,
    created_by VARCHAR(64),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value),
    CONSTRAINT valid_ban_kind CHECK (kind IN ('pubkey', 'event', 'allow')),
    CONSTRAINT valid_ban_value CHECK (value ~ '^[0-9a-f]{64}$')
  )`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error('forward-only: 0003_nostr cannot be rolled back; restore a backup or write a new migration');
}
