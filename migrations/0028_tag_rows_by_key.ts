// STORAGE and WRITES: nostr_event_tags keeps no foreign key to nostr_events and no index on event_row_id. The index
// (~58 B an event on the million-event store) served only the key's ON DELETE CASCADE and the `#x` filters' EXISTS
// probe, and the key made every tag row written check its event (a look-up and a row lock per tag row, ~1.9 an
// event). Tag rows are only ever written with their event, in the same statement (store/event-batch.ts) or
// transaction (store/events.ts saveEvent); what removes them with it is now a trigger that deletes them by their own
// key, (name, value, created_at_nostr, event_row_id), taken from the deleted row's tags, whatever deletes the event
// (an erasure, a retention sweep, the purge of removed events, a user's rows going with their account). The EXISTS
// probe of a filter's tags compares the event's created_at too, so it is a look-up of that same key.
// A tag row whose tag the event does not carry cannot exist: indexedTags (store/events.ts) makes every one of them
// from the event's tags.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `CREATE FUNCTION nostrx_erase_event_tags() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      DELETE FROM nostr_event_tags t
        USING json_array_elements(OLD.tags) x
        WHERE t.name = x->>0 AND t.value = x->>1 AND t.created_at_nostr = OLD.created_at_nostr
          AND t.event_row_id = OLD.id;
      RETURN NULL;
    END
  $$`,
  `CREATE TRIGGER nostr_events_erase_tags AFTER DELETE ON nostr_events
    FOR EACH ROW EXECUTE FUNCTION nostrx_erase_event_tags()`,
  `ALTER TABLE nostr_event_tags DROP CONSTRAINT nostr_event_tags_event_row_id_fkey`,
  `DROP INDEX IF EXISTS idx_nostr_event_tags_event`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0028_tag_rows_by_key cannot be rolled back; restore a backup or write a new migration',
  );
}
