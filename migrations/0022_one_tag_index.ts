// PERFORMANCE: nostr_event_tags keeps one index on (name, value) instead of two. The primary key (name, value,
// event_row_id) and idx_nostr_event_tags_value_created (name, value, created_at_nostr DESC) began with the same
// columns, and at a million stored events they were 205 and 182 MB, more than the table itself (197 MB; `npm run
// bench` scenario `scale`, docs/benchmarks.md). The new primary key (name, value, created_at_nostr, event_row_id)
// does the work of both:
// - the same rows are unique: an event's rows all carry its created_at, so (name, value, event_row_id) is unique
//   exactly when (name, value, created_at_nostr, event_row_id) is;
// - a `#x` filter reads it by (name, value), newest first by scanning it backwards, and finds event_row_id in it
//   (index only) to join nostr_events;
// - idx_nostr_event_tags_event (event_row_id) stays, for the cascade when an event is erased.
// Each stored tag writes one index entry fewer. Rebuilding the key reads the table once while the migration holds
// it: 1.6 s for 510,000 tag rows (200,000 events) here, ~6 s for the million-event store's ~1.9 million.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `ALTER TABLE nostr_event_tags DROP CONSTRAINT nostr_event_tags_pkey`,
  `DROP INDEX IF EXISTS idx_nostr_event_tags_value_created`,
  `ALTER TABLE nostr_event_tags ADD CONSTRAINT nostr_event_tags_pkey PRIMARY KEY (name, value, created_at_nostr, event_row_id)`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE nostr_event_tags DROP CONSTRAINT nostr_event_tags_pkey`);
  await knex.raw(
    `ALTER TABLE nostr_event_tags ADD CONSTRAINT nostr_event_tags_pkey PRIMARY KEY (name, value, event_row_id)`,
  );
  await knex.raw(
    `CREATE INDEX idx_nostr_event_tags_value_created ON nostr_event_tags (name, value, created_at_nostr DESC)`,
  );
}
