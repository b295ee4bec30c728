// The first monthly partitions of usage_events and relay_publishes: the month of "now" and the next one (UTC),
// so a freshly migrated database accepts rows at once. Later months are created by the service
// (ensureMonthlyPartitions at start and daily) and by `npm run migrate`.
// REPAIR: the spec's example partitions (usage_events_y2024m06 …) are fixed past months with bounds in the
// session's time zone ('2024-06-01'); these are computed from the clock, and their bounds are UTC instants.
import type { Knex } from 'knex';
import { ensureMonthlyPartitions } from '../src/store/partitions.js';

export async function up(knex: Knex): Promise<void> {
  await ensureMonthlyPartitions(knex, new Date(), 1);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0004_first_partitions cannot be rolled back; restore a backup or write a new migration',
  );
}
