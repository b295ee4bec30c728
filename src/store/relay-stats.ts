// Forwarding statistics: per user and relay in user_relays, per user and day in daily_usage_stats, and the
// upstream relays' NIP-11 documents. Written by the forwarder in the transaction that records a batch of attempts,
// each table with one statement per batch.
import type { Knex } from 'knex';
import { preparedColumns } from './array-columns.js';
import { queryPrepared } from './db.js';
import { notErased } from './usage.js';

/** What a batch of attempts did to one user_relays row (the forwarder adds the attempts up, in order). */
export interface RelayStatsDelta {
  readonly userRelayId: string;
  /** Some attempt connected (a new or an already open connection). */
  readonly connected: boolean;
  /** Rows that became final (each counts as one publish in total_publishes). */
  readonly finals: number;
  /** Publishes the relay took (OK true, or duplicate). */
  readonly successes: number;
  /** Rows that became final without the relay taking them (rejected, failed, timeout). */
  readonly finalFailures: number;
  /** Sum of send → OK times of the successful publishes. */
  readonly successMsTotal: number;
  /** Attempts that failed (transient or final). */
  readonly failures: number;
  /** Some attempt was answered (OK true or false): the breaker count restarts from `trailingHealthFailures`. */
  readonly answered: boolean;
  /** Health failures (timeouts, connection errors, error:/rate-limited:) after the last answer in the batch. */
  readonly trailingHealthFailures: number;
  /** The relay is paused by the circuit breaker until then (this process's view), if it opened. */
  readonly pausedUntil: Date | null;
}

const ADD_RELAY_STATS = `UPDATE user_relays r SET
    last_connected_at = CASE WHEN v.connected THEN now() ELSE r.last_connected_at END,
    total_publishes = r.total_publishes + v.finals,
    successful_publishes = r.successful_publishes + v.successes,
    failed_publishes = r.failed_publishes + v.final_failures,
    success_rate = CASE WHEN r.total_publishes + v.finals > 0
      THEN ROUND(100.0 * (r.successful_publishes + v.successes) / (r.total_publishes + v.finals), 2) ELSE r.success_rate END,
    avg_response_time_ms = CASE WHEN v.successes > 0
      THEN CAST(ROUND((COALESCE(r.avg_response_time_ms, 0) * CAST(r.successful_publishes AS numeric) + v.success_ms) / (r.successful_publishes + v.successes)) AS integer)
      ELSE r.avg_response_time_ms END,
    last_publish_success = CASE WHEN v.successes > 0 THEN now() ELSE r.last_publish_success END,
    last_publish_failure = CASE WHEN v.failures > 0 THEN now() ELSE r.last_publish_failure END,
    consecutive_failures = CASE WHEN v.answered THEN v.trailing_failures ELSE r.consecutive_failures + v.trailing_failures END,
    paused_until = CASE WHEN v.answered AND v.trailing_failures = 0 THEN NULL ELSE COALESCE(v.paused_until, r.paused_until) END,
    updated_at = now()
  FROM unnest(CAST($1 AS uuid[]), CAST($2 AS boolean[]), CAST($3 AS integer[]), CAST($4 AS integer[]),
    CAST($5 AS integer[]), CAST($6 AS bigint[]), CAST($7 AS integer[]), CAST($8 AS boolean[]),
    CAST($9 AS integer[]), CAST($10 AS timestamptz[]))
    AS v (id, connected, finals, successes, final_failures, success_ms, failures, answered, trailing_failures, paused_until)
  WHERE r.id = v.id`;

/**
 * Updates user_relays after a batch of attempts: publish counts and success_rate (over finished publishes),
 * avg_response_time_ms (running mean over successful publishes), last success/failure and connection times, and
 * the breaker fields consecutive_failures / paused_until. One prepared statement for the whole batch.
 */
export async function addRelayStats(trx: Knex, deltas: readonly RelayStatsDelta[]): Promise<void> {
  if (deltas.length === 0) return;
  const col = preparedColumns(deltas);
  await queryPrepared(trx, 'nostrx_relay_stats', ADD_RELAY_STATS, [
    col((x) => x.userRelayId),
    col((x) => x.connected),
    col((x) => x.finals),
    col((x) => x.successes),
    col((x) => x.finalFailures),
    col((x) => Math.round(x.successMsTotal)),
    col((x) => x.failures),
    col((x) => x.answered),
    col((x) => x.trailingHealthFailures),
    col((x) => (x.pausedUntil ? x.pausedUntil.toISOString() : null)),
  ]);
}

