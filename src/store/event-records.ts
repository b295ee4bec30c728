// What the API shows of a user's published events: the nostr_events row with its forwarding totals, and each
// upstream relay's relay_publishes row (status, attempts, timings, answer).
import type { Knex } from 'knex';
import type { NostrEvent } from '../nips/nip01.js';
import { rowToEvent, sigText, type EventRow } from './events.js';
import { IMPORTED, IMPORTED_REASON } from './forwarding-plan.js';

/** The stored status, and `not_forwarded` for an event kept here with no upstream relay to send it to. */
export type EventStatus = 'pending' | 'signing' | 'publishing' | 'published' | 'failed' | 'partial' | 'not_forwarded';
type StoredStatus = Exclude<EventStatus, 'not_forwarded'>;

interface RelayOutcome {
  readonly relayUrl: string;
  readonly status: string;
  readonly attempts: number;
  readonly attemptedAt: Date | null;
  readonly completedAt: Date | null;
  /** When the relay is tried (again): for a row in flight, when its lease runs out; null once the row is final. */
  readonly nextAttemptAt: Date | null;
  readonly connectionTimeMs: number | null;
  readonly publishTimeMs: number | null;
  readonly totalTimeMs: number | null;
  readonly relayResponse: unknown;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
}

export interface EventRecord {
  readonly rowId: string;
  readonly userId: string;
  readonly event: NostrEvent;
  readonly status: EventStatus;
  readonly receivedAt: Date;
  readonly publishedAt: Date | null;
  readonly failureReason: string | null;
  readonly totalRelays: number;
  readonly successfulRelays: number;
  readonly failedRelays: number;
  readonly publishDurationMs: number | null;
  readonly removedAt: Date | null;
  readonly removedReason: string | null;
  readonly source: {
    platform: string | null;
    tweetId: string | null;
    tweetUrl: string | null;
    tweetText: string | null;
    username: string | null;
  };
  readonly relays: RelayOutcome[];
}

export interface EventListQuery {
  readonly status?: EventStatus | undefined;
  readonly kind?: number | undefined;
  /** Received at or after / before this instant. */
  readonly from?: Date | undefined;
  readonly to?: Date | undefined;
  /** The row id of the last record of the previous page. */
  readonly after?: string | undefined;
  readonly limit: number;
}

interface RecordRow extends EventRow {
  id: string;
  user_id: string;
  status: StoredStatus;
  created_at: Date;
  published_at: Date | null;
  failure_reason: string | null;
  total_relays: number;
  successful_relays: number;
  failed_relays: number;
  publish_duration_ms: number | null;
  removed_at: Date | null;
  removed_reason: string | null;
  source_platform: string | null;
  original_tweet_id: string | null;
  original_tweet_url: string | null;
  original_tweet_text: string | null;
  original_username: string | null;
}

interface OutcomeRow {
  event_id: string;
  relay_url: string;
  status: string;
  attempts: number;
  attempted_at: Date | null;
  completed_at: Date | null;
  next_attempt_at: Date | null;
  connection_time_ms: number | null;
  publish_time_ms: number | null;
  total_time_ms: number | null;
  relay_response: unknown;
  error_code: string | null;
  error_message: string | null;
}

const recordColumns = [
  'id',
  'user_id',
  'event_id',
  'pubkey',
  'created_at_nostr',
  'event_kind',
  'tags',
  'content',
  'status',
  'created_at',
  'published_at',
  'failure_reason',
  'total_relays',
  'successful_relays',
  'failed_relays',
  'publish_duration_ms',
  'removed_at',
  'removed_reason',
  'source_platform',
  'original_tweet_id',
  'original_tweet_url',
  'original_tweet_text',
  'original_username',
];

/** The record's columns of nostr_events `e`, the signature in hex. */
const recordSelect = (db: Knex) => [...recordColumns.map((c) => `e.${c}`), db.raw(`${sigText('e')} as sig`)];

