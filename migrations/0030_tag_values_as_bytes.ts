// STORAGE: a tag row's value is kept as bytes, and an event id or pubkey (64 hex digits: most `e` and `p` tags, a
// million-event store's ~1.15 million of its ~1.9 million tag rows) as the 32 bytes it writes. Each such value took 65
// bytes in the row and as many in the key (name, value, created_at_nostr, event_row_id); as bytes it takes 33.
// nostrx_tag_key is the one definition of the stored form, used by every statement that writes or looks up a tag
// value (store/events.ts, store/event-batch.ts) and by the trigger that erases an event's tag rows (migration 0028):
// - 64 lowercase hex digits: their 32 bytes;
// - any other value: its bytes (UTF-8, the database's encoding), and a zero byte after them when they are 32, so
//   that no text value is taken for a hex one (text holds no zero byte, so a 33-byte value ending in one is always
//   such a text). The bytes are taken with `decode(…, 'escape')` of the text with its backslashes doubled, which
//   copies every other byte as it is: convert_to() would do it too, but it is STABLE, and an IMMUTABLE SQL function
//   calling it is not inlined (a function call per tag row written or looked up);
// whatever the tag's name: a `t` tag of 64 hex digits is stored the same way and found the same way.
// Lookups compare `value = nostrx_tag_key(?)`, an expression PostgreSQL inlines (a SQL function of one expression,
// IMMUTABLE, not STRICT) and evaluates once per scan: the key is used as before. Nothing reads a value back as text.
// The table is copied and its key built while the migration holds it: ~10 s for a million events' 1.9 million rows.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `CREATE FUNCTION nostrx_tag_key(value text) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
      WHEN value ~ '^[0-9a-f]{64}$' THEN decode(value, 'hex')
      WHEN octet_length(value) = 32 THEN decode(replace(value, '\\', '\\\\'), 'escape') || '\\x00'::bytea
      ELSE decode(replace(value, '\\', '\\\\'), 'escape')
    END
  $$`,
  // the table is written anew rather than altered: its columns in an order with no padding between them (the 8-byte
  // created_at first, the 33-byte value last) take ~10 B a row less; the grants come from 0005's default privileges
  `CREATE TABLE nostr_event_tags_bytes (
    created_at_nostr BIGINT NOT NULL,
    event_row_id UUID NOT NULL,
    event_kind INTEGER NOT NULL,
    name VARCHAR(1) NOT NULL,
    value BYTEA NOT NULL,
    CONSTRAINT valid_tag_name CHECK (name ~ '^[A-Za-z]$')
  )`,
  `INSERT INTO nostr_event_tags_bytes (created_at_nostr, event_row_id, event_kind, name, value)
    SELECT created_at_nostr, event_row_id, event_kind, name, nostrx_tag_key(value) FROM nostr_event_tags`,
  `DROP TABLE nostr_event_tags`,
  `ALTER TABLE nostr_event_tags_bytes RENAME TO nostr_event_tags`,
  `ALTER TABLE nostr_event_tags ADD CONSTRAINT nostr_event_tags_pkey PRIMARY KEY (name, value, created_at_nostr, event_row_id)`,
  `CREATE OR REPLACE FUNCTION nostrx_erase_event_tags() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      DELETE FROM nostr_event_tags t
        USING json_array_elements(OLD.tags) x
        WHERE t.name = x->>0 AND t.value = nostrx_tag_key(x->>1) AND t.created_at_nostr = OLD.created_at_nostr
          AND t.event_row_id = OLD.id;
      RETURN NULL;
    END
  $$`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0030_tag_values_as_bytes cannot be rolled back; restore a backup or write a new migration',
  );
}
