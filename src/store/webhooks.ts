// payment_webhook_events: the inbox of payment-provider webhooks, one row per provider event id. Inserted in the
// transaction that applies the event, so an event is applied exactly once: a redelivery finds the row (after
// waiting for a concurrent first delivery to commit) and changes nothing.
import type { Knex } from 'knex';

/** True when this event is new (and now recorded); false when it was already applied. */
export async function recordWebhookEvent(
  trx: Knex.Transaction,
  e: { provider: string; eventId: string; type: string; payload: unknown },
): Promise<boolean> {
  const rows = (await trx('payment_webhook_events')
    .insert({
      provider: e.provider,
      provider_event_id: e.eventId,
      event_type: e.type,
      payload: JSON.stringify(e.payload),
    })
    .onConflict(['provider', 'provider_event_id'])
    .ignore()
    .returning('provider_event_id')) as unknown[];
  return rows.length > 0;
}

/** True when a subscription.canceled webhook for this provider subscription was received (known to us then or not). */
export async function canceledByWebhook(
  trx: Knex.Transaction,
  provider: string,
  subscriptionId: string,
): Promise<boolean> {
  const row = (await trx('payment_webhook_events')
    .where({ provider, event_type: 'subscription.canceled' })
    .whereRaw(`payload->'data'->>'subscription_id' = ?`, [subscriptionId])
    .first(trx.raw('1 AS found'))) as { found: number } | undefined;
  return row !== undefined;
}