/** A batch's attempts of one user on one day (in the user's timezone, YYYY-MM-DD). */
export interface DailyRelayDelta {
  readonly userId: string;
  readonly statDate: string;
  readonly attempts: number;
  readonly successes: number;
  /** Send → OK times of the successful publishes: their sum, min and max (null when none). */
  readonly successMsTotal: number;
  readonly minMs: number | null;
  readonly maxMs: number | null;
}

const ADD_DAILY_RELAY_STATS = `INSERT INTO daily_usage_stats AS d (user_id, stat_date, total_relay_attempts, successful_relay_publishes,
    avg_publish_time_ms, min_publish_time_ms, max_publish_time_ms, unique_relays_used)
  SELECT v.user_id, v.day, v.attempts, v.successes,
    CASE WHEN v.successes > 0 THEN CAST(ROUND(v.success_ms / CAST(v.successes AS numeric)) AS integer) END, v.min_ms, v.max_ms,
    (SELECT count(*) FROM user_relays r WHERE r.user_id = v.user_id AND r.last_publish_success >= v.day)
  FROM unnest(CAST($1 AS uuid[]), CAST($2 AS date[]), CAST($3 AS integer[]), CAST($4 AS integer[]),
    CAST($5 AS bigint[]), CAST($6 AS integer[]), CAST($7 AS integer[]))
    AS v (user_id, day, attempts, successes, success_ms, min_ms, max_ms)
  WHERE ${notErased('v')}
  ON CONFLICT (user_id, stat_date) DO UPDATE SET
    total_relay_attempts = d.total_relay_attempts + EXCLUDED.total_relay_attempts,
    successful_relay_publishes = d.successful_relay_publishes + EXCLUDED.successful_relay_publishes,
    avg_publish_time_ms = CASE WHEN EXCLUDED.successful_relay_publishes = 0 THEN d.avg_publish_time_ms
      ELSE CAST(ROUND((COALESCE(d.avg_publish_time_ms, 0) * CAST(d.successful_relay_publishes AS numeric)
        + EXCLUDED.avg_publish_time_ms * CAST(EXCLUDED.successful_relay_publishes AS numeric))
        / (d.successful_relay_publishes + EXCLUDED.successful_relay_publishes)) AS integer) END,
    min_publish_time_ms = LEAST(d.min_publish_time_ms, EXCLUDED.min_publish_time_ms),
    max_publish_time_ms = GREATEST(d.max_publish_time_ms, EXCLUDED.max_publish_time_ms),
    unique_relays_used = EXCLUDED.unique_relays_used,
    updated_at = now()`;

/**
 * Adds a batch's attempts to daily_usage_stats (upsert on (user_id, stat_date)): total_relay_attempts, and for the
 * publishes relays took, successful_relay_publishes and the avg/min/max of their send → OK time. Prepared. Runs after
 * addRelayStats in the same transaction, so unique_relays_used (the user's relays that took a publish since the
 * day began; midnight in the server's zone, approximately the user's day) already counts this batch.
 */
export async function addDailyRelayStats(trx: Knex, deltas: readonly DailyRelayDelta[]): Promise<void> {
  if (deltas.length === 0) return;
  const col = preparedColumns(deltas);
  await queryPrepared(trx, 'nostrx_daily_relay_stats', ADD_DAILY_RELAY_STATS, [
    col((x) => x.userId),
    col((x) => x.statDate),
    col((x) => x.attempts),
    col((x) => x.successes),
    col((x) => Math.round(x.successMsTotal)),
    col((x) => x.minMs),
    col((x) => x.maxMs),
  ]);
}

/**
 * Stores an upstream relay's NIP-11 document on every user_relays row of that URL whose copy differs (rows of
 * many users share one relay; unchanged copies are not rewritten). Returns the rows updated.
 */
export async function saveRelayInfo(
  db: Knex,
  url: string,
  info: Record<string, unknown>,
  supportedNips: number[] | null,
): Promise<number> {
  const doc = JSON.stringify(info);
  const { rowCount } = (await db.raw(
    `UPDATE user_relays SET relay_info = CAST(:doc AS jsonb), supported_nips = CAST(:nips AS integer[]),
       relay_name = COALESCE(relay_name, CAST(:name AS varchar(100))), updated_at = now()
     WHERE relay_url = :url AND relay_info IS DISTINCT FROM CAST(:doc AS jsonb)`,
    {
      doc,
      nips: supportedNips ? db.raw('?', [supportedNips]) : null,
      name: typeof info.name === 'string' && info.name.trim() !== '' ? info.name.trim().slice(0, 100) : null,
      url,
    },
  )) as { rowCount: number };
  return rowCount;
}
