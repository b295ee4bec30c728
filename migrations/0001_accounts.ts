// Accounts and billing: users, user_sessions, subscription_plans (seeded), user_subscriptions, payments, and the
// payment-provider webhook inbox. Source: the founding schema (the project's first database design document, not
// kept in this repository), its sections 1–2, "Business Logic Constraints" and "Security Considerations". Repairs
// of the founding schema are marked REPAIR, our additions EXTENSION.
//
// General rules for every migration in this folder:
// - One SQL statement per knex.raw call: PGlite refuses multi-statement raw queries.
// - No `?` anywhere in the SQL: knex.raw turns every `?` into a bind placeholder ($1 …) even when no bindings are
//   passed, so a regex like 'wss?://' would silently become 'wss$1://'. Write (ws|wss), {0,1} and so on instead.
// - Every statement must run on PostgreSQL 15 (the server) and PGlite 0.5.16 (PostgreSQL 18): no PG 16+ syntax.
// - REPAIR: the spec's `schema_migrations` table is not created. knex keeps its own ledger (knex_migrations and
//   knex_migrations_lock), written by src/store/migrate.ts; a second hand-written ledger could only disagree with it.
// - REPAIR: columns that have a DEFAULT and no meaning for NULL (flags, counters, statuses, created_at …) are
//   NOT NULL, and every row that belongs to a user has `user_id … NOT NULL`. In the spec they were NULL-able, so a
//   NULL status or a NULL counter could slip past CHECKs and partial indexes (NULL is never 'active', and
//   NULL + 1 is NULL).
// - REPAIR: where the spec creates a plain index on exactly the columns of a UNIQUE constraint (or on a leading
//   prefix of one), we do not create it: the UNIQUE constraint already builds that btree index, and a second
//   index costs only writes.
// - Forward-only: down() throws. Roll back by restoring a backup, or by writing a new forward migration.
import type { Knex } from 'knex';