function toRecord(r: RecordRow, relays: RelayOutcome[]): EventRecord {
  // stored as 'published' with no relay row: it was kept here and sent nowhere (failure_reason says why, or, for an
  // imported event, its source: forwarding-plan.ts NOT_FORWARDED_IMPORT)
  const notForwarded = r.status === 'published' && r.total_relays === 0;
  const imported = notForwarded && r.failure_reason === null && r.source_platform === IMPORTED;
  return {
    rowId: r.id,
    userId: r.user_id,
    event: rowToEvent(r),
    status: notForwarded ? 'not_forwarded' : r.status,
    receivedAt: r.created_at,
    publishedAt: r.published_at,
    failureReason: imported ? IMPORTED_REASON : r.failure_reason,
    totalRelays: r.total_relays,
    successfulRelays: r.successful_relays,
    failedRelays: r.failed_relays,
    publishDurationMs: r.publish_duration_ms,
    removedAt: r.removed_at,
    removedReason: r.removed_reason,
    source: {
      platform: r.source_platform,
      tweetId: r.original_tweet_id,
      tweetUrl: r.original_tweet_url,
      tweetText: r.original_tweet_text,
      username: r.original_username,
    },
    relays,
  };
}

function toOutcome(r: OutcomeRow): RelayOutcome {
  return {
    relayUrl: r.relay_url,
    status: r.status,
    attempts: r.attempts,
    attemptedAt: r.attempted_at,
    completedAt: r.completed_at,
    nextAttemptAt: r.completed_at === null ? r.next_attempt_at : null,
    connectionTimeMs: r.connection_time_ms,
    publishTimeMs: r.publish_time_ms,
    totalTimeMs: r.total_time_ms,
    relayResponse: r.relay_response,
    errorCode: r.error_code,
    errorMessage: r.error_message,
  };
}

async function outcomesByRow(db: Knex, rowIds: readonly string[]): Promise<Map<string, RelayOutcome[]>> {
  const out = new Map<string, RelayOutcome[]>(rowIds.map((id) => [id, []]));
  if (rowIds.length === 0) return out;
  const rows = (await db('relay_publishes')
    .whereIn('event_id', rowIds)
    .orderBy([{ column: 'relay_url' }, { column: 'created_at' }])
    .select(
      'event_id',
      'relay_url',
      'status',
      'attempts',
      'attempted_at',
      'completed_at',
      'next_attempt_at',
      'connection_time_ms',
      'publish_time_ms',
      'total_time_ms',
      'relay_response',
      'error_code',
      'error_message',
    )) as OutcomeRow[];
  for (const r of rows) out.get(r.event_id)?.push(toOutcome(r));
  return out;
}

/** The record of a stored event by its Nostr id (whoever it belongs to: the caller decides what to show). */
export async function findEventRecord(db: Knex, eventId: string): Promise<EventRecord | undefined> {
  const row = (await db('nostr_events as e').where({ 'e.event_id': eventId }).first(recordSelect(db))) as
    RecordRow | undefined;
  if (!row) return undefined;
  const outcomes = await outcomesByRow(db, [row.id]);
  return toRecord(row, outcomes.get(row.id) ?? []);
}

/**
 * The user's events, newest received first (ties by row id), filtered, at most `limit`; `after` continues after the
 * given row of the same user (keyset pagination on (created_at, id), exact to the microsecond).
 */
export async function listEventRecords(db: Knex, userId: string, q: EventListQuery): Promise<EventRecord[]> {
  const query = db('nostr_events as e').where('e.user_id', userId);
  if (q.status === 'not_forwarded') query.where({ 'e.status': 'published', 'e.total_relays': 0 });
  else if (q.status === 'published') query.where('e.status', 'published').where('e.total_relays', '>', 0);
  else if (q.status) query.where('e.status', q.status);
  if (q.kind !== undefined) query.where('e.event_kind', q.kind);
  if (q.from) query.where('e.created_at', '>=', q.from);
  if (q.to) query.where('e.created_at', '<', q.to);
  if (q.after) {
    query.whereRaw(
      '(e.created_at, e.id) < (SELECT c.created_at, c.id FROM nostr_events c WHERE c.id = ? AND c.user_id = ?)',
      [q.after, userId],
    );
  }
  const rows = (await query
    .orderBy([
      { column: 'e.created_at', order: 'desc' },
      { column: 'e.id', order: 'desc' },
    ])
    .limit(q.limit)
    .select(recordSelect(db))) as RecordRow[];
  const outcomes = await outcomesByRow(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => toRecord(r, outcomes.get(r.id) ?? []));
}
