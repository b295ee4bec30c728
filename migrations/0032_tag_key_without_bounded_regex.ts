// WRITES: nostrx_tag_key (migration 0030) tells an id from other text by `value ~ '^[0-9a-f]{64}$'`, and PostgreSQL's
// regular expressions run a bounded repetition slowly: ~8 µs a value here, against ~0.5 µs for 64 bytes none of
// which is outside [0-9a-f], `octet_length(value) = 64 AND value !~ '[^0-9a-f]'` (the form of the events' own CHECKs).
// Every tag row written and every "deleted by its author?" look-up of an event id evaluates it: ~14 % of
// PostgreSQL's CPU in an import (perf, 2026-12-06). The rule is the same: 64 bytes all in [0-9a-f] are 64 of those
// ASCII characters, and any other character fails either test. So stored keys stay as they are and the function is
// replaced in place; it is still one SQL expression, IMMUTABLE, which PostgreSQL inlines.
import type { Knex } from 'knex';

const tagKey = (hexTest: string): string =>
  `CREATE OR REPLACE FUNCTION nostrx_tag_key(value text) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
      WHEN ${hexTest} THEN decode(value, 'hex')
      WHEN octet_length(value) = 32 THEN decode(replace(value, '\\', '\\\\'), 'escape') || '\\x00'::bytea
      ELSE decode(replace(value, '\\', '\\\\'), 'escape')
    END
  $$`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(tagKey(`octet_length(value) = 64 AND value !~ '[^0-9a-f]'`));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(tagKey(`value ~ '^[0-9a-f]{64}$'`));
}
