// users: one row per account, named by its primary Nostr pubkey (the first one that published or called the API).
// Further keys linked to an account are in user_identities (store/identities.ts): every look-up by pubkey below
// answers the account of a primary or a linked key alike, and its UserRecord carries the primary key.
import type { Knex } from 'knex';
import { numbered, queryPrepared } from './db.js';

export type UserStatus = 'active' | 'suspended' | 'deleted' | 'pending_verification';

export interface UserRecord {
  readonly id: string;
  readonly pubkey: string;
  readonly status: UserStatus;
  readonly timezone: string;
  /**
   * A new author's account, not in the database yet: the statement that stores their first event saves it
   * (saveUsers, store/event-batch.ts), with this id unless another process saved the pubkey first.
   */
  readonly unsaved?: true;
}

interface UserRow {
  id: string;
  nostr_public_key: string;
  status: UserStatus;
  timezone: string | null;
}

function toRecord(r: UserRow): UserRecord {
  return { id: r.id, pubkey: r.nostr_public_key, status: r.status, timezone: r.timezone ?? 'UTC' };
}

const columns = ['id', 'nostr_public_key', 'status', 'timezone'];

/** The account of this pubkey, whether it is the account's primary key or a key linked to it. */
export async function findUserByPubkey(db: Knex, pubkey: string): Promise<UserRecord | undefined> {
  return (await findUsersWithPlans(db, [pubkey])).get(pubkey)?.user;
}

/** A user with the code of their active subscription's plan ('' when they have none, so the default plan). */
export interface UserWithPlan {
  readonly user: UserRecord;
  readonly planCode: string;
}

// A key is some account's primary key (users) or linked to one (user_identities), never both (account_keys,
// migration 0033). At most one subscription per user is active (idx_subscriptions_one_active). Its plan is read per
// account, by that index: as a join, a plan made while the table's statistics said "a few active subscriptions"
// (thousands made within the minute before autovacuum's next analyze) hashed every active subscription for each
// look-up.
const userColumns = columns.map((c) => `u.${c}`).join(', ');
const USERS_WITH_PLANS = `
  WITH keyed AS (
    SELECT u.nostr_public_key AS key, ${userColumns} FROM users u WHERE u.nostr_public_key = ANY(CAST($1 AS text[]))
    UNION ALL
    SELECT i.pubkey, ${userColumns} FROM user_identities i JOIN users u ON u.id = i.user_id WHERE i.pubkey = ANY(CAST($1 AS text[]))
  )
  SELECT k.*, COALESCE((
    SELECT p.plan_code FROM user_subscriptions s JOIN subscription_plans p ON p.id = s.plan_id
    WHERE s.user_id = k.id AND s.status = 'active'
  ), '') AS plan_code
  FROM keyed k`;

// The same look-up for one key. PostgreSQL plans an array's statement at every call (its custom plan, knowing the
// array's length, always looks cheaper than a generic one); for one key both plans cost the same, so after five
// calls it keeps the generic plan and stops planning: ~200 µs of its time saved on each look-up of an account not
// in the cache, which is every new author's first post (docs/benchmarks.md).
const USER_WITH_PLAN = USERS_WITH_PLANS.replaceAll('= ANY(CAST($1 AS text[]))', '= $1');

/**
 * The accounts of these pubkeys that exist (primary or linked keys), each with their plan's code, by pubkey: what
 * admitting an author's event needs, in one prepared statement instead of a look-up of the user and then one of
 * their subscription.
 */
export async function findUsersWithPlans(db: Knex, pubkeys: readonly string[]): Promise<Map<string, UserWithPlan>> {
  if (pubkeys.length === 0) return new Map();
  const one = pubkeys.length === 1;
  const rows = await queryPrepared<UserRow & { key: string; plan_code: string }>(
    db,
    one ? 'nostrx_user_with_plan' : 'nostrx_users_with_plans',
    one ? USER_WITH_PLAN : USERS_WITH_PLANS,
    [one ? pubkeys[0] : pubkeys],
  );
  return new Map(rows.map((r) => [r.key, { user: toRecord(r), planCode: r.plan_code }]));
}

// Every key that names an account is in account_keys (migration 0033), once: a page is a walk of its primary key.
const ACCOUNT_KEYS = `
  SELECT encode(key, 'hex') AS key FROM account_keys WHERE key > decode($1, 'hex') ORDER BY key LIMIT $2`;

/** Every key that names an account (primary or linked), in order, `limit` at a time after `after` ('' to start). */
export async function listAccountKeys(db: Knex, after: string, limit: number): Promise<string[]> {
  const rows = await queryPrepared<{ key: string }>(db, 'nostrx_account_keys', ACCOUNT_KEYS, [after, limit]);
  return rows.map((r) => r.key);
}

