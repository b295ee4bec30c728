// Where a stored event is forwarded, as it is written: the outbox rows go in the statement that stores the event
// (event-batch.ts) or in the one right after it (enqueuePlanned), in the same transaction. The choice between
// the user's own relays and the operator's defaults is made here, in SQL, once for both: the user's own relays
// are read in that statement, so a group commit costs no round trip of its own to look them up.
import type { Knex } from 'knex';
import { numbered, queryPrepared } from './db.js';
import { customSources, type RelayTarget } from './user-relays.js';

/** What admission decided for an event (core/forwarding/enqueue.ts); the statement that stores it applies the decision. */
export interface Forwarding {
  /** The targets are the user's own active write relays when they have any (their plan allows them). */
  readonly ownRelaysFirst: boolean;
  /** The targets otherwise: the operator's default relays, as the user's rows for them. */
  readonly targets: readonly RelayTarget[];
  /**
   * The targets otherwise, for an author whose account the storing statement saves (an unsaved account has no
   * rows yet): the default relays' URLs, whose rows that statement makes with the account (event-batch.ts).
   */
  readonly newTargets?: readonly string[];
  /**
   * Why the event is not forwarded, when it ends up with no target (stored on its row); null for an event whose row
   * says why by its source (NOT_FORWARDED_IMPORT).
   */
  readonly notForwarded: string | null;
}

/** Not forwarded, for `reason`, whatever relays the user has. */
export const notForwarded = (reason: string): Forwarding => ({
  ownRelaysFirst: false,
  targets: [],
  notForwarded: reason,
});

/** The plan of an event no relay is configured for. */
export const NO_UPSTREAM: Forwarding = notForwarded('no upstream relays are configured');

/** The source_platform of an event imported from a dump (core/transfer), forwarded or not. */
export const IMPORTED = 'import';

/**
 * An imported event's plan without --forward. Its row gets no failure_reason: its source_platform (IMPORTED) says
 * why, and its record gives IMPORTED_REASON (event-records.ts). The same 42 bytes of text on every imported row were
 * ~3 % of the store (docs/benchmarks.md).
 */
export const NOT_FORWARDED_IMPORT: Forwarding = { ownRelaysFirst: false, targets: [], notForwarded: null };

/** How a row's failure_reason begins when the event was sent nowhere, and the reason follows. */
const NOT_FORWARDED_PREFIX = 'not forwarded: ';

/** NOT_FORWARDED_PREFIX as the SQL literal the storing statements write. */
export const NOT_FORWARDED_SQL = `'${NOT_FORWARDED_PREFIX}'`;

/** Why an imported event was not forwarded, as its record says (the text its row would have held). */
export const IMPORTED_REASON = `${NOT_FORWARDED_PREFIX}imported without --forward`;

const CUSTOM_SOURCES = customSources.map((s) => `'${s}'`).join(', ');

/**
 * The targets of the events in a CTE `plan` (event_id, user_id, own_first), with their planned targets in a CTE
 * `planned` (event_id, relay_id, url): `target` (event_id, relay_id, url), one row per outbox row, and
 * `target_count` (event_id, n). The rule: the user's own relays when own_first and they have any, else the
 * planned ones.
 */
export const TARGETS_SQL = `
own AS (
  SELECT u.user_id, r.relay_id, r.url
  FROM (SELECT DISTINCT user_id FROM plan WHERE own_first) u
  CROSS JOIN LATERAL (
    SELECT r.id AS relay_id, r.relay_url AS url FROM user_relays r
    WHERE r.user_id = u.user_id AND r.is_active AND r.write AND r.source IN (${CUSTOM_SOURCES})
    -- OFFSET 0 keeps this a look-up per user by the (user_id, relay_url) key rather than a join the planner may
    -- make a scan of every user's relays from a cached plan (store/event-batch.ts)
    OFFSET 0
  ) r
),
target AS (
  SELECT p.event_id, o.relay_id, o.url FROM plan p JOIN own o ON o.user_id = p.user_id WHERE p.own_first
  UNION ALL
  SELECT d.event_id, d.relay_id, d.url FROM planned d JOIN plan p ON p.event_id = d.event_id
  WHERE NOT (p.own_first AND EXISTS (SELECT 1 FROM own o WHERE o.user_id = p.user_id))
),
target_count AS (
  SELECT event_id, count(*) AS n FROM target GROUP BY event_id
)`;

/** The outbox row's connection type, from its URL. */
export const CONNECTION_TYPE_SQL = (url: string): string => `CASE WHEN ${url} LIKE 'wss%' THEN 'wss' ELSE 'ws' END`;

// Every outbox row gets the transaction's now() as created_at, so the UNIQUE (event_id, relay_url, created_at)
// key makes a repeat in the same transaction a no-op.
const ENQUEUE_PLANNED = numbered(`
WITH plan AS (
  SELECT CAST(? AS uuid) AS row_id, CAST(? AS text) AS event_id, CAST(? AS uuid) AS user_id, CAST(? AS boolean) AS own_first,
    CAST(? AS text) AS not_forwarded
),
planned AS (
  SELECT * FROM unnest(CAST(? AS text[]), CAST(? AS uuid[]), CAST(? AS text[])) AS d (event_id, relay_id, url)
),
${TARGETS_SQL},
queued AS (
  INSERT INTO relay_publishes (event_id, user_relay_id, relay_url, connection_type)
  SELECT p.row_id, t.relay_id, t.url, ${CONNECTION_TYPE_SQL('t.url')} FROM target t CROSS JOIN plan p
  ON CONFLICT (event_id, relay_url, created_at) DO NOTHING
  RETURNING 1
),
counted AS (SELECT count(*) AS n FROM queued)
UPDATE nostr_events e SET
  total_relays = e.total_relays + c.n,
  status = CAST(CASE WHEN e.total_relays + c.n > 0 THEN 'publishing' ELSE 'published' END AS event_status_enum),
  published_at = CASE WHEN e.total_relays + c.n > 0 THEN e.published_at ELSE now() END,
  publish_duration_ms = CASE WHEN e.total_relays + c.n > 0 THEN e.publish_duration_ms ELSE 0 END,
  failure_reason = CASE WHEN e.total_relays + c.n > 0 THEN e.failure_reason ELSE ${NOT_FORWARDED_SQL} || p.not_forwarded END,
  updated_at = now()
FROM counted c, plan p
WHERE e.id = p.row_id
RETURNING c.n`);

/**
 * For one event stored on its own (replaceable, addressable, deletions), in its transaction: writes its outbox
 * rows as `plan` decides and records their number on the event, or that it is not forwarded and why (status
 * 'published' with total_relays 0: every one of its zero targets has it). True when it queued any row.
 */
export async function enqueuePlanned(
  trx: Knex.Transaction,
  event: { rowId: string; eventId: string; userId: string },
  plan: Forwarding,
): Promise<boolean> {
  const rows = await queryPrepared<{ n: string | number }>(trx, 'nostrx_enqueue_planned', ENQUEUE_PLANNED, [
    event.rowId,
    event.eventId,
    event.userId,
    plan.ownRelaysFirst,
    plan.notForwarded,
    plan.targets.map(() => event.eventId),
    plan.targets.map((t) => t.userRelayId),
    plan.targets.map((t) => t.url),
  ]);
  return Number(rows[0]?.n ?? 0) > 0;
}
