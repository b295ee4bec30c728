// A user's own data as a whole: the profile row (read and update), the export of every row we hold about them,
// and erasure.
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { auditRowsForUser, toAuditRecord, writeAudit } from './audit.js';
import { hasOneConnection } from './db.js';
import type { UserStatus } from './users.js';

export interface Profile {
  readonly id: string;
  readonly pubkey: string;
  readonly status: UserStatus;
  readonly displayName: string | null;
  readonly email: string | null;
  readonly emailVerified: boolean;
  readonly avatarUrl: string | null;
  readonly timezone: string;
  readonly locale: string;
  readonly dataRetentionDays: number;
  readonly analyticsEnabled: boolean;
  readonly marketingEmails: boolean;
  readonly createdAt: Date;
  readonly lastActiveAt: Date;
}

export interface ProfilePatch {
  readonly displayName?: string | null | undefined;
  readonly email?: string | null | undefined;
  readonly timezone?: string | undefined;
  readonly locale?: string | undefined;
  readonly dataRetentionDays?: number | undefined;
  readonly analyticsEnabled?: boolean | undefined;
  readonly marketingEmails?: boolean | undefined;
}

interface ProfileRow {
  id: string;
  nostr_public_key: string;
  status: UserStatus;
  display_name: string | null;
  email: string | null;
  email_verified: boolean;
  avatar_url: string | null;
  timezone: string;
  locale: string;
  data_retention_days: number;
  analytics_enabled: boolean;
  marketing_emails: boolean;
  created_at: Date;
  last_active_at: Date;
}

const profileColumns = [
  'id',
  'nostr_public_key',
  'status',
  'display_name',
  'email',
  'email_verified',
  'avatar_url',
  'timezone',
  'locale',
  'data_retention_days',
  'analytics_enabled',
  'marketing_emails',
  'created_at',
  'last_active_at',
];

function toProfile(r: ProfileRow): Profile {
  return {
    id: r.id,
    pubkey: r.nostr_public_key,
    status: r.status,
    displayName: r.display_name,
    email: r.email,
    emailVerified: r.email_verified,
    avatarUrl: r.avatar_url,
    timezone: r.timezone,
    locale: r.locale,
    dataRetentionDays: r.data_retention_days,
    analyticsEnabled: r.analytics_enabled,
    marketingEmails: r.marketing_emails,
    createdAt: r.created_at,
    lastActiveAt: r.last_active_at,
  };
}

export async function getProfile(db: Knex, userId: string): Promise<Profile | undefined> {
  const row = (await db('users').where({ id: userId }).first(profileColumns)) as ProfileRow | undefined;
  return row && toProfile(row);
}

/** Applies the fields present in `patch`; a changed email is unverified again. */
export async function updateProfile(db: Knex, userId: string, patch: ProfilePatch): Promise<Profile | undefined> {
  const values: Record<string, unknown> = {};
  if (patch.displayName !== undefined) values.display_name = patch.displayName;
  if (patch.email !== undefined) {
    values.email = patch.email;
    values.email_verified = db.raw('CASE WHEN email IS NOT DISTINCT FROM ? THEN email_verified ELSE false END', [
      patch.email,
    ]);
  }
  if (patch.timezone !== undefined) values.timezone = patch.timezone;
  if (patch.locale !== undefined) values.locale = patch.locale;
  if (patch.dataRetentionDays !== undefined) values.data_retention_days = patch.dataRetentionDays;
  if (patch.analyticsEnabled !== undefined) values.analytics_enabled = patch.analyticsEnabled;
  if (patch.marketingEmails !== undefined) values.marketing_emails = patch.marketingEmails;
  if (Object.keys(values).length === 0) return getProfile(db, userId);
  const rows = (await db('users').where({ id: userId }).update(values).returning(profileColumns)) as ProfileRow[];
  return rows[0] && toProfile(rows[0]);
}

export interface ExportBatch {
  readonly table: string;
  readonly rows: readonly unknown[];
}

/** An event row with its signature as NIP-01 writes it (hex), not as the bytes it is stored as (migration 0027). */
function withHexSig(row: Record<string, unknown>): Record<string, unknown> {
  const sig = row.sig;
  return sig instanceof Uint8Array ? { ...row, sig: Buffer.from(sig).toString('hex') } : row;
}

