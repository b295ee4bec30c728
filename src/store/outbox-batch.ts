// The forwarding outbox for a group commit: the targets of many users and the relay_publishes rows of many
// events, each in one statement (see outbox.ts and user-relays.ts for the one-event forms and the rules).
import type { Knex } from 'knex';
import type { RelayTarget } from './user-relays.js';

/** Which of these users' effective plans allow custom relays (the active subscription's plan, else basic). */
export async function customRelaysAllowedOf(db: Knex, userIds: readonly string[]): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const { rows } = (await db.raw(
    `SELECT u.id FROM unnest(CAST(? AS uuid[])) AS u (id)
     WHERE COALESCE(
       (SELECT p.custom_relays_allowed FROM user_subscriptions s JOIN subscription_plans p ON p.id = s.plan_id
        WHERE s.user_id = u.id AND s.status = 'active' LIMIT 1),
       (SELECT custom_relays_allowed FROM subscription_plans WHERE plan_code = 'basic'),
       false)`,
    [[...userIds]],
  )) as { rows: { id: string }[] };
  return new Set(rows.map((r) => r.id));
}

/** Each user's active custom write relays ('api' and 'nip65'), in the order they were added. */
export async function activeWriteRelaysOf(db: Knex, userIds: readonly string[]): Promise<Map<string, RelayTarget[]>> {
  const out = new Map<string, RelayTarget[]>(userIds.map((u) => [u, []]));
  if (userIds.length === 0) return out;
  const rows = (await db('user_relays')
    .whereIn('user_id', [...userIds])
    .where({ is_active: true, write: true })
    .whereIn('source', ['api', 'nip65'])
    .orderBy('added_at')
    .select('id', 'user_id', 'relay_url')) as { id: string; user_id: string; relay_url: string }[];
  for (const r of rows) out.get(r.user_id)?.push({ userRelayId: r.id, url: r.relay_url });
  return out;
}

/**
 * Each user's rows for the default relays, created where missing (source 'default'), in one insert and one
 * read. A user's own row for the same URL is used as it is.
 */
export async function ensureDefaultRelaysOf(db: Knex, userIds: readonly string[], urls: readonly string[]): Promise<Map<string, RelayTarget[]>> {
  const out = new Map<string, RelayTarget[]>(userIds.map((u) => [u, []]));
  if (userIds.length === 0 || urls.length === 0) return out;
  await db.raw(
    `INSERT INTO user_relays (user_id, relay_url, is_default, source, read, write)
     SELECT u, url, true, 'default', false, true FROM unnest(CAST(? AS uuid[])) AS u CROSS JOIN unnest(CAST(? AS text[])) AS url
     ON CONFLICT (user_id, relay_url) DO NOTHING`,
    [[...userIds], [...urls]],
  );
  const rows = (await db('user_relays').whereIn('user_id', [...userIds]).whereIn('relay_url', [...urls]).select('id', 'user_id', 'relay_url')) as {
    id: string;
    user_id: string;
    relay_url: string;
  }[];
  const byKey = new Map(rows.map((r) => [`${r.user_id} ${r.relay_url}`, r.id]));
  for (const u of userIds) {
    for (const url of new Set(urls)) {
      const id = byKey.get(`${u} ${url}`);
      if (id) out.get(u)?.push({ userRelayId: id, url });
    }
  }
  return out;
}

/** One relay_publishes row per (event, target), and each event's total_relays/status, in two statements. */
export async function enqueuePublishesMany(trx: Knex.Transaction, rows: readonly { eventRowId: string; userRelayId: string | null; url: string }[]): Promise<void> {
  if (rows.length === 0) return;
  const { rows: queued } = (await trx.raw(
    `INSERT INTO relay_publishes (event_id, user_relay_id, relay_url, connection_type)
     SELECT t.event_id, t.relay_id, t.url, CASE WHEN t.url LIKE 'wss%' THEN 'wss' ELSE 'ws' END
     FROM unnest(CAST(? AS uuid[]), CAST(? AS uuid[]), CAST(? AS text[])) AS t (event_id, relay_id, url)
     ON CONFLICT (event_id, relay_url, created_at) DO NOTHING
     RETURNING event_id`,
    [rows.map((r) => r.eventRowId), rows.map((r) => r.userRelayId) as string[], rows.map((r) => r.url)], // NULL entries are sent as SQL NULLs
  )) as { rows: { event_id: string }[] };
  const counts = new Map<string, number>();
  for (const r of queued) counts.set(r.event_id, (counts.get(r.event_id) ?? 0) + 1);
  if (counts.size === 0) return;
  await trx.raw(
    `UPDATE nostr_events e SET total_relays = e.total_relays + c.n, status = 'publishing', updated_at = now()
     FROM unnest(CAST(? AS uuid[]), CAST(? AS int[])) AS c (id, n) WHERE e.id = c.id`,
    [[...counts.keys()], [...counts.values()]],
  );
}

/** Events stored but deliberately not forwarded, with the reason on their record. */
export async function markNotForwardedMany(trx: Knex.Transaction, eventRowIds: readonly string[], reason: string): Promise<void> {
  if (eventRowIds.length === 0) return;
  await trx('nostr_events')
    .whereIn('id', [...eventRowIds])
    .update({ status: 'published', total_relays: 0, published_at: trx.fn.now(), failure_reason: `not forwarded: ${reason}`, publish_duration_ms: 0, updated_at: trx.fn.now() });
}
