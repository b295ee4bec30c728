// user_sessions: API sessions. Only the SHA-256 of a bearer token is stored (session_token); the token itself
// exists only in the response that created it.
import type { Knex } from 'knex';
import type { UserRecord, UserStatus } from './users.js';

export interface SessionMeta {
  /** The key that signed the request starting the session (the account's primary key or a linked one). */
  readonly pubkey?: string | undefined;
  readonly extensionId: string;
  readonly extensionVersion?: string | undefined;
  readonly browserName?: string | undefined;
  readonly browserVersion?: string | undefined;
  readonly os?: string | undefined;
  readonly ip?: string | undefined;
}

export interface SessionRecord {
  readonly id: string;
  readonly userId: string;
  /** The key the session acts as; null for sessions older than migration 0019 (the account's primary key). */
  readonly pubkey: string | null;
  readonly extensionId: string;
  readonly extensionVersion: string | null;
  readonly browserName: string | null;
  readonly browserVersion: string | null;
  readonly os: string | null;
  readonly ipAddress: string | null;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly lastUsedAt: Date;
  readonly revokedAt: Date | null;
  readonly revokedReason: string | null;
}

interface SessionRow {
  id: string;
  user_id: string;
  pubkey: string | null;
  extension_id: string;
  extension_version: string | null;
  browser_name: string | null;
  browser_version: string | null;
  os: string | null;
  ip_address: string | null;
  created_at: Date;
  expires_at: Date;
  last_used_at: Date;
  is_active: boolean;
  revoked_at: Date | null;
  revoked_reason: string | null;
}

const columns = [
  'id',
  'user_id',
  'pubkey',
  'extension_id',
  'extension_version',
  'browser_name',
  'browser_version',
  'os',
  'ip_address',
  'created_at',
  'expires_at',
  'last_used_at',
  'is_active',
  'revoked_at',
  'revoked_reason',
];

function toRecord(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    userId: r.user_id,
    pubkey: r.pubkey,
    extensionId: r.extension_id,
    extensionVersion: r.extension_version,
    browserName: r.browser_name,
    browserVersion: r.browser_version,
    os: r.os,
    ipAddress: r.ip_address,
    createdAt: new Date(r.created_at),
    expiresAt: new Date(r.expires_at),
    lastUsedAt: new Date(r.last_used_at),
    // is_active false without revoked_at cannot be written by this module; treat it as revoked all the same.
    revokedAt: r.revoked_at ? new Date(r.revoked_at) : r.is_active ? null : new Date(r.last_used_at),
    revokedReason: r.revoked_reason,
  };
}

export async function insertSession(
  db: Knex,
  userId: string,
  tokenHash: string,
  expiresAt: Date,
  meta: SessionMeta,
): Promise<SessionRecord> {
  const rows = (await db('user_sessions')
    .insert({
      user_id: userId,
      session_token: tokenHash,
      expires_at: expiresAt,
      pubkey: meta.pubkey ?? null,
      extension_id: meta.extensionId,
      extension_version: meta.extensionVersion ?? null,
      browser_name: meta.browserName ?? null,
      browser_version: meta.browserVersion ?? null,
      os: meta.os ?? null,
      ip_address: meta.ip ?? null,
    })
    .returning(columns)) as SessionRow[];
  const row = rows[0];
  if (!row) throw new Error('inserting a session returned no row');
  return toRecord(row);
}

/** The session with this token hash (whatever its state) and its user, for the caller to judge. */
export async function findSessionByTokenHash(
  db: Knex,
  tokenHash: string,
): Promise<{ session: SessionRecord; user: UserRecord } | undefined> {
  const row = (await db('user_sessions as s')
    .join('users as u', 'u.id', 's.user_id')
    .where('s.session_token', tokenHash)
    .first([...columns.map((c) => `s.${c}`), 'u.nostr_public_key', 'u.status', 'u.timezone'])) as
    (SessionRow & { nostr_public_key: string; status: UserStatus; timezone: string | null }) | undefined;
  if (!row) return undefined;
  return {
    session: toRecord(row),
    user: { id: row.user_id, pubkey: row.nostr_public_key, status: row.status, timezone: row.timezone ?? 'UTC' },
  };
}

export async function touchSession(db: Knex, id: string, now: Date): Promise<void> {
  await db('user_sessions').where({ id }).update({ last_used_at: now });
}

/** A session was started: the user's last login (and activity). */
export async function recordLogin(db: Knex, userId: string, now: Date): Promise<void> {
  await db('users').where({ id: userId }).update({ last_login_at: now, last_active_at: now });
}

/** The user's sessions that are neither revoked nor expired, newest first. */
export async function listLiveSessions(db: Knex, userId: string, now: Date): Promise<SessionRecord[]> {
  const rows = (await db('user_sessions')
    .where({ user_id: userId, is_active: true })
    .whereNull('revoked_at')
    .where('expires_at', '>', now)
    .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id' }])
    .select(columns)) as SessionRow[];
  return rows.map(toRecord);
}

/** Revokes one of the user's live sessions; false when the user has no such live session. */
export async function revokeSession(db: Knex, userId: string, id: string, reason: string, now: Date): Promise<boolean> {
  const n = await db('user_sessions')
    .where({ id, user_id: userId, is_active: true })
    .whereNull('revoked_at')
    .update({ is_active: false, revoked_at: now, revoked_reason: reason });
  return n > 0;
}
