// Delivery audits (NIP-77): each user relay keeps how many events it acknowledged (OK true) and was later found not
// to hold when reconciled (acknowledged_missing), and when it was last reconciled (last_reconciled_at), which also
// lets the hourly sweep of several processes claim each relay once a day. Both columns are added with constant
// defaults, so no row is rewritten.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE user_relays ADD COLUMN acknowledged_missing INTEGER NOT NULL DEFAULT 0`);
  await knex.raw(`ALTER TABLE user_relays ADD COLUMN last_reconciled_at TIMESTAMPTZ`);
  await knex.raw(`ALTER TABLE user_relays ADD CONSTRAINT valid_acknowledged_missing CHECK (acknowledged_missing >= 0)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE user_relays DROP COLUMN IF EXISTS last_reconciled_at`);
  await knex.raw(`ALTER TABLE user_relays DROP COLUMN IF EXISTS acknowledged_missing`);
}