/** The export's tables in order, each with the query of the user's rows and, where needed, how a row is shown. */
function exportQueries(
  db: Knex,
  userId: string,
): readonly (readonly [string, Knex.QueryBuilder, ((row: Record<string, unknown>) => unknown)?])[] {
  const byUser = (table: string) => db(table).where({ user_id: userId });
  return [
    ['users', db('users').where({ id: userId }).select('*')],
    [
      'user_sessions',
      byUser('user_sessions')
        .select(
          db.raw(
            'id, user_id, extension_id, created_at, expires_at, last_used_at, extension_version, browser_name, browser_version, os, ip_address, is_active, revoked_at, revoked_reason',
          ),
        )
        .orderBy('created_at'),
    ],
    ['user_subscriptions', byUser('user_subscriptions').select('*').orderBy('created_at')],
    [
      'payments',
      byUser('payments')
        .select(
          db.raw(
            'id, user_id, subscription_id, amount, currency, status, payment_provider, provider_payment_id, provider_customer_id, payment_method, last_four_digits, created_at, processed_at, failed_at, failure_reason, provider_fee, net_amount, invoice_url, receipt_url, archived',
          ),
        )
        .orderBy('created_at'),
    ],
    // Without provider_data_encrypted: the user's ExtPay key is a credential and is never given out again.
    [
      'billing_accounts',
      byUser('billing_accounts')
        .select(
          'id',
          'user_id',
          'provider',
          'created_at',
          'updated_at',
          'last_synced_at',
          'next_sync_at',
          'sync_failures',
        )
        .orderBy('created_at'),
    ],
    ['lightning_invoices', byUser('lightning_invoices').select('*').orderBy('created_at')],
    [
      'user_quotas',
      byUser('user_quotas')
        .select('*')
        .orderBy([{ column: 'quota_date' }, { column: 'quota_type' }]),
    ],
    ['daily_usage_stats', byUser('daily_usage_stats').select('*').orderBy('stat_date')],
    ['usage_events', byUser('usage_events').select('*').orderBy('occurred_at')],
    ['user_relays', byUser('user_relays').select('*').orderBy('added_at')],
    ['user_identities', byUser('user_identities').select('*').orderBy('created_at')],
    // Without token_hash: a link's token is a credential, as a session's is.
    [
      'email_verifications',
      byUser('email_verifications')
        .select('id', 'user_id', 'email', 'created_at', 'expires_at', 'used_at')
        .orderBy('created_at'),
    ],
    ['nostr_events', byUser('nostr_events').select('*').orderBy('created_at'), withHexSig],
    [
      'relay_publishes',
      db('relay_publishes as p')
        .join('nostr_events as e', 'e.id', 'p.event_id')
        .where('e.user_id', userId)
        .select('p.*')
        .orderBy('p.created_at'),
    ],
    ['audit_log', auditRowsForUser(db, userId), toAuditRecord],
  ];
}

/**
 * Every row we hold about the user, table by table, as stored, in batches of at most `batchRows` rows (each table
 * at least one batch, empty if it has no rows). Left out: the session and email-link token hashes (credentials),
 * payments.provider_data_encrypted (the provider's encrypted blob, which we cannot read either), and the linked
 * payment accounts' encrypted keys and fingerprints (billing_accounts: credentials).
 *
 * All of it is read in one read-only REPEATABLE READ transaction (one snapshot: no row counted in two tables' states),
 * through a cursor per table: an export holds one pool connection and one batch in memory, however many rows the
 * user has. Stopping the iteration early (the client went away) ends the transaction. On a database with a single
 * connection (PGlite) the batches are all read first and the connection given back before the first is yielded:
 * the export then holds the user's rows in memory, but a client reading it slowly does not stall the relay.
 */
export async function* exportUserRows(db: Knex, userId: string, batchRows = 1000): AsyncGenerator<ExportBatch> {
  if (!hasOneConnection(db)) {
    yield* readExport(db, userId, batchRows);
    return;
  }
  const batches: ExportBatch[] = [];
  for await (const b of readExport(db, userId, batchRows)) batches.push(b);
  yield* batches;
}

async function* readExport(db: Knex, userId: string, batchRows: number): AsyncGenerator<ExportBatch> {
  const trx = await db.transaction();
  try {
    await trx.raw('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    for (const [table, query, show] of exportQueries(trx, userId)) {
      const { sql, bindings } = query.toSQL();
      await trx.raw(`DECLARE nostrx_export NO SCROLL CURSOR FOR ${sql}`, bindings);
      for (;;) {
        const { rows } = (await trx.raw(`FETCH ${batchRows} FROM nostrx_export`)) as {
          rows: Record<string, unknown>[];
        };
        yield { table, rows: show ? rows.map(show) : rows };
        if (rows.length < batchRows) break;
      }
      await trx.raw('CLOSE nostrx_export');
    }
  } finally {
    await trx.rollback(); // it only read
  }
}

/**
 * Erases the user (GDPR): their events (with their tags and outbox rows), relays, sessions, quota ledger, stats,
 * usage events, linked keys (free again from then on) and email verifications are deleted; the active subscription is canceled; the users row loses every personal field
 * and its pubkey (replaced by random bytes), and is kept with status 'deleted' only because subscriptions and
 * payments, which accounting law requires us to keep, point at it. The pubkey is then free: if it ever comes
 * back it gets a new, empty account. Returns false when there is no such user.
 */
