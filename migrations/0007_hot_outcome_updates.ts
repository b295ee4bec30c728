// PERFORMANCE: drops the founding schema's single-column indexes on nostr_events.status and
// relay_publishes.status. Every forwarding outcome changes those columns, and an indexed column changed makes
// PostgreSQL write a new entry in every index of the row (12 on nostr_events, 5 on relay_publishes) instead of a
// heap-only update. No query needs them: a status has a handful of values, listings filter by user first
// (idx_nostr_events_user_created), and the forwarder finds due rows by the partial idx_relay_publishes_due.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `DROP INDEX IF EXISTS idx_nostr_events_status`,
  `DROP INDEX IF EXISTS idx_relay_publishes_status`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error('forward-only: 0007_hot_outcome_updates cannot be rolled back; restore a backup or write a new migration');
}
