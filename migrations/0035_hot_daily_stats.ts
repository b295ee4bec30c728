// WRITES: a user's daily_usage_stats row is updated through the day (the usage recorder adds the posts once a second,
// the forwarder its attempts after each batch), and each update wrote a new entry in the table's three indexes: rows
// are inserted side by side, so a full page had no room for the row's next version and the update could not be
// heap-only (HOT). At saturation 0.4 % of these updates were HOT (`npm run bench`, admission), against 99.8 % for
// the ledger rows, which 0010 gave the same room. No index covers a column these updates change (total_posts and the
// other counters, updated_at): only the room was missing. The setting applies to pages written from now on.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  // a row is ~130 bytes: half of each page left free holds the day's next versions until pruning reclaims them
  `ALTER TABLE daily_usage_stats SET (fillfactor = 50)`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0035_hot_daily_stats cannot be rolled back; restore a backup or write a new migration',
  );
}
