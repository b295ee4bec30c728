// PERFORMANCE: the row ids of the account tables a post writes to are UUIDv7 (nostrx_uuid_v7(), 0024) instead of
// random v4 ones: users and user_relays (a new author's first post makes the account and its rows for the default
// relays, in the statement that stores the event), user_quotas (a row per user and quota day: every active user's
// first post of each day). 0024 did the same for the rows of every event; these are fewer, but they are the rows
// that make a first post cost more than a later one, and with random ids each of their primary keys takes the new
// entry on a random page: read back when the key outgrows shared_buffers, and written whole into the WAL after
// every checkpoint. A new author's id is made in the service (core/accounts/accounts.ts, so that the event's row
// can name the account in the same statement) with the same layout. Existing rows keep their ids.
import type { Knex } from 'knex';

const tables = ['users', 'user_relays', 'user_quotas'] as const;

export async function up(knex: Knex): Promise<void> {
  for (const table of tables) await knex.raw(`ALTER TABLE ${table} ALTER COLUMN id SET DEFAULT nostrx_uuid_v7()`);
}

export async function down(knex: Knex): Promise<void> {
  for (const table of tables) await knex.raw(`ALTER TABLE ${table} ALTER COLUMN id SET DEFAULT gen_random_uuid()`);
}
