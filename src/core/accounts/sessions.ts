// API sessions: after one NIP-98 request, a client (the extension) gets a random bearer token so it need not
// ask the user's signer for every call. The token is 32 random bytes; only its SHA-256 is stored. A token works
// until it expires or is revoked, and every lookup goes to the database, so a revocation holds at once in every
// process.
import { createHash, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import {
  findSessionByTokenHash,
  insertSession,
  recordLogin,
  listLiveSessions,
  revokeSession,
  touchSession,
  type SessionMeta,
  type SessionRecord,
} from '../../store/sessions.js';
import type { UserRecord } from '../../store/users.js';

export type { SessionRecord };

const TOKEN_PREFIX = 'nxs_';

export interface SessionsDeps {
  readonly db: Knex;
  readonly ttlSeconds: number;
  /** Seconds since the epoch. */
  readonly now: () => number;
}

type SessionLookup =
  | { readonly ok: true; readonly session: SessionRecord; readonly user: UserRecord }
  | { readonly ok: false; readonly reason: 'unknown' | 'expired' | 'revoked' };

export interface Sessions {
  create(user: UserRecord, meta: SessionMeta): Promise<{ token: string; session: SessionRecord }>;
  resolve(token: string): Promise<SessionLookup>;
  list(userId: string): Promise<SessionRecord[]>;
  revoke(userId: string, sessionId: string, reason: string): Promise<boolean>;
}

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function createSessions(deps: SessionsDeps): Sessions {
  const nowDate = () => new Date(deps.now() * 1000);
  return {
    async create(user, meta) {
      const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
      const expiresAt = new Date((deps.now() + deps.ttlSeconds) * 1000);
      const session = await insertSession(deps.db, user.id, hashToken(token), expiresAt, meta);
      await recordLogin(deps.db, user.id, nowDate());
      return { token, session };
    },
    async resolve(token) {
      if (!token.startsWith(TOKEN_PREFIX) || token.length > 128) return { ok: false, reason: 'unknown' };
      const found = await findSessionByTokenHash(deps.db, hashToken(token));
      if (!found) return { ok: false, reason: 'unknown' };
      if (found.session.revokedAt) return { ok: false, reason: 'revoked' };
      const now = nowDate();
      if (found.session.expiresAt <= now) return { ok: false, reason: 'expired' };
      // last_used_at is kept to the minute, so a busy client does not write on every request.
      if (now.getTime() - found.session.lastUsedAt.getTime() >= 60_000)
        await touchSession(deps.db, found.session.id, now);
      return { ok: true, ...found };
    },
    list: (userId) => listLiveSessions(deps.db, userId, nowDate()),
    revoke: (userId, sessionId, reason) => revokeSession(deps.db, userId, sessionId, reason, nowDate()),
  };
}
