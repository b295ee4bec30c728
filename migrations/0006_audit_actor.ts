// EXTENSION: audit_log.actor, who made the change (an admin pubkey, 'user' for the user's own request, or a
// system name such as 'payments'). The founding schema's audit_log records what changed but not who changed it,
// which is the first question an audit trail must answer. Nullable: rows written before this column have none.
import type { Knex } from 'knex';

const statements: readonly string[] = [`ALTER TABLE audit_log ADD COLUMN actor VARCHAR(128)`];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error('forward-only: 0006_audit_actor cannot be rolled back; restore a backup or write a new migration');
}
