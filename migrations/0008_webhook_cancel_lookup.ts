// Payment webhooks that arrive out of order: a subscription.canceled for a subscription not yet known is recorded
// in payment_webhook_events (and acknowledged), and a subscription.created for it that arrives later must find it
// there to stay canceled. This index answers "was this provider subscription canceled?" without reading every
// webhook ever received.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(
    `CREATE INDEX idx_payment_webhook_events_canceled ON payment_webhook_events (provider, (payload->'data'->>'subscription_id'))
     WHERE event_type = 'subscription.canceled'`,
  );
}

export async function down(): Promise<void> {
  throw new Error(
    'forward-only: 0008_webhook_cancel_lookup cannot be rolled back; restore a backup or write a new migration',
  );
}
