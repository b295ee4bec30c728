// The user's own retention period (users.data_retention_days; 0 keeps everything): the rows about their activity
// older than that, erased a batch at a time (core/ops/user-retention.ts runs it hourly). Users are taken a period at
// a time: all users with the same period share one cutoff, so one statement per batch serves them all, whatever
// their number, and the planner picks between the (user_id, created_at) indexes and the time indexes.
// RETENTION_SCOPE says what falls under it and what does not; the API and the export show it as it is here.
import type { Knex } from 'knex';

export interface RetentionEntry {
  readonly table: string;
  readonly what: string;
}

export const RETENTION_SCOPE: { readonly erased: readonly RetentionEntry[]; readonly kept: readonly RetentionEntry[] } =
  {
    erased: [
      { table: 'nostr_events', what: 'your events stored here, counted from when we received them' },
      { table: 'nostr_event_tags', what: 'the tag index of those events (erased with them)' },
      {
        table: 'relay_publishes',
        what: 'the result of forwarding those events to each upstream relay (erased with them)',
      },
      { table: 'usage_events', what: 'usage records: posts counted, refusals, plan changes' },
      { table: 'user_sessions', what: 'sessions that expired or were revoked that long ago' },
    ],
    kept: [
      {
        table: 'upstream relays',
        what: 'copies of your events on other relays: they were published there and are theirs to keep; nothing is sent to them',
      },
      { table: 'payments', what: 'payment records, which accounting law requires us to keep' },
      { table: 'user_subscriptions', what: 'your subscription history (accounting)' },
      { table: 'audit_log', what: 'the audit trail of changes to your account' },
      { table: 'user_quotas', what: 'post counts per day and month, without content' },
      { table: 'daily_usage_stats', what: 'daily totals, without content' },
      {
        table: 'users, user_identities, user_relays',
        what: 'your account, its keys and relays, until you change them or erase the account',
      },
    ],
  };

/** The retention periods in use (days > 0), each once. */
export async function retentionPeriods(db: Knex): Promise<number[]> {
  const rows = (await db('users')
    .distinct('data_retention_days')
    .where('data_retention_days', '>', 0)
    .orderBy('data_retention_days')) as { data_retention_days: number }[];
  return rows.map((r) => r.data_retention_days);
}

/** How many rows a DELETE … RETURNING took: the rows, not the driver's count (PGlite's knex dialect answers the rows). */
async function deleted(q: Knex.QueryBuilder): Promise<number> {
  return ((await q) as unknown[]).length;
}

const usersWithPeriod = (db: Knex, days: number) => db('users').select('id').where('data_retention_days', days);

/** Erases up to `limit` events (with their tags and per-relay results) of users with this period, stored before `before`. */
export async function eraseEventsBefore(db: Knex, days: number, before: Date, limit: number): Promise<number> {
  const batch = db('nostr_events')
    .select('id')
    .whereIn('user_id', usersWithPeriod(db, days))
    .where('created_at', '<', before)
    .limit(limit);
  return deleted(db('nostr_events').whereIn('id', batch).delete().returning('id'));
}

/** Erases up to `limit` usage events of users with this period, recorded before `before`. */
export async function eraseUsageEventsBefore(db: Knex, days: number, before: Date, limit: number): Promise<number> {
  // usage_events is partitioned by occurred_at: its key is (id, occurred_at), and the bound prunes partitions.
  const batch = db('usage_events')
    .select('id', 'occurred_at')
    .whereIn('user_id', usersWithPeriod(db, days))
    .where('occurred_at', '<', before)
    .limit(limit);
  return deleted(db('usage_events').whereIn(['id', 'occurred_at'], batch).delete().returning('id'));
}

/** Erases up to `limit` sessions of users with this period that expired or were revoked before `before`. */
export async function eraseEndedSessionsBefore(db: Knex, days: number, before: Date, limit: number): Promise<number> {
  const batch = db('user_sessions')
    .select('id')
    .whereIn('user_id', usersWithPeriod(db, days))
    .where((w) => {
      w.where('expires_at', '<', before).orWhere('revoked_at', '<', before);
    })
    .limit(limit);
  return deleted(db('user_sessions').whereIn('id', batch).delete().returning('id'));
}
