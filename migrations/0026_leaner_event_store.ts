// PERFORMANCE (storage): what each stored event costs, smaller by ~270 bytes of ~1,940 on the million-event store
// (docs/benchmarks.md, "A leaner event store"), with no read losing its index:
// - idx_nostr_events_live_pubkey (pubkey, created_at_nostr DESC), ~140 B an event, is dropped. Its one reader was an
//   author's events of any kind; those are read from idx_nostr_events_live_pubkey_kind a kind at a time
//   (store/events.ts AUTHOR_ANY_KIND_READS: the author's kinds found by one probe each, then each kind's newest).
// - idx_nostr_events_live_created loses its second column, the 64-character event id (~137 → ~30 B an event): it
//   only spared a sort of the events that share their second, which an incremental sort does on the rows read.
// - nostr_events.tags is json, not jsonb: the tags are stored and sent back as they came, never queried inside
//   (nostr_event_tags indexes them), and jsonb's binary form was ~25 B larger per event than the text and had to be
//   written out as text again for every event a REQ is answered with.
// The type change rewrites nostr_events and rebuilds its indexes under an exclusive lock: 7 s for a million events
// on the benchmark's 2-core machine, during which the relay's reads and writes of events wait.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `DROP INDEX IF EXISTS idx_nostr_events_live_pubkey`,
  `DROP INDEX IF EXISTS idx_nostr_events_live_created`,
  `CREATE INDEX idx_nostr_events_live_created ON nostr_events (created_at_nostr DESC) WHERE removed_at IS NULL`,
  `ALTER TABLE nostr_events DROP CONSTRAINT valid_event_tags`,
  `ALTER TABLE nostr_events ALTER COLUMN tags DROP DEFAULT`,
  `ALTER TABLE nostr_events ALTER COLUMN tags TYPE json USING CAST(tags AS json)`,
  `ALTER TABLE nostr_events ALTER COLUMN tags SET DEFAULT '[]'`,
  `ALTER TABLE nostr_events ADD CONSTRAINT valid_event_tags CHECK (json_typeof(tags) = 'array')`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0026_leaner_event_store cannot be rolled back; restore a backup or write a new migration',
  );
}
