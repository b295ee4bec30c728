// user_quotas: the Postgres quota ledger, the arbiter of every quota decision. One row per user and period
// (daily: the user's local date; monthly: the first day of the local month). A post is charged by ONE
// conditional upsert inside the transaction that stores the event: the row is created at 1, or incremented only
// while it is below the limit passed in. The limit is the user's plan limit *now*, so a plan change applies at
// once to the count already used today. ON CONFLICT DO UPDATE locks the row and evaluates its WHERE against the
// latest committed version, so concurrent transactions (in any number of processes) can never push the count
// past the limit: the losers get no row back and roll back.
import type { Knex } from 'knex';

export type LedgerPeriodType = 'daily' | 'monthly';

export interface LedgerPeriod {
  readonly type: LedgerPeriodType;
  /** YYYY-MM-DD */
  readonly date: string;
  /** -1 = unlimited */
  readonly limit: number;
  /** ISO instant of the next reset. */
  readonly resetsAt: string;
}

export type ChargeResult =
  | { readonly ok: true; readonly used: Readonly<Partial<Record<LedgerPeriodType, number>>> }
  | { readonly ok: false; readonly period: LedgerPeriod; readonly used: number };

/** posts_used of one period, 0 when the row does not exist yet. */
async function usedIn(db: Knex, userId: string, p: Pick<LedgerPeriod, 'type' | 'date'>): Promise<number> {
  const row = (await db('user_quotas')
    .where({ user_id: userId, quota_type: p.type, quota_date: p.date })
    .first('posts_used')) as { posts_used: number } | undefined;
  return row?.posts_used ?? 0;
}

/**
 * Charges one post against every period given (daily first, then monthly: the same order everywhere, so two
 * transactions never wait on each other's rows in opposite orders). Must run inside the admission transaction;
 * on `ok: false` the caller rolls it back, which also undoes any period already charged by this call.
 */
export async function chargePost(trx: Knex.Transaction, userId: string, periods: readonly LedgerPeriod[]): Promise<ChargeResult> {
  const used: Partial<Record<LedgerPeriodType, number>> = {};
  for (const p of periods) {
    // A limit of 0 allows nothing; the insert below would start the row at 1, past the limit.
    if (p.limit === 0) return { ok: false, period: p, used: await usedIn(trx, userId, p) };
    const { rows } = (await trx.raw(
      `INSERT INTO user_quotas (user_id, quota_date, quota_type, posts_used, posts_limit, resets_at, last_reset_at)
       VALUES (?, ?::date, ?::quota_type_enum, 1, ?, ?::timestamptz, now())
       ON CONFLICT (user_id, quota_date, quota_type) DO UPDATE
         SET posts_used = user_quotas.posts_used + 1, posts_limit = EXCLUDED.posts_limit,
             resets_at = EXCLUDED.resets_at, updated_at = now()
         WHERE EXCLUDED.posts_limit = -1 OR user_quotas.posts_used < EXCLUDED.posts_limit
       RETURNING posts_used`,
      [userId, p.date, p.type, p.limit, p.resetsAt],
    )) as { rows: { posts_used: number }[] };
    const after = rows[0]?.posts_used;
    // No row back: the row exists and is at (or, after a downgrade, past) the limit. It is locked by now, so
    // this read sees the latest committed count.
    if (after === undefined) return { ok: false, period: p, used: await usedIn(trx, userId, p) };
    used[p.type] = after;
  }
  return { ok: true, used };
}

/** posts_used for the given periods (0 for a period without a row): what counters are rebuilt from. */
export async function readUsage(
  db: Knex,
  userId: string,
  periods: readonly Pick<LedgerPeriod, 'type' | 'date'>[],
): Promise<Record<LedgerPeriodType, number>> {
  const out: Record<LedgerPeriodType, number> = { daily: 0, monthly: 0 };
  if (periods.length === 0) return out;
  const rows = (await db('user_quotas')
    .where({ user_id: userId })
    .where((w) => {
      for (const p of periods) w.orWhere((x) => x.where({ quota_type: p.type, quota_date: p.date }));
    })
    .select('quota_type', 'posts_used')) as { quota_type: LedgerPeriodType; posts_used: number }[];
  for (const r of rows) out[r.quota_type] = r.posts_used;
  return out;
}

/** One period an uncapped post is counted in. */
export interface UncappedPeriod {
  readonly type: LedgerPeriodType;
  readonly date: string;
  readonly resetsAt: string;
}

export interface UnlimitedCharge extends UncappedPeriod {
  readonly userId: string;
  /** Posts to add (at least 1). */
  readonly n: number;
}

/**
 * Counts many posts of users whose period is unlimited (-1) in ONE upsert: there is no limit to check, so the
 * ledger only counts (usage and stats read it). At most one row per (user, type, date) may be given: Postgres
 * refuses to update a row twice in one statement. Rows are locked in a fixed order (user, type) so concurrent
 * batches never deadlock. Returns the counts after the charge, keyed `${userId}:${type}`.
 */
export async function chargeUnlimited(trx: Knex.Transaction, rows: readonly UnlimitedCharge[]): Promise<Map<string, number>> {
  if (rows.length === 0) return new Map();
  const sorted = [...rows].sort((a, b) => (a.userId === b.userId ? a.type.localeCompare(b.type) : a.userId < b.userId ? -1 : 1));
  const values = sorted.map(() => '(?::uuid, ?::date, ?::quota_type_enum, ?::int, -1, ?::timestamptz, now())').join(', ');
  const bindings = sorted.flatMap((r) => [r.userId, r.date, r.type, r.n, r.resetsAt]);
  const { rows: out } = (await trx.raw(
    `INSERT INTO user_quotas (user_id, quota_date, quota_type, posts_used, posts_limit, resets_at, last_reset_at)
     VALUES ${values}
     ON CONFLICT (user_id, quota_date, quota_type) DO UPDATE
       SET posts_used = user_quotas.posts_used + EXCLUDED.posts_used, posts_limit = -1,
           resets_at = EXCLUDED.resets_at, updated_at = now()
     RETURNING user_id, quota_type, posts_used`,
    bindings,
  )) as { rows: { user_id: string; quota_type: LedgerPeriodType; posts_used: number }[] };
  return new Map(out.map((r) => [`${r.user_id}:${r.quota_type}`, r.posts_used]));
}
