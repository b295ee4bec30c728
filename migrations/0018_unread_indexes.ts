// PERFORMANCE: indexes no query reads, dropped. Every stored post writes two usage_events rows, every new author a
// users row and their rows for the default relays, every forwarding outcome updates its user_relays row: each
// index is an entry more to write (and WAL to log) per row, and an index on a column an update changes makes that
// update write a new entry in every index of the row (no heap-only update). Measured with `npm run bench`
// (admission_new, pg_walinspect): usage_events' three were ~1,200 of ~6,300 WAL bytes per accepted event, its GIN
// index alone ~950. What reads each table, checked against every query in src/store:
// - usage_events: the user's export (by user_id, ordered by occurred_at: idx_usage_events_user_occurred) and the
//   erasure (by user_id); retention drops whole partitions. Nothing filters by event_type, event_action or
//   event_data: an analysis that does can index what it asks on its own copy (docs/operations.md, backups).
// - users: by id, by nostr_public_key (UNIQUE), listed by created_at and filtered by status (idx_users_status
//   stays). extension_id is never looked up (sessions carry their own); last_active_at is only shown.
// - nostr_events: idx_nostr_events_created stays: the users' retention sweep (store/user-retention.ts, which came
//   after this was measured) erases events received before a time across many users at once.
// - user_relays: by user_id (the UNIQUE (user_id, relay_url) key), by relay_url (idx_user_relays_url, the NIP-11
//   refresh); is_active is always asked with user_id, and success_rate / avg_response_time_ms are only written
//   (relay-stats.ts), by the update that records each batch of forwarding outcomes: indexed, they kept it from
//   ever being heap-only.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `DROP INDEX IF EXISTS idx_usage_events_type`,
  `DROP INDEX IF EXISTS idx_usage_events_action`,
  `DROP INDEX IF EXISTS idx_usage_events_data`,
  `DROP INDEX IF EXISTS idx_users_extension_id`,
  `DROP INDEX IF EXISTS idx_users_last_active`,
  `DROP INDEX IF EXISTS idx_user_relays_active`,
  `DROP INDEX IF EXISTS idx_user_relays_performance`,
  `DROP INDEX IF EXISTS idx_relays_active_performance`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error('forward-only: 0018_unread_indexes cannot be rolled back; restore a backup or write a new migration');
}
