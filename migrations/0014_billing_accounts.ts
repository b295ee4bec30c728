// EXTENSION: what Stripe and ExtensionPay need beyond the founding schema (core/billing/).
//
// billing_accounts: a user's account at a payment provider: their Stripe customer (so Checkout reuses it and the
// Billing Portal can be opened), their ExtensionPay user (read on link, on a schedule and on request, since
// ExtensionPay sends no webhooks). One provider account belongs to one user (UNIQUE provider, provider_account_id:
// an ExtPay key linked elsewhere is refused), one user has one account per provider.
// - provider_account_id: the Stripe customer id; for ExtensionPay an HMAC-SHA256 of the user's ExtPay key (keyed
//   from DATA_ENCRYPTION_KEY), which finds a key already linked without storing or comparing it in clear.
// - provider_data_encrypted: the founding schema puts this column on `payments` ("Data Protection"); a provider
//   credential belongs to the link, not to one payment (a user may link before paying, and pays many times), so it
//   is declared here too, same name and type: the ExtPay key, AES-256-GCM with DATA_ENCRYPTION_KEY.
// - next_sync_at / sync_failures / last_sync_error: the ExtensionPay re-sync schedule (spread out, backed off after a
//   failure; a failure never changes the subscription).
//
// user_subscriptions.provider_state_at: the provider time of the state last applied to the row, so an older state
// (a webhook delivered late, a slow read) never overwrites a newer one.
// user_subscriptions.replaced_by: set when another subscription took this one's place as the user's one active
// subscription (a user paying through two providers): the row stays canceled whatever its provider says later, so
// two providers never take the place from each other back and forth.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `CREATE TABLE billing_accounts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider VARCHAR(50) NOT NULL,
    provider_account_id VARCHAR(100) NOT NULL,
    provider_data_encrypted BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_synced_at TIMESTAMPTZ,
    next_sync_at TIMESTAMPTZ,
    sync_failures INTEGER NOT NULL DEFAULT 0,
    last_sync_error TEXT,
    CONSTRAINT billing_accounts_provider_account_key UNIQUE (provider, provider_account_id),
    CONSTRAINT billing_accounts_user_provider_key UNIQUE (user_id, provider),
    CONSTRAINT valid_sync_failures CHECK (sync_failures >= 0)
  )`,
  // The scheduler's question: which linked accounts are due for a re-read.
  `CREATE INDEX idx_billing_accounts_due ON billing_accounts (provider, next_sync_at) WHERE next_sync_at IS NOT NULL`,
  `ALTER TABLE user_subscriptions ADD COLUMN provider_state_at TIMESTAMPTZ`,
  `ALTER TABLE user_subscriptions ADD COLUMN replaced_by UUID REFERENCES user_subscriptions (id)`,
  // findProviderSubscription: every webhook and sync looks its subscription up by the provider's id.
  `CREATE INDEX idx_subscriptions_provider_id ON user_subscriptions (payment_provider, payment_provider_id) WHERE payment_provider_id IS NOT NULL`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0014_billing_accounts cannot be rolled back; restore a backup or write a new migration',
  );
}
