// PERFORMANCE: every stored post updates its user's ledger rows (user_quotas: the day's and the month's
// counts), so these rows are rewritten thousands of times a day. Like 0007 for the forwarding outcomes, this lets
// PostgreSQL make those updates heap-only (HOT): no index on a column they change, and room on the row's page for
// the new version. Without it each update wrote a new entry in all four indexes and the ledger's unique index
// filled with entries of dead versions that every later upsert of the row walked through: the two upserts were
// ~63 µs of PostgreSQL time per stored post, ~45 % of a group commit (measured on a quiet database; ~20 µs with
// this migration). No query reads user_quotas by updated_at or resets_at: the ledger is always looked up by
// (user_id, quota_date, quota_type), and a period ends by its date, not by a reset job.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `DROP INDEX IF EXISTS idx_quotas_updated`,
  `DROP INDEX IF EXISTS idx_quotas_resets_at`,
  // a ledger row is ~100 bytes: half of each page left free holds many new versions until pruning reclaims them
  `ALTER TABLE user_quotas SET (fillfactor = 50)`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0010_hot_ledger_updates cannot be rolled back; restore a backup or write a new migration',
  );
}
