// relay_publishes, the forwarding outbox: one row per (stored event, target relay), written in the admission
// transaction and worked off by forwarder workers.
//
// The lease protocol (every statement below keeps it):
// - claimDue picks due rows with FOR UPDATE SKIP LOCKED (so concurrent workers never pick the same row), and in
//   the same statement increments `attempts` (the attempt number), sets claimed_by = the worker and
//   claimed_until = now() + lease, and moves next_attempt_at to the lease's end: a leased row leaves the due range
//   of the index (the claim scans only rows it can take, not the ones in flight before them) and is due again
//   exactly when its lease runs out. A row is claimable when it is unfinished, due (next_attempt_at <= now()) and
//   not leased (claimed_until IS NULL or in the past: rows leased before next_attempt_at moved with the lease).
// - Only the holder writes the outcome: finishAttempts matches claimed_by AND attempts (the fence). A worker whose
//   lease ran out and whose row was claimed again matches nothing, so its late result is dropped and no attempt
//   is ever recorded twice.
// - A worker that died leaves claimed_by set; the next claim of that row appends an 'abandoned' entry for the lost
//   attempt to attempt_log, so every attempt number has exactly one entry.
// - releaseClaims gives back rows that were claimed but not attempted (attempts is decremented, nothing logged).
import type { Knex } from 'knex';
import { preparedColumns } from './array-columns.js';
import { queryPrepared } from './db.js';
import { sigText } from './events.js';
import type { NostrEvent } from '../nips/nip01.js';

// A row is 'pending' while it waits for an attempt and 'publishing' while a worker holds it; the finer steps of an
// attempt (connecting, connected, publishing, answered) are kept with their times in its attempt_log entry.
export type FinalStatus = 'published' | 'rejected' | 'failed' | 'timeout';

export interface ClaimedPublish {
  readonly id: string;
  /** created_at as Postgres text (microseconds kept), passed back as is to address the row. */
  readonly createdAt: string;
  readonly eventRowId: string;
  readonly userRelayId: string | null;
  readonly url: string;
  /** The number of this attempt (1 for the first). */
  readonly attempt: number;
  readonly ageSeconds: number;
  /** The error code of the previous attempt, if any. */
  readonly lastErrorCode: string | null;
  readonly userId: string;
  readonly timezone: string;
  /** The user_relays row still has no NIP-11 document. */
  readonly needsRelayInfo: boolean;
  readonly event: NostrEvent;
  /** Set when the event was taken out of the served set (deleted, replaced, expired, banned, vanished). */
  readonly removedReason: string | null;
}

interface ClaimRow {
  id: string;
  created_at: string;
  event_row_id: string;
  user_relay_id: string | null;
  relay_url: string;
  attempts: number;
  age_seconds: string | number;
  error_code: string | null;
  user_id: string;
  timezone: string | null;
  needs_info: boolean | null;
  ev_id: string;
  ev_pubkey: string;
  ev_created_at: string | number;
  ev_kind: number;
  ev_tags: string[][] | string;
  ev_content: string;
  ev_sig: string;
  removed_reason: string | null;
}

export interface ClaimOptions {
  readonly workerId: string;
  readonly limit: number;
  readonly leaseMs: number;
  /** Relays not to claim for now (paused by the breaker, or at their in-flight cap), unless the row is too old. */
  readonly excludeUrls: readonly string[];
  /** Rows older than this are claimed even for excluded relays, so they can be finished as expired. */
  readonly maxAgeSeconds: number;
  /** Many rows may be due (the previous claim was full): read them in index order whatever the statistics say. */
  readonly backlog: boolean;
}

