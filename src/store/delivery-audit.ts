// Delivery audits (NIP-77 reconciliation with upstream relays): which user relays are due, what each was sent and
// whether it acknowledged it, sending again what a relay turned out to lack (new outbox rows, which the forwarder
// works off and records as attempts), and the audit's figures on the relay's row.
import type { Knex } from 'knex';
import { CONNECTION_TYPE_SQL } from './forwarding-plan.js';

export interface AuditTarget {
  readonly userRelayId: string;
  readonly userId: string;
  readonly pubkey: string;
  readonly url: string;
  readonly supportedNips: number[] | null;
}

interface TargetRow {
  id: string;
  user_id: string;
  nostr_public_key: string;
  relay_url: string;
  supported_nips: number[] | null;
}

const toTarget = (r: TargetRow): AuditTarget => ({
  userRelayId: r.id,
  userId: r.user_id,
  pubkey: r.nostr_public_key,
  url: r.relay_url,
  supportedNips: r.supported_nips,
});

/** A user's active write relays (their own and their rows for the operator's defaults), marked as reconciled now. */
export async function claimUserTargets(db: Knex, userId: string): Promise<AuditTarget[]> {
  const { rows } = (await db.raw(
    `UPDATE user_relays r SET last_reconciled_at = now() FROM users u
     WHERE r.user_id = :user AND u.id = r.user_id AND r.is_active AND r.write
     RETURNING r.id, r.user_id, u.nostr_public_key, r.relay_url, r.supported_nips`,
    { user: userId },
  )) as { rows: TargetRow[] };
  return rows.map(toTarget);
}

/**
 * Up to `limit` active write relays not reconciled for `everySeconds`, each claimed (last_reconciled_at = now()) in
 * the statement that picks it: processes sweeping at once share the work and reconcile no relay twice.
 */
export async function claimDueTargets(db: Knex, everySeconds: number, limit: number): Promise<AuditTarget[]> {
  const { rows } = (await db.raw(
    `WITH due AS (
       SELECT r.id FROM user_relays r
       WHERE r.is_active AND r.write AND (r.last_reconciled_at IS NULL OR r.last_reconciled_at < now() - make_interval(secs => :every))
       ORDER BY r.last_reconciled_at NULLS FIRST
       LIMIT :limit
       FOR UPDATE SKIP LOCKED
     )
     UPDATE user_relays r SET last_reconciled_at = now() FROM due, users u
     WHERE r.id = due.id AND u.id = r.user_id
     RETURNING r.id, r.user_id, u.nostr_public_key, r.relay_url, r.supported_nips`,
    { every: everySeconds, limit },
  )) as { rows: TargetRow[] };
  return rows.map(toTarget);
}

export interface Forwarded {
  readonly eventRowId: string;
  readonly id: string;
  readonly createdAt: number;
  /** The relay answered OK true to one of the attempts. */
  readonly acknowledged: boolean;
}

/**
 * The user's served events since `since` (unix seconds) that were forwarded to this relay URL and are not on their
 * way there now (an outbox row still unfinished: not lost, only not delivered yet). Not expired (NIP-40).
 */
export async function forwardedTo(
  db: Knex,
  userId: string,
  url: string,
  since: number,
  nowSeconds: number,
): Promise<Forwarded[]> {
  const { rows } = (await db.raw(
    `SELECT e.id, e.event_id, e.created_at_nostr, bool_or(p.status = 'published') AS acknowledged
     FROM nostr_events e JOIN relay_publishes p ON p.event_id = e.id AND p.relay_url = :url
     WHERE e.user_id = :user AND e.removed_at IS NULL AND e.created_at_nostr >= :since
       AND (e.expires_at IS NULL OR e.expires_at > :now)
     GROUP BY e.id, e.event_id, e.created_at_nostr
     HAVING NOT bool_or(p.status IN ('pending', 'connecting', 'connected', 'publishing'))`,
    { url, user: userId, since, now: nowSeconds },
  )) as { rows: { id: string; event_id: string; created_at_nostr: string | number; acknowledged: boolean }[] };
  return rows.map((r) => ({
    eventRowId: r.id,
    id: r.event_id,
    createdAt: Number(r.created_at_nostr),
    acknowledged: r.acknowledged,
  }));
}

/**
 * Sends these events to the relay again: one new outbox row each (the forwarder delivers and records it like any
 * other), counted in the event's total_relays, whose status is 'publishing' again until it is delivered; and adds
 * the acknowledged ones among them to the relay's acknowledged_missing. One transaction.
 */
export async function requeueMissing(
  db: Knex,
  target: Pick<AuditTarget, 'userRelayId' | 'url'>,
  eventRowIds: readonly string[],
  acknowledgedMissing: number,
): Promise<number> {
  return db.transaction(async (trx) => {
    let queued = 0;
    if (eventRowIds.length > 0) {
      const { rows } = (await trx.raw(
        `INSERT INTO relay_publishes (event_id, user_relay_id, relay_url, connection_type)
         SELECT e, CAST(:relay AS uuid), CAST(:url AS text), ${CONNECTION_TYPE_SQL('CAST(:url AS text)')} FROM unnest(CAST(:ids AS uuid[])) AS e
         ON CONFLICT (event_id, relay_url, created_at) DO NOTHING
         RETURNING event_id`,
        { relay: target.userRelayId, url: target.url, ids: trx.raw('?', [eventRowIds as string[]]) },
      )) as { rows: unknown[] };
      queued = rows.length;
      await trx('nostr_events')
        .whereIn('id', eventRowIds)
        .update({ total_relays: trx.raw('total_relays + 1'), status: 'publishing', updated_at: trx.fn.now() });
    }
    await trx('user_relays')
      .where({ id: target.userRelayId })
      .update({
        acknowledged_missing: trx.raw('acknowledged_missing + ?', [acknowledgedMissing]),
        updated_at: trx.fn.now(),
      });
    return queued;
  });
}