const statements: readonly string[] = [
  // REPAIR: the spec creates each enum type after the table that uses it; they come first here.
  `CREATE TYPE user_status_enum AS ENUM ('active', 'suspended', 'deleted', 'pending_verification')`,
  `CREATE TYPE subscription_status_enum AS ENUM ('active', 'past_due', 'canceled', 'unpaid', 'incomplete', 'trialing')`,
  `CREATE TYPE billing_cycle_enum AS ENUM ('monthly', 'yearly', 'lifetime')`,
  `CREATE TYPE payment_status_enum AS ENUM ('pending', 'processing', 'succeeded', 'failed', 'canceled', 'refunded')`,

  // REPAIR: `email_encrypted BYTEA` (spec, "Data Protection") is not created: it duplicates `email`, and two
  // copies of one value drift apart. If email must be encrypted at rest, encrypt `email` itself in a later migration.
  // REPAIR: the pubkey CHECK is lowercase hex, not only LENGTH = 64: NIP-01 keys are lowercase hex, and an
  // uppercase spelling would create a second account for the same key.
  `CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    nostr_public_key VARCHAR(64) NOT NULL,
    extension_id VARCHAR(64),
    email VARCHAR(320),
    display_name VARCHAR(100),
    avatar_url TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_active_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_login_at TIMESTAMPTZ,
    email_verified BOOLEAN NOT NULL DEFAULT false,
    status user_status_enum NOT NULL DEFAULT 'active',
    data_retention_days INTEGER NOT NULL DEFAULT 90,
    analytics_enabled BOOLEAN NOT NULL DEFAULT true,
    marketing_emails BOOLEAN NOT NULL DEFAULT false,
    timezone VARCHAR(50) NOT NULL DEFAULT 'UTC',
    locale VARCHAR(10) NOT NULL DEFAULT 'en-US',
    created_from_ip INET,
    user_agent TEXT,
    CONSTRAINT users_nostr_public_key_key UNIQUE (nostr_public_key),
    CONSTRAINT valid_nostr_pubkey CHECK (nostr_public_key ~ '^[0-9a-f]{64}$'),
    CONSTRAINT valid_email CHECK (email IS NULL OR email ~* '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$'),
    CONSTRAINT valid_data_retention CHECK (data_retention_days >= 0)
  )`,
  // idx_users_nostr_pubkey is not created: users_nostr_public_key_key (UNIQUE) is that index.
  `CREATE INDEX idx_users_extension_id ON users (extension_id)`,
  `CREATE INDEX idx_users_email ON users (email) WHERE email IS NOT NULL`,
  `CREATE INDEX idx_users_status ON users (status)`,
  `CREATE INDEX idx_users_last_active ON users (last_active_at)`,
  // REPAIR: the spec's idx_users_active_subscription (`WHERE id IN (SELECT … FROM user_subscriptions …)`) is not
  // allowed (index predicates cannot hold subqueries). Its lookup is served by the users primary key joined to
  // idx_subscriptions_one_active (the partial unique index on user_subscriptions below), so no index replaces it.

  `CREATE TABLE user_sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    extension_id VARCHAR(64) NOT NULL,
    session_token VARCHAR(128) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    extension_version VARCHAR(20),
    browser_name VARCHAR(50),
    browser_version VARCHAR(50),
    os VARCHAR(50),
    ip_address INET,
    is_active BOOLEAN NOT NULL DEFAULT true,
    revoked_at TIMESTAMPTZ,
    revoked_reason TEXT,
    CONSTRAINT user_sessions_session_token_key UNIQUE (session_token)
  )`,
  `CREATE INDEX idx_sessions_user_id ON user_sessions (user_id)`,
  // idx_sessions_token is not created: user_sessions_session_token_key (UNIQUE) is that index.
  `CREATE INDEX idx_sessions_expires ON user_sessions (expires_at)`,

  `CREATE TABLE subscription_plans (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    plan_code VARCHAR(50) NOT NULL,
    name VARCHAR(100) NOT NULL,
    description TEXT,
    price_monthly DECIMAL(10, 2) NOT NULL DEFAULT 0.00,
    price_yearly DECIMAL(10, 2),
    currency VARCHAR(3) NOT NULL DEFAULT 'USD',
    daily_post_limit INTEGER NOT NULL,
    monthly_post_limit INTEGER,
    custom_relays_allowed BOOLEAN NOT NULL DEFAULT false,
    analytics_enabled BOOLEAN NOT NULL DEFAULT false,
    priority_support BOOLEAN NOT NULL DEFAULT false,
    multiple_identities BOOLEAN NOT NULL DEFAULT false,
    is_active BOOLEAN NOT NULL DEFAULT true,
    is_public BOOLEAN NOT NULL DEFAULT true,
    sort_order INTEGER NOT NULL DEFAULT 100,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT subscription_plans_plan_code_key UNIQUE (plan_code),
    CONSTRAINT valid_plan_prices CHECK (price_monthly >= 0 AND (price_yearly IS NULL OR price_yearly >= 0)),
    -- -1 means unlimited (spec comment); anything below -1 is meaningless.
    CONSTRAINT valid_plan_limits CHECK (daily_post_limit >= -1 AND (monthly_post_limit IS NULL OR monthly_post_limit >= -1))
  )`,
  // idx_plans_code is not created: subscription_plans_plan_code_key (UNIQUE) is that index.
  `CREATE INDEX idx_plans_active ON subscription_plans (is_active, is_public)`,

  // REPAIR: the spec's `CONSTRAINT one_active_subscription_per_user UNIQUE(user_id) DEFERRABLE` allows one
  // subscription row per user ever, so no history, and its later `EXCLUDE (user_id WITH =) WHERE (status =
  // 'active')` needs the btree_gist extension. The intent, one *active* subscription per user with any number of
  // past ones, is the partial unique index idx_subscriptions_one_active below. It is not deferrable (unique
  // indexes cannot be); a plan change cancels the old row before it inserts the new one, in one transaction.
  `CREATE TABLE user_subscriptions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    plan_id UUID NOT NULL REFERENCES subscription_plans (id),
    status subscription_status_enum NOT NULL DEFAULT 'active',
    billing_cycle billing_cycle_enum NOT NULL DEFAULT 'monthly',
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    current_period_start TIMESTAMPTZ NOT NULL DEFAULT now(),
    current_period_end TIMESTAMPTZ,
    ends_at TIMESTAMPTZ,
    canceled_at TIMESTAMPTZ,
    amount DECIMAL(10, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL DEFAULT 'USD',
    payment_provider_id VARCHAR(100),
    payment_provider VARCHAR(50) NOT NULL DEFAULT 'extensionpay',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    notes TEXT,
    CONSTRAINT valid_subscription_period CHECK (current_period_end > current_period_start),
    CONSTRAINT valid_subscription_amount CHECK (amount >= 0)
  )`,
  `CREATE UNIQUE INDEX idx_subscriptions_one_active ON user_subscriptions (user_id) WHERE status = 'active'`,
  // Kept although idx_subscriptions_one_active also leads with user_id: that one covers active rows only.
  `CREATE INDEX idx_subscriptions_user_id ON user_subscriptions (user_id)`,
  `CREATE INDEX idx_subscriptions_status ON user_subscriptions (status)`,
  `CREATE INDEX idx_subscriptions_period ON user_subscriptions (current_period_start, current_period_end)`,
  `CREATE INDEX idx_subscriptions_plan_id ON user_subscriptions (plan_id)`,

  // REPAIR: `archived` is used by the spec's retention query (UPDATE payments SET archived = true …) but was never
  // declared; it is declared here. provider_data_encrypted BYTEA is kept (spec, "Data Protection").
  // Note: ON DELETE CASCADE from users is the spec's; it deletes payment records with the user, which the 7-year
  // retention rule may forbid. Deleting users is therefore expected to be a status change ('deleted'), not a DELETE.
  `CREATE TABLE payments (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    subscription_id UUID REFERENCES user_subscriptions (id),
    amount DECIMAL(10, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL DEFAULT 'USD',
    status payment_status_enum NOT NULL DEFAULT 'pending',
    payment_provider VARCHAR(50) NOT NULL DEFAULT 'extensionpay',
    provider_payment_id VARCHAR(100),
    provider_customer_id VARCHAR(100),
    payment_method VARCHAR(50),
    last_four_digits VARCHAR(4),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ,
    failed_at TIMESTAMPTZ,
    failure_reason TEXT,
    provider_fee DECIMAL(10, 2),
    net_amount DECIMAL(10, 2),
    invoice_url TEXT,
    receipt_url TEXT,
    provider_data_encrypted BYTEA,
    archived BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT payments_provider_payment_id_key UNIQUE (provider_payment_id),
    CONSTRAINT positive_amount CHECK (amount >= 0),
    CONSTRAINT valid_last_four CHECK (last_four_digits IS NULL OR last_four_digits ~ '^[0-9]{4}$')
  )`,
  `CREATE INDEX idx_payments_user_id ON payments (user_id)`,
  `CREATE INDEX idx_payments_subscription_id ON payments (subscription_id)`,
  `CREATE INDEX idx_payments_status ON payments (status)`,
  // idx_payments_provider_id is not created: payments_provider_payment_id_key (UNIQUE) is that index.
  `CREATE INDEX idx_payments_created_at ON payments (created_at)`,
  `CREATE INDEX idx_payments_successful ON payments (created_at, amount) WHERE status = 'succeeded'`,

  // EXTENSION: payment-provider webhooks, one row per provider event, so a redelivered webhook is recognised
  // (INSERT … ON CONFLICT DO NOTHING) and applied once.
  `CREATE TABLE payment_webhook_events (
    provider VARCHAR(50) NOT NULL,
    provider_event_id VARCHAR(200) NOT NULL,
    event_type VARCHAR(100) NOT NULL,
    payload JSONB NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, provider_event_id)
  )`,
];

// The three plans of the spec's INSERT, with the columns it left to their defaults made explicit.
const plans = [
  {
    plan_code: 'basic',
    name: 'Basic',
    description: 'Perfect for casual users',
    price_monthly: '0.00',
    daily_post_limit: 3,
    custom_relays_allowed: false,
    analytics_enabled: false,
    multiple_identities: false,
    sort_order: 10,
  },
  {
    plan_code: 'premium',
    name: 'Premium',
    description: 'Great for regular posters',
    price_monthly: '4.99',
    daily_post_limit: 25,
    custom_relays_allowed: true,
    analytics_enabled: true,
    multiple_identities: false,
    sort_order: 20,
  },
  {
    plan_code: 'advanced',
    name: 'Advanced',
    description: 'For power users and creators',
    price_monthly: '9.99',
    daily_post_limit: -1,
    custom_relays_allowed: true,
    analytics_enabled: true,
    multiple_identities: true,
    sort_order: 30,
  },
] as const;

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
  await knex('subscription_plans').insert(plans.map((p) => ({ ...p, price_yearly: null, monthly_post_limit: null })));
}

export async function down(): Promise<void> {
  throw new Error('forward-only: 0001_accounts cannot be rolled back; restore a backup or write a new migration');
}