/** How many keys name an account (primary and linked). */
export async function countAccountKeys(db: Knex): Promise<number> {
  const { rows } = (await db.raw('SELECT count(*) AS n FROM account_keys')) as { rows: { n: string | number }[] };
  return Number(rows[0]?.n ?? 0);
}

/** A new author's account as the table's defaults make it (active, UTC, no subscription: the free plan), unsaved. */
export function unsavedUser(id: string, pubkey: string): UserRecord {
  return { id, pubkey, status: 'active', timezone: 'UTC', unsaved: true };
}

/** The row of a saved account, from the columns `users.ts` reads (the writes that create accounts return them). */
export const userFromRow = toRecord;

/**
 * `INSERT … ON CONFLICT` clause that saves new authors' accounts and answers with every one of them: one created
 * by another process after this statement's snapshot is not returned by DO NOTHING, while this no-op DO UPDATE
 * (of a column no index holds, so a heap-only update) returns it, current and locked. Only a race takes it.
 */
export const SAVE_USERS_CONFLICT = `ON CONFLICT (nostr_public_key) DO UPDATE SET timezone = users.timezone
  RETURNING ${columns.join(', ')}`;

const SAVE_USERS = numbered(`
  INSERT INTO users (id, nostr_public_key)
  SELECT id, pubkey FROM unnest(CAST(? AS uuid[]), CAST(? AS text[])) AS n (id, pubkey) ORDER BY pubkey
  ${SAVE_USERS_CONFLICT}`);

/**
 * Saves unsaved accounts (unsavedUser) in one statement, each with its id, or finds the account another process
 * saved for the pubkey meanwhile: the stored records, by pubkey.
 */
export async function saveUsers(db: Knex, users: readonly UserRecord[]): Promise<Map<string, UserRecord>> {
  if (users.length === 0) return new Map();
  const rows = await queryPrepared<UserRow>(db, 'nostrx_save_users', SAVE_USERS, [
    users.map((u) => u.id),
    users.map((u) => u.pubkey),
  ]);
  return new Map(rows.map((r) => [r.nostr_public_key, toRecord(r)]));
}

/**
 * Returns the user for this pubkey, creating it (status active, plan basic by having no subscription), with `id`
 * when one is given (an unsaved account's). A key linked to an account gets no row of its own (the
 * users_claim_key trigger skips it, migration 0033): the account it is linked to.
 */
export async function upsertUserByPubkey(
  db: Knex,
  pubkey: string,
  id?: string,
): Promise<{ user: UserRecord; created: boolean }> {
  const inserted = (await db('users')
    .insert(id === undefined ? { nostr_public_key: pubkey } : { id, nostr_public_key: pubkey })
    .onConflict('nostr_public_key')
    .ignore()
    .returning(columns)) as UserRow[];
  const first = inserted[0];
  if (first) return { user: toRecord(first), created: true };
  const existing = await findUserByPubkey(db, pubkey);
  if (!existing) throw new Error(`user ${pubkey} vanished between insert and select`);
  return { user: existing, created: false };
}

/**
 * The users of these pubkeys, creating the missing ones (active, plan basic by having no subscription): what a bulk
 * import needs for a batch of authors, in two statements. Pubkeys must be distinct. Accounts are made in key order, as
 * the group commit makes them, so that two writers making some of the same accounts wait on each other's keys in one
 * order and never deadlock (account_keys, migration 0033).
 */
export async function upsertUsersByPubkeys(db: Knex, pubkeys: readonly string[]): Promise<Map<string, UserRecord>> {
  if (pubkeys.length === 0) return new Map();
  const keys = db.raw('?', [[...pubkeys]]);
  await db.raw(
    `INSERT INTO users (nostr_public_key) SELECT unnest(CAST(? AS text[])) ORDER BY 1 ON CONFLICT (nostr_public_key) DO NOTHING`,
    [keys],
  );
  const { rows } = (await db.raw(
    `SELECT ${columns.join(', ')} FROM users WHERE nostr_public_key = ANY(CAST(? AS text[]))`,
    [keys],
  )) as { rows: UserRow[] };
  return new Map(rows.map((r) => [r.nostr_public_key, toRecord(r)]));
}

/** Sets the status inside the caller's transaction (the row locked first); returns the user before and after. */
export async function updateUserStatus(
  trx: Knex.Transaction,
  userId: string,
  status: UserStatus,
): Promise<{ before: UserRecord; after: UserRecord } | undefined> {
  const row = (await trx('users').where({ id: userId }).forUpdate().first(columns)) as UserRow | undefined;
  if (!row) return undefined;
  const updated = (await trx('users').where({ id: userId }).update({ status }).returning(columns)) as UserRow[];
  return { before: toRecord(row), after: toRecord(updated[0] as UserRow) };
}
