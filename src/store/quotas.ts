// user_quotas: the Postgres quota ledger, the arbiter of every quota decision. One row per user and period
// (daily: the user's local date; monthly: the first day of the local month). Posts of users with a limit are
// charged inside the transaction that stores them (chargePosts: a batch's posts in three statements, the rows
// locked, so concurrent transactions in any number of processes can never push a count past its limit); posts of
// users without one are only counted (chargeUnlimited).
import type { Knex } from 'knex';
import { preparedColumns } from './array-columns.js';
import { numbered, queryPrepared } from './db.js';

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

/** One user's posts in a batch, charged together: the periods they count in (daily first) and how many. */
export interface PostCharge {
  readonly userId: string;
  readonly periods: readonly LedgerPeriod[];
  /** Posts of this user to charge, at least 1. */
  readonly n: number;
}

/** How many of a user's posts the ledger took (the first ones, in the caller's order), and the counts before. */
export interface PostChargeResult {
  readonly taken: number;
  /** posts_used of each period before this charge. */
  readonly before: Readonly<Partial<Record<LedgerPeriodType, number>>>;
  /** When some were refused: the period that refused them (the first, daily before monthly, with no room left). */
  readonly refusedBy?: LedgerPeriod;
}

interface LedgerKey {
  readonly userId: string;
  readonly p: LedgerPeriod;
}

const byUserAndType = (a: LedgerKey, b: LedgerKey): number =>
  a.userId === b.userId ? a.p.type.localeCompare(b.p.type) : a.userId < b.userId ? -1 : 1;

// chargePosts' three statements, prepared once per connection (db.ts queryPrepared): a group commit with capped
// posts runs them every time, and parsing and planning them was most of what they cost PostgreSQL in a small batch.
const LEDGER_ROWS = numbered(`
  INSERT INTO user_quotas (user_id, quota_date, quota_type, posts_used, posts_limit, resets_at, last_reset_at)
  SELECT v.user_id, v.quota_date, CAST(v.quota_type AS quota_type_enum), 0, v.lim, v.resets_at, now()
  FROM unnest(CAST(? AS uuid[]), CAST(? AS date[]), CAST(? AS text[]), CAST(? AS integer[]), CAST(? AS timestamptz[]))
    WITH ORDINALITY AS v (user_id, quota_date, quota_type, lim, resets_at, ord)
  ORDER BY v.ord
  ON CONFLICT (user_id, quota_date, quota_type) DO NOTHING`);

const LEDGER_LOCK = numbered(`
  SELECT q.user_id, CAST(q.quota_type AS text) AS quota_type, q.posts_used
  FROM user_quotas q
  JOIN unnest(CAST(? AS uuid[]), CAST(? AS date[]), CAST(? AS text[])) AS v (user_id, quota_date, quota_type)
    ON q.user_id = v.user_id AND q.quota_date = v.quota_date AND q.quota_type = CAST(v.quota_type AS quota_type_enum)
  ORDER BY q.user_id, q.quota_type
  FOR UPDATE OF q`);

const LEDGER_CHARGE = numbered(`
  UPDATE user_quotas q SET posts_used = q.posts_used + v.n, posts_limit = v.lim, resets_at = v.resets_at, updated_at = now()
  FROM unnest(CAST(? AS uuid[]), CAST(? AS date[]), CAST(? AS text[]), CAST(? AS integer[]),
    CAST(? AS timestamptz[]), CAST(? AS integer[])) AS v (user_id, quota_date, quota_type, lim, resets_at, n)
  WHERE q.user_id = v.user_id AND q.quota_date = v.quota_date AND q.quota_type = CAST(v.quota_type AS quota_type_enum)`);

/**
 * Charges the posts of many users at once, inside the transaction that stores them, in three statements
 * whatever their number: the missing ledger rows are created at 0, every row is locked (FOR UPDATE, in a fixed
 * order: user, then daily before monthly, so concurrent batches in any process wait on each other and never
 * deadlock), and each user's count grows by what fits under the smallest room left in any of their periods. A
 * period's limit is the user's plan limit *now*, so a plan change applies at once to the count already used.
 * Locked rows are read at their latest committed version, so no interleaving can push a count past its limit.
 * At most one charge per user: the keys must be unique.
 */
export async function chargePosts(
  trx: Knex.Transaction,
  charges: readonly PostCharge[],
): Promise<Map<string, PostChargeResult>> {
  const out = new Map<string, PostChargeResult>();
  if (charges.length === 0) return out;
  const keys: LedgerKey[] = charges.flatMap((c) => c.periods.map((p) => ({ userId: c.userId, p }))).sort(byUserAndType);
  const col = preparedColumns(keys);
  const wanted = [col((k) => k.userId), col((k) => k.p.date), col((k) => k.p.type)];
  await queryPrepared(trx, 'nostrx_ledger_rows', LEDGER_ROWS, [
    ...wanted,
    col((k) => k.p.limit),
    col((k) => k.p.resetsAt),
  ]);
  const rows = await queryPrepared<{ user_id: string; quota_type: LedgerPeriodType; posts_used: number }>(
    trx,
    'nostrx_ledger_lock',
    LEDGER_LOCK,
    wanted,
  );
  const used = new Map(rows.map((r) => [`${r.user_id}:${r.quota_type}`, r.posts_used]));

  for (const c of charges) {
    const before: Partial<Record<LedgerPeriodType, number>> = {};
    let taken = c.n;
    let refusedBy: LedgerPeriod | undefined;
    for (const p of c.periods) {
      const u = used.get(`${c.userId}:${p.type}`) ?? 0;
      before[p.type] = u;
      const room = p.limit < 0 ? Infinity : Math.max(0, p.limit - u);
      if (room < taken) {
        taken = room;
        refusedBy = p;
      }
    }
    out.set(c.userId, refusedBy ? { taken, before, refusedBy } : { taken, before });
  }
  // every period of a user grows by what the user took; the keys are still in lock order
  const grants = keys.filter((k) => out.get(k.userId)!.taken > 0);
  if (grants.length === 0) return out;
  const g = preparedColumns(grants);
  await queryPrepared(trx, 'nostrx_ledger_charge', LEDGER_CHARGE, [
    g((k) => k.userId),
    g((k) => k.p.date),
    g((k) => k.p.type),
    g((k) => k.p.limit),
    g((k) => k.p.resetsAt),
    g((k) => out.get(k.userId)!.taken),
  ]);
  return out;
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
      for (const p of periods) {
        w.orWhere((x) => {
          x.where({ quota_type: p.type, quota_date: p.date });
        });
      }
    })
    .select('quota_type', 'posts_used')) as { quota_type: LedgerPeriodType; posts_used: number }[];
  for (const r of rows) out[r.quota_type] = r.posts_used;
  return out;
}

/** One ledger row of users whose period is unlimited, and the posts it counts. */
export interface UnlimitedCharge extends Omit<LedgerPeriod, 'limit'> {
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
export async function chargeUnlimited(
  trx: Knex.Transaction,
  rows: readonly UnlimitedCharge[],
): Promise<Map<string, number>> {
  if (rows.length === 0) return new Map();
  const sorted = [...rows].sort((a, b) =>
    a.userId === b.userId ? a.type.localeCompare(b.type) : a.userId < b.userId ? -1 : 1,
  );
  const values = sorted
    .map(() => '(?::uuid, ?::date, ?::quota_type_enum, ?::int, -1, ?::timestamptz, now())')
    .join(', ');
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
