// PERFORMANCE: the row ids of the tables written at every accepted event (nostr_events, relay_publishes,
// usage_events) are UUIDv7 (RFC 9562: 48 bits of Unix milliseconds, then random bits) instead of random v4 ones.
// A random id puts each new row's entry on a random page of its primary key, and of the indexes that repeat it
// (nostr_event_tags' idx_nostr_event_tags_event, relay_publishes' event index): at a million stored events those
// are ~40–60 MB each, and with the store's other random keys (the event id) they no longer fit in shared_buffers,
// so each insert reads a page back and, after every checkpoint, writes it whole into the WAL. A time-ordered id
// lands on the newest pages, which stay in memory. Ids stay unguessable (74 random bits) and unique; the time they
// show is the row's own insertion time, which the rows already carry (created_at). Existing rows keep their ids.
// PostgreSQL 18 has uuidv7(); 15 does not, so this is the same layout from core functions (PGlite runs it too).
import type { Knex } from 'knex';

const tables = ['nostr_events', 'relay_publishes', 'usage_events'] as const;

export async function up(knex: Knex): Promise<void> {
  // gen_random_uuid() gives the random bits and the variant; the first 6 bytes become the time, and the version
  // nibble goes from 4 (0100) to 7 (0111) by setting bits 52 and 53
  await knex.raw(`
    CREATE FUNCTION nostrx_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
      SELECT encode(
        set_bit(set_bit(
          overlay(uuid_send(gen_random_uuid())
            PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
            FROM 1 FOR 6),
        52, 1), 53, 1),
      'hex')::uuid
    $$`);
  // on a partitioned table the default is set on every partition too (ALTER TABLE recurses without ONLY)
  for (const table of tables) await knex.raw(`ALTER TABLE ${table} ALTER COLUMN id SET DEFAULT nostrx_uuid_v7()`);
}

export async function down(knex: Knex): Promise<void> {
  for (const table of tables) await knex.raw(`ALTER TABLE ${table} ALTER COLUMN id SET DEFAULT gen_random_uuid()`);
  await knex.raw(`DROP FUNCTION IF EXISTS nostrx_uuid_v7()`);
}
