// The account's Nostr keys: GET /v1/me/identities lists them; POST /v1/me/identities links one more, proven by a
// second NIP-98 token signed by the new key for this same request (header X-Nostr-Identity-Proof: same URL, method
// and payload as the Authorization token); DELETE /v1/me/identities/:pubkey unlinks one. Changes need NIP-98 (a
// session token cannot add a key that would outlive the session's revocation); the rules are in
// core/accounts/identities.ts.
import type { FastifyInstance } from 'fastify';
import type { Identity, IdentityRefusal } from '../core/accounts/index.js';
import { callerOf, signedRequest } from './auth.js';
import { apiError } from './errors.js';
import { hex64 } from './schemas.js';
import type { ApiServices } from './services.js';

const IDENTITY_PROOF_HEADER = 'x-nostr-identity-proof';

interface LinkBody {
  pubkey: string;
  label?: string | null;
}

function identityView(i: Identity) {
  return { pubkey: i.pubkey, primary: i.primary, label: i.label, linked_at: i.linkedAt, can_post: i.canPost };
}

function refused(r: IdentityRefusal): never {
  if (r.code === 'plan_required') throw apiError('plan_required', r.message, r.upgrade ? { plan: r.upgrade } : {});
  throw apiError(r.code, r.message);
}

export function registerIdentityRoutes(http: FastifyInstance, deps: ApiServices): void {
  const { access, identities, plans } = deps;

  http.get(
    '/v1/me/identities',
    access('user', {
      tags: ['account'],
      summary: "Your account's Nostr keys: the primary key and the keys linked to it",
      response: {
        200: {
          type: 'object',
          required: ['identities', 'max_identities', 'multiple_identities'],
          properties: {
            identities: { type: 'array', items: { $ref: 'Identity#' } },
            max_identities: { type: 'integer', description: 'Most keys an account may have, its primary key included' },
            multiple_identities: {
              type: 'boolean',
              description: 'Whether your plan lets you link and post with more keys',
            },
          },
        },
      },
    }),
    async (req) => {
      const caller = callerOf(req);
      const [keys, plan] = await Promise.all([identities.list(caller.user.id), plans.effectivePlan(caller.user.id)]);
      return {
        identities: keys.map(identityView),
        max_identities: deps.config.maxIdentities,
        multiple_identities: plan.multipleIdentities,
      };
    },
  );

  http.post<{ Body: LinkBody }>(
    '/v1/me/identities',
    access('signed', {
      tags: ['account'],
      summary: 'Link another Nostr key to your account (NIP-98 by your primary key, plus proof from the new key)',
      description:
        'Sign the request with your primary key as usual, and send in `X-Nostr-Identity-Proof` a second NIP-98 token (`Nostr <base64 event>`) ' +
        'signed by the new key for this same request (same URL, method and payload tag). Needs a plan with multiple identities. ' +
        'The new key then signs in to this account and posts against its quota. 201 when linked, 200 when it already was.',
      body: {
        type: 'object',
        required: ['pubkey'],
        additionalProperties: false,
        properties: {
          pubkey: { ...hex64, description: 'The key to link; the proof must be signed by it' },
          label: {
            type: ['string', 'null'],
            minLength: 1,
            maxLength: 100,
            description: 'Your name for it, e.g. the X account it posts for',
          },
        },
      },
      response: {
        201: { type: 'object', required: ['identity'], properties: { identity: { $ref: 'Identity#' } } },
        200: { type: 'object', required: ['identity'], properties: { identity: { $ref: 'Identity#' } } },
      },
    }),
    async (req, reply) => {
      const caller = callerOf(req);
      const header = req.headers[IDENTITY_PROOF_HEADER];
      const proof = await deps.auth.proof(
        Array.isArray(header) ? header[0] : header,
        signedRequest(req, deps.publicUrl),
      );
      if (!proof.ok) {
        const message =
          proof.check === 'missing'
            ? 'X-Nostr-Identity-Proof header is missing'
            : `X-Nostr-Identity-Proof: ${proof.message}`;
        throw apiError('identity_proof_invalid', message, { check: proof.check });
      }
      if (proof.pubkey !== req.body.pubkey) {
        throw apiError('identity_proof_invalid', 'X-Nostr-Identity-Proof is signed by another key than body.pubkey', {
          check: 'pubkey',
        });
      }
      const result = await identities.link(caller, proof.pubkey, req.body.label ?? null);
      if (!result.ok) refused(result.refusal);
      return reply.code(result.created ? 201 : 200).send({ identity: identityView(result.identity) });
    },
  );

  http.delete<{ Params: { pubkey: string } }>(
    '/v1/me/identities/:pubkey',
    access('signed', {
      tags: ['account'],
      summary: 'Unlink a key from your account (NIP-98: the primary key, or the key itself)',
      description:
        "At once in every process: the key's sessions are revoked, and its next event or request is that of a key with no account.",
      params: { type: 'object', required: ['pubkey'], properties: { pubkey: hex64 } },
      response: { 204: { type: 'null' } },
    }),
    async (req, reply) => {
      const result = await identities.unlink(callerOf(req), req.params.pubkey);
      if (!result.ok) refused(result.refusal);
      return reply.code(204).send();
    },
  );
}
