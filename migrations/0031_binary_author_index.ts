// STORAGE: the index that serves an author's reads (idx_nostr_events_live_pubkey_kind: timelines, profiles, COUNT by
// author) holds the pubkey as its 32 bytes, `decode(pubkey, 'hex')`, instead of its 64 hex digits: an entry of ~56
// bytes instead of ~88, 132 → ~85 MB for a million events. The column keeps its text (every statement that writes,
// returns or compares it stays as it is); only the reads that use this index compare the expression, as
// store/events.ts `authorKey` writes it. Filters' authors are 64 lowercase hex digits (nips/filter.ts), so decode()
// never fails on them. Building it reads the table once while the migration holds it (~5 s for a million events).
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `DROP INDEX idx_nostr_events_live_pubkey_kind`,
  `CREATE INDEX idx_nostr_events_live_pubkey_kind ON nostr_events (decode(pubkey, 'hex'), event_kind, created_at_nostr DESC)
    WHERE removed_at IS NULL`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX idx_nostr_events_live_pubkey_kind`);
  await knex.raw(
    `CREATE INDEX idx_nostr_events_live_pubkey_kind ON nostr_events (pubkey, event_kind, created_at_nostr DESC) WHERE removed_at IS NULL`,
  );
}
