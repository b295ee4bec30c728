// Settings of the PostgreSQL server that the service relies on but cannot set for its own connections (db.ts sets
// those it can).
import type { Knex } from 'knex';

/**
 * Whether the server analyzes tables as they grow (autovacuum, which needs track_counts). The hot statements are
 * prepared per connection, and PostgreSQL keeps the generic plan it made from the statistics of that moment until a
 * new ANALYZE of a table it reads: without autovacuum, a plan made on a small store is kept as the store grows
 * (docs/operations.md).
 */
export async function analyzesAsTablesGrow(knex: Knex): Promise<boolean> {
  const { rows } = (await knex.raw(
    `SELECT current_setting('autovacuum') = 'on' AND current_setting('track_counts') = 'on' AS on`,
  )) as { rows: { on: boolean }[] };
  return rows[0]?.on === true;
}