export async function eraseUser(db: Knex, userId: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const user = (await trx('users').where({ id: userId }).forUpdate().first('id', 'status')) as
      { id: string; status: UserStatus } | undefined;
    if (!user) return false;
    // lightning_invoices go too: each BOLT11 names the buyer's npub; the payments rows (no invoice in them) stay.
    for (const table of [
      'nostr_events',
      'user_relays',
      'user_sessions',
      'user_quotas',
      'daily_usage_stats',
      'usage_events',
      'billing_accounts',
      'user_identities',
      'email_verifications',
      'lightning_invoices',
    ]) {
      await trx(table).where({ user_id: userId }).delete();
    }
    const canceled = (await trx('user_subscriptions')
      .where({ user_id: userId, status: 'active' })
      .update({
        status: 'canceled',
        canceled_at: trx.fn.now(),
        ends_at: trx.fn.now(),
        updated_at: trx.fn.now(),
        notes: 'account erased',
      })
      .returning(['id'])) as { id: string }[];
    for (const s of canceled) {
      await writeAudit(trx, {
        table: 'user_subscriptions',
        operation: 'UPDATE',
        userId,
        oldValues: { id: s.id, status: 'active' },
        newValues: { id: s.id, status: 'canceled' },
        actor: 'user',
      });
    }
    await trx('users')
      .where({ id: userId })
      .update({
        nostr_public_key: randomBytes(32).toString('hex'),
        status: 'deleted',
        extension_id: null,
        email: null,
        email_verified: false,
        display_name: null,
        avatar_url: null,
        created_from_ip: null,
        user_agent: null,
        marketing_emails: false,
        analytics_enabled: false,
      });
    await writeAudit(trx, {
      table: 'users',
      operation: 'DELETE',
      userId,
      oldValues: { status: user.status },
      newValues: { status: 'deleted', erased: true },
      actor: 'user',
    });
    return true;
  });
}

export interface UserSummary {
  readonly id: string;
  readonly pubkey: string;
  readonly status: UserStatus;
  readonly plan: string;
  readonly displayName: string | null;
  readonly email: string | null;
  readonly createdAt: Date;
  readonly lastActiveAt: Date;
}

export interface UserFilter {
  readonly status?: UserStatus | undefined;
  readonly plan?: string | undefined;
  readonly pubkey?: string | undefined;
  /** Part of the email or display name (case-insensitive). */
  readonly q?: string | undefined;
  /** The id of the last user of the previous page. */
  readonly after?: string | undefined;
  readonly limit: number;
}

const likePattern = (s: string) => `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

function summaries(db: Knex) {
  return db('users as u')
    .leftJoin('user_subscriptions as s', function activeOnly() {
      this.on('s.user_id', '=', 'u.id').andOn('s.status', '=', db.raw('?', ['active']));
    })
    .leftJoin('subscription_plans as p', 'p.id', 's.plan_id')
    .select(
      'u.id',
      'u.nostr_public_key',
      'u.status',
      'u.display_name',
      'u.email',
      'u.created_at',
      'u.last_active_at',
      db.raw(`COALESCE(p.plan_code, 'basic') AS plan_code`),
    );
}

interface SummaryRow {
  id: string;
  nostr_public_key: string;
  status: UserStatus;
  display_name: string | null;
  email: string | null;
  created_at: Date;
  last_active_at: Date;
  plan_code: string;
}

const toSummary = (r: SummaryRow): UserSummary => ({
  id: r.id,
  pubkey: r.nostr_public_key,
  status: r.status,
  plan: r.plan_code,
  displayName: r.display_name,
  email: r.email,
  createdAt: r.created_at,
  lastActiveAt: r.last_active_at,
});

/** Users, newest first (ties by id), filtered; keyset pagination by (created_at, id). */
export async function listUsers(db: Knex, f: UserFilter): Promise<UserSummary[]> {
  const q = summaries(db);
  if (f.status) q.where('u.status', f.status);
  if (f.plan) q.whereRaw(`COALESCE(p.plan_code, 'basic') = ?`, [f.plan]);
  if (f.pubkey) q.where('u.nostr_public_key', f.pubkey);
  if (f.q) {
    const pattern = likePattern(f.q);
    q.where((w) => {
      w.whereILike('u.email', pattern).orWhereILike('u.display_name', pattern);
    });
  }
  if (f.after) q.whereRaw('(u.created_at, u.id) < (SELECT c.created_at, c.id FROM users c WHERE c.id = ?)', [f.after]);
  const rows = (await q
    .orderBy([
      { column: 'u.created_at', order: 'desc' },
      { column: 'u.id', order: 'desc' },
    ])
    .limit(f.limit)) as SummaryRow[];
  return rows.map(toSummary);
}

export async function getUserSummary(db: Knex, userId: string): Promise<UserSummary | undefined> {
  const row = (await summaries(db).where('u.id', userId).first()) as SummaryRow | undefined;
  return row && toSummary(row);
}
