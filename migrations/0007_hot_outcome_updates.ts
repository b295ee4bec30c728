// PERFORMANCE: what every forwarding outcome rewrites. Drops the founding schema's single-column indexes on
// nostr_events.status, relay_publishes.status and relay_publishes.attempted_at, and leaves room in nostr_events'
// pages. Each claim and each recorded outcome changes those columns, and an indexed column changed makes
// PostgreSQL write a new entry in every index of the row (12 on nostr_events, 5 on relay_publishes) instead of a
// heap-only (HOT) update, which also needs free space on the row's page. No query needs the three indexes: a
// status has a handful of values, listings filter by user first (idx_nostr_events_user_created), reports filter
// relay_publishes by created_at (its partition key), and the forwarder finds due rows by idx_relay_publishes_due.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `DROP INDEX IF EXISTS idx_nostr_events_status`,
  `DROP INDEX IF EXISTS idx_relay_publishes_status`,
  `DROP INDEX IF EXISTS idx_relay_publishes_attempted`,
  // an event row is updated as its targets finish: room on its page lets those updates skip the 11 indexes
  `ALTER TABLE nostr_events SET (fillfactor = 85)`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0007_hot_outcome_updates cannot be rolled back; restore a backup or write a new migration',
  );
}
