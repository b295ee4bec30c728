// email_verifications: one row per verification email, holding the SHA-256 of its link's token. The rows also
// count the sends for the rate limits: a send is reserved (row inserted) only under the account's row lock and an
// advisory lock on the address, so concurrent requests cannot both slip under a limit.
import type { Knex } from 'knex';
import { writeAudit } from './audit.js';

export interface SendLimits {
  /** Sends per rolling 24 hours, per account and per address. */
  readonly perDay: number;
  /** Seconds between two sends to one account. */
  readonly minIntervalSeconds: number;
}

export type ReserveOutcome =
  | { readonly status: 'reserved' }
  | { readonly status: 'rate_limited'; readonly scope: 'account' | 'address'; readonly retryAfterSeconds: number }
  | { readonly status: 'no_user' };

export interface NewVerification {
  readonly userId: string;
  readonly email: string;
  readonly tokenHash: string;
  readonly now: Date;
  readonly expiresAt: Date;
}

const DAY_MS = 86_400_000;

interface Window {
  n: string | number;
  oldest: Date | string | null;
  newest: Date | string | null;
}

function secondsUntil(at: number, now: Date): number {
  return Math.max(1, Math.ceil((at - now.getTime()) / 1000));
}

async function sendsSince(
  trx: Knex.Transaction,
  column: 'user_id' | 'address',
  value: string,
  since: Date,
): Promise<{ n: number; oldest: number; newest: number }> {
  const q = trx('email_verifications').where('created_at', '>', since);
  if (column === 'user_id') q.where({ user_id: value });
  else q.whereRaw('lower(email) = lower(?)', [value]);
  const [w] = (await q.select(
    trx.raw('count(*) AS n, min(created_at) AS oldest, max(created_at) AS newest'),
  )) as Window[];
  return {
    n: Number(w?.n ?? 0),
    oldest: w?.oldest ? new Date(w.oldest).getTime() : 0,
    newest: w?.newest ? new Date(w.newest).getTime() : 0,
  };
}

/** Inserts the verification row unless a limit forbids another send now; answers which limit, and for how long. */
export async function reserveVerification(db: Knex, v: NewVerification, limits: SendLimits): Promise<ReserveOutcome> {
  return db.transaction(async (trx): Promise<ReserveOutcome> => {
    if (!(await trx('users').where({ id: v.userId }).forUpdate().first('id'))) return { status: 'no_user' };
    await trx.raw(`SELECT pg_advisory_xact_lock(hashtextextended('nostrx-email:' || lower(?), 0))`, [v.email]);
    const since = new Date(v.now.getTime() - DAY_MS);
    const mine = await sendsSince(trx, 'user_id', v.userId, since);
    if (mine.n > 0 && v.now.getTime() - mine.newest < limits.minIntervalSeconds * 1000) {
      return {
        status: 'rate_limited',
        scope: 'account',
        retryAfterSeconds: secondsUntil(mine.newest + limits.minIntervalSeconds * 1000, v.now),
      };
    }
    if (mine.n >= limits.perDay)
      return { status: 'rate_limited', scope: 'account', retryAfterSeconds: secondsUntil(mine.oldest + DAY_MS, v.now) };
    const address = await sendsSince(trx, 'address', v.email, since);
    if (address.n >= limits.perDay)
      return {
        status: 'rate_limited',
        scope: 'address',
        retryAfterSeconds: secondsUntil(address.oldest + DAY_MS, v.now),
      };
    await trx('email_verifications').insert({
      user_id: v.userId,
      email: v.email,
      token_hash: v.tokenHash,
      created_at: v.now,
      expires_at: v.expiresAt,
    });
    return { status: 'reserved' };
  });
}

export type VerifyOutcome =
  | { readonly status: 'verified'; readonly userId: string; readonly email: string }
  | { readonly status: 'unknown' | 'used' | 'expired' | 'address_changed' };

/**
 * Uses the token: marks it used and sets the account's email_verified, with its audit row, in one transaction. The
 * account's email must still be the address the link was sent to.
 */
export async function useVerificationToken(db: Knex, tokenHash: string, now: Date): Promise<VerifyOutcome> {
  return db.transaction(async (trx): Promise<VerifyOutcome> => {
    const row = (await trx('email_verifications')
      .where({ token_hash: tokenHash })
      .forUpdate()
      .first('id', 'user_id', 'email', 'expires_at', 'used_at')) as
      { id: string; user_id: string; email: string; expires_at: Date; used_at: Date | null } | undefined;
    if (!row) return { status: 'unknown' };
    if (row.used_at) return { status: 'used' };
    if (new Date(row.expires_at).getTime() <= now.getTime()) return { status: 'expired' };
    await trx('email_verifications').where({ id: row.id }).update({ used_at: now });
    const user = (await trx('users').where({ id: row.user_id }).forUpdate().first('email', 'email_verified')) as
      { email: string | null; email_verified: boolean } | undefined;
    if (!user || user.email !== row.email) return { status: 'address_changed' };
    if (!user.email_verified) {
      await trx('users').where({ id: row.user_id }).update({ email_verified: true });
      await writeAudit(trx, {
        table: 'users',
        operation: 'UPDATE',
        userId: row.user_id,
        oldValues: { email_verified: false },
        newValues: { email_verified: true, email: row.email },
        actor: 'user',
      });
    }
    return { status: 'verified', userId: row.user_id, email: row.email };
  });
}

/** The account's email if it is verified, else undefined. */
export async function verifiedEmail(db: Knex, userId: string): Promise<string | undefined> {
  const row = (await db('users').where({ id: userId, email_verified: true }).whereNotNull('email').first('email')) as
    { email: string } | undefined;
  return row?.email;
}
