// STORAGE: an event id is kept unique by a hash index (an exclusion constraint) instead of a btree. The btree held
// each id's 64 characters in an entry of ~76 bytes, its pages split at random places by ids that arrive in no order:
// 121 MB for a million events (~121 B an event, the store's second largest index). A hash index holds a 4-byte hash
// code an entry: 32 MB. Nothing orders or ranges by the event id (timelines and cursors go by created_at, ties by
// the row), and every look-up by it is an equality: `ids` filters (a bitmap scan of the hash index), the duplicate
// check of an insert, deletions by id.
// A hash index cannot back a UNIQUE constraint, but it can back an exclusion constraint with `=`, which refuses the
// same rows a unique one does, and which `ON CONFLICT ON CONSTRAINT … DO NOTHING` takes as its arbiter
// (store/events.ts, store/event-batch.ts: EVENT_ID_UNIQUE). An insert without ON CONFLICT now fails with 23P01
// (exclusion_violation) rather than 23505; none is made. No foreign key references the column.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `ALTER TABLE nostr_events ADD CONSTRAINT nostr_events_event_id_excl EXCLUDE USING hash (event_id WITH =)`,
  `ALTER TABLE nostr_events DROP CONSTRAINT nostr_events_event_id_key`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE nostr_events ADD CONSTRAINT nostr_events_event_id_key UNIQUE (event_id)`);
  await knex.raw(`ALTER TABLE nostr_events DROP CONSTRAINT nostr_events_event_id_excl`);
}