const CLAIM_DUE = `WITH due AS (
    SELECT p.id, p.created_at, p.event_id
    FROM relay_publishes p
    WHERE p.status IN ('pending', 'connecting', 'connected', 'publishing')
      AND p.next_attempt_at <= now()
      AND (p.claimed_until IS NULL OR p.claimed_until < now())
      AND (p.relay_url <> ALL (CAST($1 AS text[])) OR p.created_at < now() - make_interval(secs => $2))
    ORDER BY p.next_attempt_at
    LIMIT $3
    FOR UPDATE OF p SKIP LOCKED
  )
  UPDATE relay_publishes p SET
    attempts = p.attempts + 1,
    status = 'publishing',
    attempted_at = now(),
    claimed_by = $4,
    claimed_until = now() + make_interval(secs => $5),
    next_attempt_at = now() + make_interval(secs => $5),
    attempt_log = CASE WHEN p.claimed_by IS NULL THEN p.attempt_log ELSE p.attempt_log || jsonb_build_array(jsonb_build_object(
      'attempt', p.attempts, 'worker', p.claimed_by, 'outcome', 'abandoned', 'error_code', 'lease_expired',
      'error_message', 'the worker that made this attempt stopped before recording its outcome',
      'noticed_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))) END
  FROM due, nostr_events e, users u
  WHERE p.id = due.id AND p.created_at = due.created_at AND e.id = due.event_id AND u.id = e.user_id
  RETURNING p.id, CAST(p.created_at AS text) AS created_at, p.event_id AS event_row_id, p.user_relay_id, p.relay_url,
    p.attempts, EXTRACT(EPOCH FROM now() - p.created_at) AS age_seconds, p.error_code,
    e.user_id, u.timezone,
    (SELECT r.relay_info IS NULL FROM user_relays r WHERE r.id = p.user_relay_id) AS needs_info,
    e.event_id AS ev_id, e.pubkey AS ev_pubkey, e.created_at_nostr AS ev_created_at, e.event_kind AS ev_kind,
    e.tags AS ev_tags, e.content AS ev_content, ${sigText('e')} AS ev_sig, e.removed_reason`;

/**
 * Claims up to `limit` due rows for this worker (see the lease protocol above), oldest due first.
 *
 * With a backlog, sorting is turned off for the claim: the due rows must be read in index order and the scan
 * stopped at `limit`. Without statistics (a partition filled faster than autovacuum analyses it, e.g. a backlog
 * built in its first minute), the planner guesses a few due rows and reads, locks and sorts all of them at every
 * claim instead. That costs three more round trips (a transaction for SET LOCAL), paid only when the previous claim
 * was full: when few rows are due, reading all of them is cheap whatever the plan, and one statement is faster.
 */
export async function claimDue(db: Knex, o: ClaimOptions): Promise<ClaimedPublish[]> {
  if (o.limit <= 0) return [];
  const values = [[...o.excludeUrls], o.maxAgeSeconds, o.limit, o.workerId, o.leaseMs / 1000];
  // Two prepared statements of the same text: each is always planned with the same enable_sort, so neither can
  // reuse a plan made under the other setting.
  const rows = o.backlog
    ? await db.transaction(async (trx) => {
        await trx.raw('SET LOCAL enable_sort = off');
        return queryPrepared<ClaimRow>(trx, 'nostrx_claim_due_backlog', CLAIM_DUE, values);
      })
    : await queryPrepared<ClaimRow>(db, 'nostrx_claim_due', CLAIM_DUE, values);
  return rows.map((r) => ({
    id: r.id,
    createdAt: r.created_at,
    eventRowId: r.event_row_id,
    userRelayId: r.user_relay_id,
    url: r.relay_url,
    attempt: r.attempts,
    ageSeconds: Number(r.age_seconds),
    lastErrorCode: r.error_code,
    userId: r.user_id,
    timezone: r.timezone ?? 'UTC',
    needsRelayInfo: r.needs_info === true,
    removedReason: r.removed_reason,
    event: {
      id: r.ev_id,
      pubkey: r.ev_pubkey,
      created_at: Number(r.ev_created_at),
      kind: r.ev_kind,
      tags: typeof r.ev_tags === 'string' ? (JSON.parse(r.ev_tags) as string[][]) : r.ev_tags,
      content: r.ev_content,
      sig: r.ev_sig,
    },
  }));
}

export interface ClaimKey {
  readonly id: string;
  readonly createdAt: string;
  readonly attempt: number;
}

