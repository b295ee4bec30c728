// Authentication hooks of the API, attached by `access(level, schema)` to exactly the routes of that level (public,
// user, signed, admin), beside each route's schema. They run before validation (preValidation), so an
// unauthenticated caller learns nothing about a route's schema, and set one request field, `caller`. Every failure
// is a 401 with `WWW-Authenticate: Nostr` and a body naming the failed check; an account deleted by an operator is
// a 403; a valid signature by a non-admin on an admin route is a 403.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthResult, Caller, HttpAuth, SignedRequest } from '../core/accounts/index.js';
import { apiError, errorResponses } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; set by the auth hooks of authenticated routes only. */
    caller: Caller | null;
    /** The exact body bytes as received (set by the JSON body parser; the NIP-98 payload hash covers them). */
    rawBody: Buffer | undefined;
  }
}

export type AuthHook = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

const challengeHeaders = { 'WWW-Authenticate': 'Nostr' } as const;

/** The absolute URL the client signed: PUBLIC_URL (read at request time, known once listening) + path + query. */
export function signedRequest(req: FastifyRequest, publicUrl: () => string): SignedRequest {
  return { url: publicUrl() + req.url, method: req.method, body: req.rawBody };
}

function settle(req: FastifyRequest, result: AuthResult): void {
  if (!result.ok) throw apiError('unauthorized', result.message, { check: result.check }, challengeHeaders);
  if (result.caller.user.status === 'deleted') {
    throw apiError('account_unavailable', 'this account was deleted');
  }
  req.caller = result.caller;
}

export interface AuthHooks {
  /** NIP-98 or a session bearer token. */
  readonly user: AuthHook;
  /** NIP-98 only (creating a session, erasing the account). */
  readonly signed: AuthHook;
  /** NIP-98 by a pubkey in ADMIN_PUBKEYS; anyone else gets 403. */
  readonly admin: AuthHook;
}

export function authHooks(auth: HttpAuth, publicUrl: () => string, adminPubkeys: readonly string[]): AuthHooks {
  const admins = new Set(adminPubkeys);
  return {
    async user(req) {
      settle(req, await auth.any(req.headers.authorization, signedRequest(req, publicUrl)));
    },
    async signed(req) {
      settle(req, await auth.signed(req.headers.authorization, signedRequest(req, publicUrl)));
    },
    async admin(req) {
      const result = await auth.signed(req.headers.authorization, signedRequest(req, publicUrl));
      if (!result.ok) throw apiError('unauthorized', result.message, { check: result.check }, challengeHeaders);
      if (!admins.has(result.caller.pubkey)) throw apiError('not_admin');
      req.caller = result.caller;
    },
  };
}

/** The caller of an authenticated route (the hook guarantees it is set). */
export function callerOf(req: FastifyRequest): Caller {
  if (!req.caller) throw new Error(`route ${req.routeOptions.url ?? req.url} has no auth hook`);
  return req.caller;
}

type Schema = Record<string, unknown> & { response?: Record<string, unknown> };
export type Access = 'public' | 'user' | 'signed' | 'admin';

const security: Record<Access, { [scheme: string]: string[] }[]> = {
  public: [],
  user: [{ nip98: [] }, { session: [] }],
  signed: [{ nip98: [] }],
  admin: [{ nip98: [] }],
};

/**
 * The route options that protect a route and document it: the auth hook of its access level (none for public
 * routes), the matching OpenAPI `security`, and the shared error responses. Used as
 * `scope.get('/v1/x', access('user', { summary, querystring, response }), handler)`.
 */
export function accessFor(hooks: AuthHooks) {
  return function access(level: Access, schema: Schema): { preValidation?: AuthHook; schema: Schema } {
    const documented = { ...schema, security: security[level], response: { ...schema.response, ...errorResponses } };
    return level === 'public' ? { schema: documented } : { preValidation: hooks[level], schema: documented };
  };
}
