// EXTENSION: email verification (issue #23). One row per verification email sent: the address it was sent to, the
// SHA-256 of the link's token (the token itself is only in the email), when it expires and when it was used. A
// link sets users.email_verified only while the account's email is still the address it was sent to, once.
// The rows also count the sends for the rate limits, per account and per address (the two indexes); they are
// erased with the account (ON DELETE CASCADE does not apply: accounts are erased by a status change, and
// store/user-data.ts eraseUser deletes them).
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `CREATE TABLE email_verifications (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email VARCHAR(320) NOT NULL,
    token_hash VARCHAR(64) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    CONSTRAINT email_verifications_token_hash_key UNIQUE (token_hash),
    CONSTRAINT valid_verification_expiry CHECK (expires_at > created_at)
  )`,
  `CREATE INDEX idx_email_verifications_user ON email_verifications (user_id, created_at)`,
  `CREATE INDEX idx_email_verifications_address ON email_verifications (lower(email), created_at)`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0020_email_verifications cannot be rolled back; restore a backup or write a new migration',
  );
}
