// CORS for /v1: the extension calls the API from its content scripts on x.com, and a dashboard may call it from a
// page of its own; both are cross-origin requests that a browser lets through only with these headers, and only
// after a preflight, since every call carries an Authorization header. Credentials are never allowed: the API has
// no cookies, a caller proves who it is with NIP-98 or a bearer token in that header, which a browser never adds by
// itself, so `*` lets no page act as a user it has no key or token of. The NIP-11 document on `/` sends its own
// headers (nips/nip11.ts); the operations routes send none.
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { apiError } from './errors.js';

/** Browsers keep a preflight's answer at most this long (Chrome caps it at 2 hours). */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/** `origins`: allowed origins, or ['*'] for any; none (API_CORS_ORIGINS=none) turns CORS off: same-origin callers only. */
export async function useApiCors(http: FastifyInstance, origins: readonly string[]): Promise<void> {
  if (origins.length === 0) return;
  const forApi: FastifyCorsOptions = {
    origin: origins.includes('*') ? '*' : [...origins],
    credentials: false,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    // X-Nostr-Identity-Proof: the new key's signature when linking it (api/identities.ts)
    allowedHeaders: ['Authorization', 'Content-Type', 'X-Nostr-Identity-Proof'],
    // a 429's Retry-After, readable by the caller's script
    exposedHeaders: ['Retry-After'],
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
  };
  const elsewhere: FastifyCorsOptions = { origin: false };
  // An OPTIONS that is not a browser's preflight (no Origin, or no method asked for): refused here, so that it
  // gets the API's JSON error like any other bad request, not the plugin's plain-text one.
  http.addHook('onRequest', async (req) => {
    if (req.method !== 'OPTIONS' || !req.url.startsWith('/v1/')) return;
    if (req.headers.origin && req.headers['access-control-request-method']) return;
    throw apiError('preflight_invalid');
  });
  await http.register(cors, {
    delegator: async (req: FastifyRequest) => (req.url.startsWith('/v1/') ? forApi : elsewhere),
  });
}
