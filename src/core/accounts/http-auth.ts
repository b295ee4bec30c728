// Who is calling the HTTP API: a NIP-98 signature (checked by nips/nip98.ts, then accepted once: the replay cache
// remembers each Authorization event id for twice the time window) or a session bearer token (core/accounts/sessions.ts).
// Either way the answer is the caller's account and the key they act as (the account's primary key or a key linked
// to it), or the name of the check that failed. `proof` checks a second NIP-98 token the same way, without looking
// up an account: the proof that the caller holds a key they are linking (core/accounts/identities.ts).
import * as nip98 from '../../nips/nip98.js';
import { isUnavailable } from '../../store/outage.js';
import type { Redis } from '../../store/redis.js';
import { memorySeenOnce, redisSeenOnce, type SeenOnce } from '../../store/seen-once.js';
import type { UserRecord } from '../../store/users.js';
import type { Accounts } from './accounts.js';
import type { Sessions } from './sessions.js';

export type { Redis };

/**
 * The replay cache: in Redis (shared by every process) when configured, else in this process. With Redis, every
 * token is also remembered here, so that while Redis is unavailable the API keeps working with replays refused
 * within each process (a replay sent to another process in that time passes: degraded, not down).
 */
export function replayCache(redis: Redis | undefined, prefix: string): SeenOnce {
  const local = memorySeenOnce();
  if (!redis) return local;
  const shared = redisSeenOnce(redis, prefix);
  return {
    async firstSeen(key, ttlSeconds) {
      if (!(await local.firstSeen(key, ttlSeconds))) return false;
      try {
        return await shared.firstSeen(key, ttlSeconds);
      } catch (err) {
        if (isUnavailable(err)) return true;
        throw err;
      }
    },
  };
}

type AuthCheck = nip98.HttpAuthCheck | 'replay' | 'session';

export interface Caller {
  readonly user: UserRecord;
  /** The key this request acts as: the NIP-98 signer, or the key that started the session. */
  readonly pubkey: string;
  readonly via: 'nip98' | 'session';
  /** The session the request used (via 'session'). */
  readonly sessionId?: string;
}

export type AuthResult =
  | { readonly ok: true; readonly caller: Caller }
  | { readonly ok: false; readonly check: AuthCheck; readonly message: string };

type ProofResult =
  | { readonly ok: true; readonly pubkey: string }
  | { readonly ok: false; readonly check: AuthCheck; readonly message: string };

export interface SignedRequest {
  /** The absolute URL as the client sees it: PUBLIC_URL + path + query. */
  readonly url: string;
  readonly method: string;
  /** The exact body bytes (undefined or empty when the request has no body). */
  readonly body: Uint8Array | undefined;
}

export interface HttpAuthDeps {
  readonly accounts: Accounts;
  readonly sessions: Sessions;
  readonly replay: SeenOnce;
  readonly windowSeconds: number;
  readonly maxHeaderLength: number;
  /** Seconds since the epoch. */
  readonly now: () => number;
}

export interface HttpAuth {
  /** NIP-98 only (`Authorization: Nostr …`). */
  signed(header: string | undefined, req: SignedRequest): Promise<AuthResult>;
  /** NIP-98 or a session (`Authorization: Bearer …`). */
  any(header: string | undefined, req: SignedRequest): Promise<AuthResult>;
  /** A NIP-98 token for this same request, checked and used up like an Authorization one; no account is looked up. */
  proof(header: string | undefined, req: SignedRequest): Promise<ProofResult>;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

const sessionMessages = {
  unknown: 'the session token is not known',
  expired: 'the session has expired; sign in again with NIP-98 (POST /v1/sessions)',
  revoked: 'the session was revoked; sign in again with NIP-98 (POST /v1/sessions)',
} as const;

export function createHttpAuth(deps: HttpAuthDeps): HttpAuth {
  // A token is valid while created_at is within the window of now, on either side: remember it that long twice.
  const replayTtl = 2 * deps.windowSeconds + 1;

  async function proof(header: string | undefined, req: SignedRequest): Promise<ProofResult> {
    const checked = nip98.verifyAuthorization(header, {
      url: req.url,
      method: req.method,
      ...(req.body ? { body: req.body } : {}),
      nowSeconds: deps.now(),
      windowSeconds: deps.windowSeconds,
      maxHeaderLength: deps.maxHeaderLength,
    });
    if (!checked.ok) return { ok: false, check: checked.check, message: checked.message };
    // Only a fully valid token is remembered, so a forged or mistaken one cannot burn a real one's id.
    if (!(await deps.replay.firstSeen(`nip98:${checked.eventId}`, replayTtl))) {
      return {
        ok: false,
        check: 'replay',
        message: 'this Authorization event was already used; sign a new one for every request',
      };
    }
    return { ok: true, pubkey: checked.pubkey };
  }

  async function signed(header: string | undefined, req: SignedRequest): Promise<AuthResult> {
    const checked = await proof(header, req);
    if (!checked.ok) return checked;
    const user = await deps.accounts.forPubkey(checked.pubkey);
    return { ok: true, caller: { user, pubkey: checked.pubkey, via: 'nip98' } };
  }

  return {
    signed,
    proof,
    async any(header, req) {
      const bearer = header === undefined ? null : BEARER.exec(header);
      if (!bearer) return signed(header, req);
      const found = await deps.sessions.resolve(bearer[1] ?? '');
      if (!found.ok) return { ok: false, check: 'session', message: sessionMessages[found.reason] };
      const pubkey = found.session.pubkey ?? found.user.pubkey;
      return { ok: true, caller: { user: found.user, pubkey, via: 'session', sessionId: found.session.id } };
    },
  };
}
