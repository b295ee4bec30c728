// The rows taken out of the served set (deleted under NIP-09, replaced by a newer version, expired under NIP-40)
// are erased once REMOVED_EVENTS_RETENTION_DAYS old (core/ops/maintenance.ts). This index lets that job find them
// without reading the whole table every hour; it holds removed rows only, so the live rows' writes never touch it.
// Building it reads nostr_events once while the migration's transaction holds the table.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX idx_nostr_events_removed ON nostr_events (removed_at) WHERE removed_at IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX IF EXISTS idx_nostr_events_removed`);
}