/** Gives back claimed rows that were not attempted: the claim is undone (attempts - 1, due now), nothing is logged. */
export async function releaseClaims(db: Knex, workerId: string, keys: readonly ClaimKey[]): Promise<number> {
  if (keys.length === 0) return 0;
  const { rowCount } = (await db.raw(
    `UPDATE relay_publishes p SET attempts = p.attempts - 1, claimed_by = NULL, claimed_until = NULL, status = 'pending', next_attempt_at = now()
     FROM unnest(CAST(:ids AS uuid[]), CAST(:created AS timestamptz[]), CAST(:attempts AS integer[])) AS v (id, created_at, attempts)
     WHERE p.id = v.id AND p.created_at = v.created_at AND p.claimed_by = :worker AND p.attempts = v.attempts`,
    {
      ids: db.raw('?', [keys.map((k) => k.id)]),
      created: db.raw('?', [keys.map((k) => k.createdAt)]),
      attempts: db.raw('?', [keys.map((k) => k.attempt) as unknown as string[]]),
      worker: workerId,
    },
  )) as { rowCount: number };
  return rowCount;
}

/** What one attempt did; written to the row and appended to attempt_log. */
export interface AttemptRecord {
  /** The row's new status: a final one, or 'pending' when it is retried. */
  readonly status: FinalStatus | 'pending';
  /** For 'pending': when the next attempt is due, in ms from now. */
  readonly retryInMs?: number | undefined;
  readonly connectionTimeMs: number | null;
  readonly publishTimeMs: number | null;
  readonly totalTimeMs: number;
  /** The relay's exact answer (the OK message array), or null when there was none. */
  readonly relayResponse: unknown;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly ipAddress: string | null;
  /** The attempt_log entry (status transitions with times, timings, outcome). */
  readonly logEntry: Record<string, unknown>;
}

const FINISH_ATTEMPTS = `UPDATE relay_publishes p SET
    status = CAST(v.status AS relay_publish_status_enum),
    completed_at = CASE WHEN v.status = 'pending' THEN NULL ELSE now() END,
    next_attempt_at = CASE WHEN v.status = 'pending' THEN now() + make_interval(secs => v.retry_s) ELSE now() END,
    connection_time_ms = v.conn_ms,
    publish_time_ms = v.pub_ms,
    total_time_ms = v.total_ms,
    relay_response = v.response,
    error_message = v.err_msg,
    error_code = v.err_code,
    ip_address = CAST(v.ip AS inet),
    attempt_log = p.attempt_log || jsonb_build_array(v.entry),
    claimed_by = NULL,
    claimed_until = NULL
  FROM unnest(CAST($1 AS uuid[]), CAST($2 AS timestamptz[]), CAST($3 AS integer[]), CAST($4 AS text[]),
    CAST($5 AS float8[]), CAST($6 AS integer[]), CAST($7 AS integer[]), CAST($8 AS integer[]),
    CAST($9 AS jsonb[]), CAST($10 AS text[]), CAST($11 AS text[]), CAST($12 AS text[]), CAST($13 AS jsonb[]))
    AS v (id, created_at, attempts, status, retry_s, conn_ms, pub_ms, total_ms, response, err_msg, err_code, ip, entry)
  WHERE p.id = v.id AND p.created_at = v.created_at AND p.claimed_by = $14 AND p.attempts = v.attempts
  RETURNING p.id`;

/**
 * Writes the outcomes of attempts held by `workerId`, many rows in one statement (prepared: it runs for every
 * recorded batch). Each row is fenced (claimed_by and attempts must still match), so a result whose lease was lost
 * writes nothing. Returns the ids written.
 */
