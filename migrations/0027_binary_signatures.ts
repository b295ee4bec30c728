// STORAGE: nostr_events.sig holds the signature's 64 bytes instead of its 128 hex characters, 64 bytes less in every
// stored event's row (~75 B an event with the fill factor's room; docs/benchmarks.md, "A leaner event store"). The
// signature is only stored and sent back: nothing filters, orders or indexes by it, so it is written with
// decode(…, 'hex') and read with encode(…, 'hex') (store/events.ts sigText) where the event's columns are read. The
// CHECK becomes its length in bytes (the hex CHECK of migration 0009 has nothing left to check). The type change
// rewrites nostr_events and rebuilds its indexes under an exclusive lock, as 0026's does.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `ALTER TABLE nostr_events DROP CONSTRAINT valid_event_sig`,
  `ALTER TABLE nostr_events ALTER COLUMN sig TYPE bytea USING decode(sig, 'hex')`,
  `ALTER TABLE nostr_events ADD CONSTRAINT valid_event_sig CHECK (octet_length(sig) = 64)`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0027_binary_signatures cannot be rolled back; restore a backup or write a new migration',
  );
}
