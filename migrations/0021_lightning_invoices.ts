// EXTENSION: Lightning invoices made through the operator's wallet over Nostr Wallet Connect (core/billing/lightning.ts).
//
// payments.payment_provider and payment_method are VARCHAR in the founding schema (no enum), so 'nwc' and 'lightning'
// need no change there. What an invoice buys does not fit `payments`, which records money only: the plan and cycle,
// the invoice itself (BOLT11), its expiry, when to ask the wallet about it again, and, once paid, the period it bought.
//
// - payment_hash: the invoice's id at the wallet, also payments.provider_payment_id of its payment row.
// - state: pending (made, not paid), paid (the wallet said so: the period is set), expired (the wallet confirmed it
//   unpaid at its expiry; the payment is canceled). expired → paid is allowed: a late payment is still credited.
// - next_check_at / checks: the lookup_invoice fallback, with backoff; NULL when nothing is left to ask.
// - period_start / period_end: the period the payment bought. Periods of one user follow each other: one bought while
//   another runs starts when it ends.
// - subscription_key: user_subscriptions.payment_provider_id of the subscription it belongs to: the payment hash of
//   the first invoice of a run of periods of the same plan (each one extends it).
import type { Knex } from 'knex';

const statements: readonly string[] = [
  `CREATE TABLE lightning_invoices (
    payment_hash VARCHAR(64) PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    plan_code VARCHAR(50) NOT NULL,
    billing_cycle billing_cycle_enum NOT NULL,
    amount_sats BIGINT NOT NULL,
    bolt11 TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    state VARCHAR(10) NOT NULL DEFAULT 'pending',
    next_check_at TIMESTAMPTZ,
    checks INTEGER NOT NULL DEFAULT 0,
    settled_at TIMESTAMPTZ,
    period_start TIMESTAMPTZ,
    period_end TIMESTAMPTZ,
    subscription_key VARCHAR(64),
    CONSTRAINT valid_payment_hash CHECK (payment_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT valid_invoice_state CHECK (state IN ('pending', 'paid', 'expired')),
    CONSTRAINT positive_amount_sats CHECK (amount_sats > 0),
    CONSTRAINT valid_checks CHECK (checks >= 0),
    CONSTRAINT paid_has_period CHECK (state <> 'paid' OR (settled_at IS NOT NULL AND period_end > period_start AND subscription_key IS NOT NULL))
  )`,
  // The poller's question: which invoices are due for a lookup_invoice.
  `CREATE INDEX idx_lightning_invoices_due ON lightning_invoices (next_check_at) WHERE next_check_at IS NOT NULL`,
  // A user's paid periods (where a new one starts), and the runs that are due to start.
  `CREATE INDEX idx_lightning_invoices_periods ON lightning_invoices (user_id, period_end) WHERE state = 'paid'`,
  `CREATE INDEX idx_lightning_invoices_starts ON lightning_invoices (period_start) WHERE state = 'paid'`,
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of statements) await knex.raw(sql);
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0021_lightning_invoices cannot be rolled back; restore a backup or write a new migration',
  );
}