export async function finishAttempts(
  trx: Knex,
  workerId: string,
  items: readonly { key: ClaimKey; rec: AttemptRecord }[],
): Promise<Set<string>> {
  if (items.length === 0) return new Set();
  const col = preparedColumns(items);
  const rows = await queryPrepared<{ id: string }>(trx, 'nostrx_finish_attempts', FINISH_ATTEMPTS, [
    col((x) => x.key.id),
    col((x) => x.key.createdAt),
    col((x) => x.key.attempt),
    col((x) => x.rec.status),
    col((x) => (x.rec.retryInMs ?? 0) / 1000),
    col((x) => x.rec.connectionTimeMs),
    col((x) => x.rec.publishTimeMs),
    col((x) => x.rec.totalTimeMs),
    col((x) =>
      x.rec.relayResponse === null || x.rec.relayResponse === undefined ? null : JSON.stringify(x.rec.relayResponse),
    ),
    col((x) => x.rec.errorMessage),
    col((x) => x.rec.errorCode),
    col((x) => x.rec.ipAddress),
    col((x) => JSON.stringify(x.rec.logEntry)),
    workerId,
  ]);
  return new Set(rows.map((r) => r.id));
}

export interface EventOutcomes {
  readonly eventRowId: string;
  /** Targets of this event that became final now: taken by the relay, and not. */
  readonly ok: number;
  readonly failed: number;
  /** The relay and its answer or error, for failure_reason (null when none failed). */
  readonly failure: string | null;
}

const ADD_EVENT_OUTCOMES = `UPDATE nostr_events e SET
    successful_relays = e.successful_relays + v.ok,
    failed_relays = e.failed_relays + v.bad,
    status = CAST(CASE
      WHEN e.successful_relays + e.failed_relays + v.ok + v.bad < e.total_relays THEN 'publishing'
      WHEN e.successful_relays + v.ok >= e.total_relays THEN 'published'
      WHEN e.successful_relays + v.ok > 0 THEN 'partial'
      ELSE 'failed' END AS event_status_enum),
    published_at = CASE WHEN v.ok > 0 THEN COALESCE(e.published_at, now()) ELSE e.published_at END,
    failed_at = CASE WHEN e.successful_relays + e.failed_relays + v.ok + v.bad >= e.total_relays AND e.successful_relays + v.ok = 0
      THEN now() ELSE e.failed_at END,
    failure_reason = COALESCE(v.failure, e.failure_reason),
    publish_duration_ms = CASE WHEN e.successful_relays + e.failed_relays + v.ok + v.bad >= e.total_relays
      THEN CAST(LEAST(EXTRACT(EPOCH FROM now() - e.created_at) * 1000, 2147483647) AS integer) ELSE e.publish_duration_ms END,
    updated_at = now()
  FROM unnest(CAST($1 AS uuid[]), CAST($2 AS integer[]), CAST($3 AS integer[]), CAST($4 AS text[])) AS v (id, ok, bad, failure)
  WHERE e.id = v.id`;

/**
 * Adds finished targets to their events' totals (after finishAttempts, in its transaction). When the last target of
 * an event is final, the event gets its status: 'published' when every target took it, 'partial' when some did,
 * 'failed' when none did, and publish_duration_ms (from storing the event to its last outcome).
 * Prepared, as finishAttempts.
 */
export async function addEventOutcomes(trx: Knex, outcomes: readonly EventOutcomes[]): Promise<void> {
  if (outcomes.length === 0) return;
  const col = preparedColumns(outcomes);
  await queryPrepared(trx, 'nostrx_event_outcomes', ADD_EVENT_OUTCOMES, [
    col((x) => x.eventRowId),
    col((x) => x.ok),
    col((x) => x.failed),
    col((x) => x.failure),
  ]);
}

/** Unfinished outbox rows and the age of the oldest (for the nostrx_outbox_* gauges). */
export async function outboxBacklog(db: Knex): Promise<{ depth: number; oldestSeconds: number }> {
  const { rows } = (await db.raw(
    `SELECT count(*) AS depth, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) AS oldest
     FROM relay_publishes WHERE status IN ('pending', 'connecting', 'connected', 'publishing')`,
  )) as { rows: { depth: string | number; oldest: string | number }[] };
  return { depth: Number(rows[0]?.depth ?? 0), oldestSeconds: Number(rows[0]?.oldest ?? 0) };
}
