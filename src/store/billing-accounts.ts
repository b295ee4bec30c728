// billing_accounts: a user's account at a payment provider (a Stripe customer, an ExtensionPay user with its key
// encrypted), and the ExtensionPay re-sync schedule. The encrypted blob is read only by the functions that say so.
import type { Knex } from 'knex';

export interface BillingAccount {
  readonly id: string;
  readonly userId: string;
  readonly provider: string;
  readonly providerAccountId: string;
  readonly createdAt: Date;
  readonly lastSyncedAt: Date | null;
  readonly nextSyncAt: Date | null;
  readonly syncFailures: number;
}

/** An account with its encrypted provider data, for the code that must use the credential. */
export interface BillingAccountWithSecret extends BillingAccount {
  readonly secret: Buffer | null;
}

interface Row {
  id: string;
  user_id: string;
  provider: string;
  provider_account_id: string;
  created_at: Date;
  last_synced_at: Date | null;
  next_sync_at: Date | null;
  sync_failures: number;
  provider_data_encrypted?: Buffer | Uint8Array | null;
}

const columns = [
  'id',
  'user_id',
  'provider',
  'provider_account_id',
  'created_at',
  'last_synced_at',
  'next_sync_at',
  'sync_failures',
];
const withSecret = [...columns, 'provider_data_encrypted'];

function toAccount(r: Row): BillingAccount {
  return {
    id: r.id,
    userId: r.user_id,
    provider: r.provider,
    providerAccountId: r.provider_account_id,
    createdAt: r.created_at,
    lastSyncedAt: r.last_synced_at,
    nextSyncAt: r.next_sync_at,
    syncFailures: Number(r.sync_failures),
  };
}

function toAccountWithSecret(r: Row): BillingAccountWithSecret {
  const blob = r.provider_data_encrypted;
  return { ...toAccount(r), secret: blob ? Buffer.from(blob) : null };
}

export async function findAccountByProviderId(
  db: Knex,
  provider: string,
  providerAccountId: string,
): Promise<BillingAccount | undefined> {
  const row = (await db('billing_accounts')
    .where({ provider, provider_account_id: providerAccountId })
    .first(columns)) as Row | undefined;
  return row && toAccount(row);
}

export async function findAccountOfUser(
  db: Knex,
  userId: string,
  provider: string,
): Promise<BillingAccount | undefined> {
  const row = (await db('billing_accounts').where({ user_id: userId, provider }).first(columns)) as Row | undefined;
  return row && toAccount(row);
}

export async function findAccountOfUserWithSecret(
  db: Knex,
  userId: string,
  provider: string,
): Promise<BillingAccountWithSecret | undefined> {
  const row = (await db('billing_accounts').where({ user_id: userId, provider }).first(withSecret)) as Row | undefined;
  return row && toAccountWithSecret(row);
}

export async function listAccountsOfUser(db: Knex, userId: string): Promise<BillingAccount[]> {
  const rows = (await db('billing_accounts').where({ user_id: userId }).orderBy('created_at').select(columns)) as Row[];
  return rows.map(toAccount);
}

export interface AccountLink {
  readonly userId: string;
  readonly provider: string;
  readonly providerAccountId: string;
  readonly secret?: Buffer | undefined;
  readonly nextSyncAt?: Date | undefined;
  /** When the provider account was read for this link. */
  readonly lastSyncedAt?: Date | undefined;
}

export type LinkResult =
  | { readonly ok: true; readonly account: BillingAccount; readonly previousAccountId: string | null }
  | { readonly ok: false; readonly ownerId: string };

/**
 * Links the provider account to the user (their one account at that provider: a new one replaces the old link).
 * Refused, with the owner's id, when that provider account is linked to another user. Call inside a transaction
 * that holds the user's lock.
 */
export async function linkAccount(trx: Knex.Transaction, l: AccountLink): Promise<LinkResult> {
  const owner = (await trx('billing_accounts')
    .where({ provider: l.provider, provider_account_id: l.providerAccountId })
    .forUpdate()
    .first('user_id')) as { user_id: string } | undefined;
  if (owner && owner.user_id !== l.userId) return { ok: false, ownerId: owner.user_id };
  const previous = (await trx('billing_accounts')
    .where({ user_id: l.userId, provider: l.provider })
    .forUpdate()
    .first('provider_account_id')) as { provider_account_id: string } | undefined;
  const values: Record<string, unknown> = {
    provider_account_id: l.providerAccountId,
    updated_at: trx.fn.now(),
    sync_failures: 0,
    last_sync_error: null,
  };
  if (l.secret !== undefined) values.provider_data_encrypted = l.secret;
  if (l.nextSyncAt !== undefined) values.next_sync_at = l.nextSyncAt;
  if (l.lastSyncedAt !== undefined) values.last_synced_at = l.lastSyncedAt;
  const rows = (await trx('billing_accounts')
    .insert({ user_id: l.userId, provider: l.provider, ...values })
    .onConflict(['user_id', 'provider'])
    .merge(values)
    .returning(columns)) as Row[];
  const previousAccountId =
    previous && previous.provider_account_id !== l.providerAccountId ? previous.provider_account_id : null;
  return { ok: true, account: toAccount(rows[0] as Row), previousAccountId };
}

/**
 * Claims up to `limit` accounts of the provider due at `asOf` (next_sync_at ≤ asOf, oldest first) for one re-read:
 * their next_sync_at moves to `leaseUntil`, so another process (or the next tick) skips them while this one works;
 * SKIP LOCKED lets several processes claim at once without waiting on each other.
 */
export async function claimDueAccounts(
  db: Knex,
  provider: string,
  asOf: Date,
  leaseUntil: Date,
  limit: number,
): Promise<BillingAccountWithSecret[]> {
  const due = db('billing_accounts')
    .where({ provider })
    .where('next_sync_at', '<=', asOf)
    .orderBy('next_sync_at')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .select('id');
  const rows = (await db('billing_accounts')
    .whereIn('id', due)
    .update({ next_sync_at: leaseUntil })
    .returning(withSecret)) as Row[];
  return rows.map(toAccountWithSecret);
}

/** Records a re-read: its time and the next one on success; the failure count, error and retry time otherwise. */
export async function recordSync(
  db: Knex,
  id: string,
  r: { ok: true; at: Date; next: Date | null } | { ok: false; error: string; next: Date },
): Promise<void> {
  if (r.ok) {
    await db('billing_accounts').where({ id }).update({
      last_synced_at: r.at,
      next_sync_at: r.next,
      sync_failures: 0,
      last_sync_error: null,
      updated_at: db.fn.now(),
    });
    return;
  }
  await db('billing_accounts')
    .where({ id })
    .update({
      next_sync_at: r.next,
      sync_failures: db.raw('sync_failures + 1'),
      last_sync_error: r.error.slice(0, 500),
      updated_at: db.fn.now(),
    });
}
